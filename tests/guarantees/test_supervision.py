"""Supervision rules over guarantee records: each alert, and the cash deposits freed."""

from __future__ import annotations

from contracts.records import BidCover, SectionStatus
from guarantees.records import AlertKind, GuaranteeRecord, SectionFacts
from guarantees.supervision import cash_deposits_freed, records_from_chain, supervision_alerts
from tests.guarantees.support import application, issue
from tests.helpers import Platform, commit_bid, new_section, pass_deadline, random_hash

TENDERER = "0x" + "22" * 20
BIDDERS = ["0x" + f"{i:02x}" * 20 for i in (0xA1, 0xA2, 0xA3)]
SECTION = b"\x01" * 32
OTHER_SECTION = b"\x02" * 32
FACTS = {
    SECTION: SectionFacts(SECTION, b"\x09" * 32, TENDERER, 2_000, 80_000_000, 90 * 86400, SectionStatus.BIDDING),
    OTHER_SECTION: SectionFacts(
        OTHER_SECTION, b"\x09" * 32, TENDERER, 2_000, 50_000_000, 90 * 86400, SectionStatus.BIDDING
    ),
}


def record(number: str, bidder: str, **changes: object) -> GuaranteeRecord:
    values: dict[str, object] = {
        "number": number,
        "guarantee_id": number.encode().ljust(32, b"\x00"),
        "section_id": SECTION,
        "applicant": bidder,
        "beneficiary": TENDERER,
        "issuer": "0x" + "33" * 20,
        "amount": 80_000_000,
        "issued_at": 1_000,
        "premium_payer_account": f"6222-{number}",
        "bound": True,
    }
    values.update(changes)
    return GuaranteeRecord(**values)  # type: ignore[arg-type]


def kinds(records: list[GuaranteeRecord]) -> list[AlertKind]:
    return [alert.kind for alert in supervision_alerts(records, FACTS)]


def test_clean_records_raise_no_alert() -> None:
    assert kinds([record("G1", BIDDERS[0]), record("G2", BIDDERS[1])]) == []


def test_each_rule() -> None:
    assert kinds([record("G1", BIDDERS[0], issued_at=2_000)]) == [AlertKind.ISSUED_AFTER_DEADLINE]
    assert kinds([record("G1", BIDDERS[0], amount=79_999_999)]) == [AlertKind.BELOW_BOND]
    assert kinds([record("G1", BIDDERS[0], beneficiary="0x" + "44" * 20)]) == [AlertKind.BENEFICIARY_NOT_TENDERER]
    several = supervision_alerts(
        [record("G1", BIDDERS[0]), record("G2", BIDDERS[0].upper().replace("0X", "0x"))], FACTS
    )
    assert [a.kind for a in several] == [AlertKind.SEVERAL_GUARANTEES_FOR_ONE_BID]
    assert several[0].numbers == ("G1", "G2")
    shared = supervision_alerts(
        [
            record("G1", BIDDERS[0], premium_payer_account="6222 0001"),
            record("G2", BIDDERS[1], premium_payer_account="6222 0001"),
            record("G3", BIDDERS[2], premium_payer_account="6222 0002"),
        ],
        FACTS,
    )
    assert [a.kind for a in shared] == [AlertKind.SHARED_PREMIUM_ACCOUNT]
    assert shared[0].numbers == ("G1", "G2") and len(shared[0].accounts) == 2


def test_rules_stay_within_a_section() -> None:
    records = [
        record("G1", BIDDERS[0], premium_payer_account="6222 0001"),
        record("G2", BIDDERS[1], section_id=OTHER_SECTION, amount=50_000_000, premium_payer_account="6222 0001"),
        record("G3", BIDDERS[0], section_id=OTHER_SECTION, amount=50_000_000),
    ]
    assert kinds(records) == []


def test_cancelled_guarantees_do_not_count_as_a_second_cover() -> None:
    assert kinds([record("G1", BIDDERS[0], state="cancelled", bound=False), record("G2", BIDDERS[0])]) == []


def test_cash_deposits_freed() -> None:
    records = [
        record("G1", BIDDERS[0]),
        record("G2", BIDDERS[1]),
        record("G3", BIDDERS[1], bound=False),  # not relied on by a bid: frees nothing
        record("G4", BIDDERS[2], section_id=OTHER_SECTION, amount=50_000_000),
        record("G5", BIDDERS[2], state="cancelled", bound=False),
    ]
    assert cash_deposits_freed(records, FACTS) == 2 * 80_000_000 + 50_000_000


def test_regulator_view_from_the_chain(platform: Platform) -> None:
    """Records read from the chain feed the rules: cash freed, and a second guarantee for one bid."""
    from_block = platform.backend.chain.block_number()
    section = new_section(platform)
    covered = []
    for index, bidder in enumerate(platform.bidders[:2]):
        app = application(platform, section, bidder, sealed=index == 0)
        issued = issue(platform, app)
        commit_bid(platform,
            bidder,
            section.section_id,
            random_hash(),
            BidCover.guarantee(issued.guarantee_id, app.salt or None),
        )
        covered.append(issued)
    spare = issue(platform, application(platform, section, platform.bidders[1], sealed=False))
    numbers = {g.guarantee_id: g.number for g in [*covered, spare]}
    pass_deadline(platform, section)  # the opening reveals the bids' covers, binding the guarantees
    accounts = {covered[0].number: "6222 0001", covered[1].number: "6222 0001"}
    records, facts = records_from_chain(
        platform.deployment, numbers=numbers, premium_accounts=accounts, from_block=from_block
    )
    mine = [r for r in records if r.section_id == section.section_id]
    assert {r.number for r in mine} == set(numbers.values())  # the sealed one through its bid
    assert cash_deposits_freed(mine, facts) == 2 * section.terms.bid_bond
    kinds = sorted(a.kind for a in supervision_alerts(mine, facts))
    assert kinds == [AlertKind.SEVERAL_GUARANTEES_FOR_ONE_BID, AlertKind.SHARED_PREMIUM_ACCOUNT]
