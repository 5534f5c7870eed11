"""Supervision of guarantees (智慧监管预警): pure rules over guarantee records and section facts.

The regulator's view: the cash deposits that guarantees freed, and alerts for guarantees that break
the rules or show signs of collusion. Inputs are records (from the chain and the platform's database);
nothing here reads or writes anything, so each rule is tested on its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from eth_utils import to_checksum_address

from contracts.client import Deployment
from guarantees.records import AlertKind, GuaranteeRecord, SectionFacts, SupervisionAlert

# States in which a guarantee still stands for (or stood for) a bid: cancelled ones never covered one.
_COUNTED_STATES = frozenset({"issued", "claimed", "paid", "released", "expired"})


def _section(facts: Mapping[bytes, SectionFacts], record: GuaranteeRecord) -> SectionFacts | None:
    return facts.get(record.section_id)


def issued_after_deadline(
    records: Iterable[GuaranteeRecord], facts: Mapping[bytes, SectionFacts]
) -> list[SupervisionAlert]:
    """A guarantee issued at or after its section's bid deadline (a bid cannot rely on it lawfully)."""
    alerts = []
    for record in records:
        section = _section(facts, record)
        if section is not None and record.issued_at >= section.opening_time:
            alerts.append(
                SupervisionAlert(
                    AlertKind.ISSUED_AFTER_DEADLINE,
                    record.section_id,
                    (record.number,),
                    f"签发时间 {record.issued_at} 不早于投标截止时间 {section.opening_time}",
                    (record.issuer,),
                )
            )
    return alerts


def below_bond(records: Iterable[GuaranteeRecord], facts: Mapping[bytes, SectionFacts]) -> list[SupervisionAlert]:
    """A guarantee for less than its section's bid bond."""
    alerts = []
    for record in records:
        section = _section(facts, record)
        if section is not None and record.amount < section.bid_bond:
            alerts.append(
                SupervisionAlert(
                    AlertKind.BELOW_BOND,
                    record.section_id,
                    (record.number,),
                    f"担保金额 {record.amount} 分低于投标保证金 {section.bid_bond} 分",
                    (record.applicant,),
                )
            )
    return alerts


def beneficiary_not_tenderer(
    records: Iterable[GuaranteeRecord], facts: Mapping[bytes, SectionFacts]
) -> list[SupervisionAlert]:
    """A guarantee whose beneficiary is not the tenderer that owns the section."""
    alerts = []
    for record in records:
        section = _section(facts, record)
        if section is not None and to_checksum_address(record.beneficiary) != to_checksum_address(section.tenderer):
            alerts.append(
                SupervisionAlert(
                    AlertKind.BENEFICIARY_NOT_TENDERER,
                    record.section_id,
                    (record.number,),
                    f"受益人 {record.beneficiary} 不是该标段的招标人 {section.tenderer}",
                    (record.beneficiary,),
                )
            )
    return alerts


def several_guarantees_for_one_bid(records: Iterable[GuaranteeRecord]) -> list[SupervisionAlert]:
    """More than one live guarantee from one applicant for one section (one bid needs one cover)."""
    by_bid: dict[tuple[bytes, str], list[GuaranteeRecord]] = defaultdict(list)
    for record in records:
        if record.state in _COUNTED_STATES:
            by_bid[(record.section_id, to_checksum_address(record.applicant))].append(record)
    return [
        SupervisionAlert(
            AlertKind.SEVERAL_GUARANTEES_FOR_ONE_BID,
            section_id,
            tuple(sorted(r.number for r in group)),
            f"同一投标人就同一标段有 {len(group)} 份保函",
            (applicant,),
        )
        for (section_id, applicant), group in sorted(by_bid.items())
        if len(group) > 1
    ]


