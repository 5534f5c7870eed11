"""Gas of every state-changing contract function, measured on a fresh anvil node.

Runs one complete tender (and the membership changes of the consortium) through the Python client,
prints a table of the gas each function used, and ends with one JSON line. Targets (issue #2):
committing a bid <= 120,000 gas and issuing a guarantee <= 150,000 gas; the worst case counts.

    python scripts/gas_report.py [--rpc-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.client import Chain, Deployment, Signer, TxResult
from contracts.deploy import deploy, load_config
from contracts.devnode import mine_at, start_anvil
from contracts.records import BidCover, ClaimGround, CoverKind, GuaranteeTerms, Role, SectionTerms, id32, org_id
from contracts.toolchain import PROJECT_ROOT, compile_all

TARGETS = {"commitBid": 120_000, "issue": 150_000}
BOND = 800_000_00


def _id(label: str) -> bytes:
    return id32(f"{label}-{uuid.uuid4()}")


def _hash() -> bytes:
    return os.urandom(32)


class GasLog:
    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = defaultdict(list)

    def __call__(self, label: str, result: TxResult) -> TxResult:
        self.samples[label].append(result.gas_used)
        return result


def run_scenario(chain: Chain, deployment: Deployment, signers: dict[Role, list[Signer]], log: GasLog) -> None:
    """One tender with five bidders (guarantees open, sealed, and a cash deposit), to award and claims."""
    tenders, guarantees, consortium = deployment.tenders, deployment.guarantees, deployment.consortium
    agency, tenderer = signers[Role.AGENCY][0], signers[Role.TENDERER][0]
    bidders, witnesses, guarantor = signers[Role.BIDDER][:5], signers[Role.WITNESS][:3], signers[Role.GUARANTOR][0]
    admins = signers[Role.ADMIN]

    newcomer = Signer.from_key(_hash())
    proposal = log(
        "proposeAddMember", consortium.propose_add_member(admins[0], newcomer.address, org_id("x"), Role.BIDDER)
    )
    log("approve (executes)", consortium.approve(admins[1], int(proposal.return_value)))
    proposal = log("proposeSetRoles", consortium.propose_set_roles(admins[0], newcomer.address, Role.WITNESS))
    consortium.approve(admins[1], int(proposal.return_value))
    proposal = log("proposeRemoveMember", consortium.propose_remove_member(admins[0], newcomer.address))
    consortium.approve(admins[1], int(proposal.return_value))
    proposal = log("proposeSetThreshold", consortium.propose_set_threshold(admins[0], 3))
    log("approve (executes)", consortium.approve(admins[1], int(proposal.return_value)))
    proposal = consortium.propose_set_threshold(admins[0], 2)
    for admin in admins[1:3]:
        consortium.approve(admin, int(proposal.return_value))

    tender_id, section_id = _id("tender"), _id("section")
    log("createTender", tenders.create_tender(agency, tender_id, tenderer.address, _hash()))
    opening_time = chain.now() + 3600
    terms = SectionTerms(
        opening_time=opening_time,
        bid_validity_period=90 * 86400,
        bid_bond=BOND,
        witnesses=tuple(w.address for w in witnesses),
        witness_quorum=2,
    )
    log("addSection", tenders.add_section(agency, tender_id, section_id, terms))
    log("setOpeningKey", tenders.set_opening_key(agency, section_id, bytes.fromhex("02" + "ab" * 32)))

    guarantee_ids: list[bytes] = []
    covers: dict[str, BidCover] = {}
    for index, bidder in enumerate(bidders):
        if index == 4:
            covers[bidder.address] = BidCover.deposit(_id("deposit"))
            log("commitBid (cash deposit)", tenders.commit_bid(bidder, section_id, _hash(), covers[bidder.address]))
            continue
        salt = _hash() if index % 2 else None
        guarantee_id = _id("guarantee")
        guarantee_terms = GuaranteeTerms(
            section_ref=guarantees.sealed_reference(section_id, salt) if salt else section_id,
            sealed_ref=salt is not None,
            applicant=bidder.address,
            beneficiary=tenderer.address,
            amount=BOND,
            valid_until=opening_time + 120 * 86400,
            letter_hash=_hash(),
        )
        label = "issue (sealed reference)" if salt else "issue (open reference)"
        log(label, guarantees.issue(guarantor, guarantee_id, guarantee_terms))
        guarantee_ids.append(guarantee_id)
        covers[bidder.address] = BidCover.guarantee(guarantee_id, salt)
        commit = tenders.commit_bid(bidder, section_id, _hash(), covers[bidder.address])
        log("commitBid (guarantee, sealed)" if salt else "commitBid (guarantee)", commit)
    log("amendTender", tenders.amend_tender(agency, tender_id, _hash()))
    log("confirmBid", tenders.confirm_bid(bidders[1], section_id, 2))
    log("replaceBid", tenders.replace_bid(bidders[0], section_id, _hash()))
    log("withdrawBid", tenders.withdraw_bid(bidders[3], section_id))
    covers[bidders[3].address] = BidCover.guarantee(guarantee_ids[3], salt)
    recommit = tenders.commit_bid(bidders[3], section_id, _hash(), covers[bidders[3].address])
    log("commitBid (guarantee, re-commit)", recommit)

    spare = _id("guarantee")
    spare_terms = GuaranteeTerms(
        section_id, False, bidders[0].address, tenderer.address, BOND, opening_time + 1, _hash()
    )
    guarantees.issue(guarantor, spare, spare_terms)
    log("cancel", guarantees.cancel(guarantor, spare))

    mine_at(chain, opening_time)
    for bidder in bidders:
        cover = covers[bidder.address]
        kind = "cash deposit" if cover.kind == CoverKind.CASH_DEPOSIT else "guarantee"
        log(f"revealCover ({kind})", tenders.reveal_cover(agency, section_id, bidder.address, cover))
    for bidder in bidders[:3]:
        log("recordBidOpened", tenders.record_bid_opened(agency, section_id, bidder.address, _hash()))
    log(
        "recordDecryptionFailure",
        tenders.record_decryption_failure(agency, section_id, bidders[3].address, True, _hash()),
    )
    tenders.record_bid_opened(agency, section_id, bidders[4].address, _hash())
    log(
        "recordWithdrawalAfterDeadline",
        tenders.record_withdrawal_after_deadline(agency, section_id, bidders[4].address, _hash()),
    )
    record = _hash()
    log("closeOpening", tenders.close_opening(agency, section_id, record))
    for witness in witnesses[:2]:
        log("attestOpening", tenders.attest_opening(witness, section_id, record))
    objection = log("raiseObjection", tenders.raise_objection(bidders[1], section_id, _hash()))
    log("answerObjection", tenders.answer_objection(agency, section_id, int(objection.return_value), _hash()))
    log("award", tenders.award(agency, section_id, bidders[0].address, _hash()))
    log("recordRefusalToSign", tenders.record_refusal_to_sign(tenderer, section_id, _hash()))

    log("claim", guarantees.claim(tenderer, guarantee_ids[0], section_id, ClaimGround.WINNER_REFUSED_TO_SIGN, _hash()))
    log("recordPayout", guarantees.record_payout(guarantor, guarantee_ids[0], BOND, _id("payment")))
    log("release (issuer)", guarantees.release(guarantor, guarantee_ids[1], section_id))
    log("release (beneficiary)", guarantees.release(tenderer, guarantee_ids[2], section_id))
    mine_at(chain, opening_time + 121 * 86400)
    log("expire", guarantees.expire(guarantor, guarantee_ids[3]))

    second = _id("section")
    terms2 = SectionTerms(chain.now() + 3600, 86400, BOND, tuple(w.address for w in witnesses), 2)
    tenders.add_section(agency, tender_id, second, terms2)
    tenders.set_opening_key(agency, second, b"\x02" * 33)
    tenders.commit_bid(bidders[0], second, _hash(), BidCover.deposit(_id("deposit")))
    mine_at(chain, terms2.opening_time)
    log("closeOpening (failed tender)", tenders.close_opening(agency, second, _hash()))
    award_section = _id("section")
    terms3 = SectionTerms(chain.now() + 3600, 86400, BOND, tuple(w.address for w in witnesses), 2, min_valid_bids=1)
    tenders.add_section(agency, tender_id, award_section, terms3)
    tenders.set_opening_key(agency, award_section, b"\x02" * 33)
    award_cover = BidCover.deposit(_id("deposit"))
    tenders.commit_bid(bidders[0], award_section, _hash(), award_cover)
    mine_at(chain, terms3.opening_time)
    tenders.reveal_cover(agency, award_section, bidders[0].address, award_cover)
    tenders.record_bid_opened(agency, award_section, bidders[0].address, _hash())
    record = _hash()
    tenders.close_opening(agency, award_section, record)
    for witness in witnesses[:2]:
        tenders.attest_opening(witness, award_section, record)
    tenders.award(agency, award_section, bidders[0].address, _hash())
    log("recordContractSigned", tenders.record_contract_signed(tenderer, award_section, _hash()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "scripts" / "consortium.dev.json")
    args = parser.parse_args(argv)
    compile_all()
    node = start_anvil()
    try:
        chain = Chain(node.rpc_url)
        config = load_config(args.config)
        deployment, _ = deploy(chain, config)
        signers = {role: [m.signer for m in config.with_role(role)] for role in Role}
        log = GasLog()
        run_scenario(chain, deployment, signers, log)
    finally:
        node.stop()

    print(f"{'function':40s} {'calls':>5s} {'min':>9s} {'max':>9s}")
    for label in sorted(log.samples):
        values = log.samples[label]
        print(f"{label:40s} {len(values):5d} {min(values):9,d} {max(values):9,d}")
    commit_worst = max(v for label, vs in log.samples.items() if label.startswith("commitBid") for v in vs)
    issue_worst = max(v for label, vs in log.samples.items() if label.startswith("issue") for v in vs)
    summary = {
        "gas": {label: max(values) for label, values in sorted(log.samples.items())},
        "commitBid_max": commit_worst,
        "issueGuarantee_max": issue_worst,
        "targets": {"commitBid": TARGETS["commitBid"], "issueGuarantee": TARGETS["issue"]},
        "meets_targets": commit_worst <= TARGETS["commitBid"] and issue_worst <= TARGETS["issue"],
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