def shared_premium_account(records: Iterable[GuaranteeRecord]) -> list[SupervisionAlert]:
    """Premiums for competing bidders in one section paid from the same account (a sign of collusion)."""
    by_account: dict[tuple[bytes, str], list[GuaranteeRecord]] = defaultdict(list)
    for record in records:
        if record.premium_payer_account:
            by_account[(record.section_id, record.premium_payer_account.strip())].append(record)
    alerts = []
    for (section_id, account), group in sorted(by_account.items()):
        applicants = sorted({to_checksum_address(r.applicant) for r in group})
        if len(applicants) > 1:
            alerts.append(
                SupervisionAlert(
                    AlertKind.SHARED_PREMIUM_ACCOUNT,
                    section_id,
                    tuple(sorted(r.number for r in group)),
                    f"{len(applicants)} 个投标人的保费由同一账户 {account} 支付",
                    tuple(applicants),
                )
            )
    return alerts


def supervision_alerts(
    records: Iterable[GuaranteeRecord], facts: Mapping[bytes, SectionFacts]
) -> list[SupervisionAlert]:
    """Every rule's alerts, in rule order."""
    listed = list(records)
    return [
        *issued_after_deadline(listed, facts),
        *below_bond(listed, facts),
        *beneficiary_not_tenderer(listed, facts),
        *several_guarantees_for_one_bid(listed),
        *shared_premium_account(listed),
    ]


def cash_deposits_freed(records: Iterable[GuaranteeRecord], facts: Mapping[bytes, SectionFacts]) -> int:
    """Fen of cash bid bonds that bidders did not have to pay because a guarantee covered their bid.

    Counted once per bid (section, applicant) that a guarantee covered (bound on chain), at the
    section's bid bond: that is the cash the bidder would otherwise have transferred and had locked.
    """
    covered: set[tuple[bytes, str]] = set()
    total = 0
    for record in records:
        section = _section(facts, record)
        key = (record.section_id, to_checksum_address(record.applicant))
        if section is None or not record.bound or key in covered or record.state == "cancelled":
            continue
        covered.add(key)
        total += section.bid_bond
    return total


def records_from_chain(
    deployment: Deployment,
    *,
    numbers: Mapping[bytes, str] | None = None,
    premium_accounts: Mapping[str, str] | None = None,
    from_block: int = 0,
) -> tuple[list[GuaranteeRecord], dict[bytes, SectionFacts]]:
    """The regulator's input read from the chain: every guarantee issued, and the sections they cover.

    Not a rule but the one function here that reads: from `GuaranteeIssued` (issue facts and block
    time), `GuaranteeBound` (which section a bid relied on it for, emitted when the bid's cover is
    revealed at the opening, which is how a sealed guarantee's section becomes known; before that the
    guarantee shows no section) and the current state. `numbers` maps ids to guarantee numbers and
    `premium_accounts` numbers to premium payer accounts (both from the platform's database).
    """
    from guarantees.lifecycle import event_topic, section_facts

    chain, registry = deployment.chain, deployment.guarantees
    issued = chain.logs(registry.address, [event_topic(chain, "GuaranteeIssued")], from_block)
    bound = {
        bytes(logged.event.args["guaranteeId"]): bytes(logged.event.args["sectionId"])
        for logged in chain.logs(registry.address, [event_topic(chain, "GuaranteeBound")], from_block)
    }
    timestamps: dict[int, int] = {}
    records: list[GuaranteeRecord] = []
    facts: dict[bytes, SectionFacts] = {}
    for logged in issued:
        args = logged.event.args
        guarantee = bytes(args["guaranteeId"])
        section_id = bound.get(guarantee) or (b"" if args["sealedRef"] else bytes(args["sectionRef"]))
        if logged.block_number not in timestamps:
            timestamps[logged.block_number] = int(chain.w3.eth.get_block(logged.block_number)["timestamp"])
        stored = registry.guarantee(guarantee)
        number = (numbers or {}).get(guarantee, "0x" + guarantee.hex())
        if section_id and section_id not in facts:
            facts[section_id] = section_facts(deployment, section_id)
        records.append(
            GuaranteeRecord(
                number=number,
                guarantee_id=guarantee,
                section_id=section_id,
                applicant=str(args["applicant"]),
                beneficiary=str(args["beneficiary"]),
                issuer=str(args["issuer"]),
                amount=int(args["amount"]),
                issued_at=timestamps[logged.block_number],
                state=stored.state.name.lower(),
                premium_payer_account=(premium_accounts or {}).get(number, ""),
                bound=stored.bound,  # relied on by a bid (the flag stays through claim and release)
            )
        )
    return records, facts
