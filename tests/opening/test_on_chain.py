"""A whole threshold opening on a real node, through the witness software, the opener and the CLI."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contracts import errors
from contracts.records import BidCover, BidStatus, ClaimGround, SectionStatus
from opening import dkg
from opening.chainio import anchor_opening, attest_opening, early_access_log, read_public_data
from opening.cli import main as cli
from opening.envelope import commitment_of, seal_bid
from opening.opener import open_section, verify_opening
from opening.witness import (
    AccessRequest,
    SealedReadBeforeDeadline,
    ShareBeforeDeadline,
    WitnessShare,
    WrongWitnessKey,
    compute_share_batch,
    guard_sealed_read,
    publish_shares,
    release_shares,
    save_share,
)
from tests.helpers import Platform, SectionRef, commit_bid, commit_with_deposit, new_section, pass_deadline


@pytest.fixture
def resync_signers(platform: Platform) -> Iterator[Callable[[], None]]:
    """The CLI signs with the same keys as the session's signers: make those re-read their nonces
    from the node (after the test, and on demand), so no later test meets a stale nonce."""

    def resync() -> None:
        for signer in (platform.agency, *platform.witnesses):
            signer._next_nonce.clear()

    yield resync
    resync()


def _keyed_section(platform: Platform) -> tuple[SectionRef, list[WitnessShare]]:
    """A section of the dev consortium's three witnesses (quorum 2) whose key comes from their DKG."""
    section = new_section(platform, quorum=2, opening_key=b"")
    transport = [dkg.new_transport_key() for _ in platform.witnesses]
    params = dkg.DkgParams(section.section_id, 2, tuple(public for _, public in transport))
    deals = [dkg.deal(params, i) for i in range(1, 4)]
    outcome = dkg.finish(params, deals, [])
    key = outcome.opening_key.encode()
    platform.tenders.set_opening_key(platform.agency, section.section_id, key)
    shares = [
        WitnessShare(section.section_id, j, dkg.secret_share(params, deals, outcome, j, transport[j - 1][0]), key)
        for j in range(1, 4)
    ]
    return section, shares


def _request(section: SectionRef, who: str) -> AccessRequest:
    return AccessRequest(section.section_id, who, "decryption shares", int(time.time()))


def test_witness_refuses_shares_before_the_deadline_and_anchors_the_attempt(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resync_signers: Callable[[], None]
) -> None:
    section, shares = _keyed_section(platform)
    witness = platform.witnesses[0]
    with pytest.raises(ShareBeforeDeadline) as caught:
        release_shares(platform.tenders, witness, shares[0], {}, _request(section, "平台运营人员"))
    assert caught.value.opening_time == section.opening_time
    assert platform.tenders.early_access_attempts(section.section_id) == 1
    (logged,) = early_access_log(platform.tenders, section.section_id)
    assert logged.args["reporter"] == witness.address
    assert logged.args["evidenceHash"] == caught.value.evidence_hash
    # The contract refuses an early share hash too, even from software that skipped the check.
    batch = compute_share_batch(shares[0], {}, {})
    with pytest.raises(errors.TenderRegistryBeforeOpening):
        publish_shares(platform.tenders, witness, batch)
    # The CLI says no with exit status 3, and anchors that attempt as well.
    share_file = tmp_path / "share.json"
    save_share(share_file, "口令 passphrase", shares[0])
    monkeypatch.setenv("JZ_TEST_PASSPHRASE", "口令 passphrase")
    monkeypatch.setenv("JZ_TEST_WITNESS_KEY", witness.account.key.hex())
    common = ["--rpc-url", platform.backend.chain.rpc_url, "--registry", platform.tenders.address]
    secrets_ = ["--passphrase-env", "JZ_TEST_PASSPHRASE", "--key-env", "JZ_TEST_WITNESS_KEY"]
    status = cli([*common, *secrets_, "shares", "--share-file", str(share_file), "--envelopes", str(tmp_path),
                  "--out", str(tmp_path / "s.json")])  # fmt: skip
    resync_signers()
    assert status == 3
    assert platform.tenders.early_access_attempts(section.section_id) == 2
    assert not (tmp_path / "s.json").exists()
    # The platform's store refuses to hand out sealed bids early, and its agency anchors that too.
    read = AccessRequest(section.section_id, "运维账号 ops-7", "read sealed bids", int(time.time()))
    with pytest.raises(SealedReadBeforeDeadline):
        guard_sealed_read(platform.tenders, platform.agency, read)
    assert platform.tenders.early_access_attempts(section.section_id) == 3
    pass_deadline(platform, section)
    assert guard_sealed_read(platform.tenders, platform.agency, read) >= section.opening_time


def test_whole_opening_on_chain(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resync_signers: Callable[[], None]
) -> None:
    section, shares = _keyed_section(platform)
    key = platform.tenders.opening_key(section.section_id)
    bidders = platform.bidders[:4]
    envelopes: dict[str, Path] = {}
    for number, bidder in enumerate(bidders):
        announced = {"price_fen": 5_000_000_00 - number, "duration_days": 120, "quality": "合格"}
        envelope = seal_bid(section.section_id, key, bidder.address, announced, os.urandom(3000), "技术标.pdf")
        commit_bid(platform, bidder, section.section_id, commitment_of(envelope), BidCover.deposit(os.urandom(32)))
        if number == 3:  # stored differently from what the bidder committed
            envelope = envelope[:-1] + bytes([envelope[-1] ^ 1])
        path = tmp_path / f"{bidder.address}.jzb"
        path.write_bytes(envelope)
        envelopes[bidder.address] = path
    # The tender is amended after the bids; only the first bidder confirms its bid for it.
    platform.tenders.amend_tender(platform.agency, section.tender_id, os.urandom(32))
    platform.tenders.confirm_bid(bidders[0], section.section_id, 2)
    pass_deadline(platform, section)

    witnesses = platform.witnesses
    batches = []
    for witness, share in zip(witnesses[:2], shares[:2], strict=True):
        batch = release_shares(platform.tenders, witness, share, envelopes, _request(section, witness.address))
        publish_shares(platform.tenders, witness, batch)
        (tmp_path / f"shares-{share.index}.json").write_bytes(batch.canonical())
        batches.append(batch)
    with pytest.raises(WrongWitnessKey):  # witness 3's account with witness 1's share
        release_shares(platform.tenders, witnesses[2], shares[0], envelopes, _request(section, "x"))
    with pytest.raises(errors.TenderRegistrySharesAlreadyPublished):
        publish_shares(platform.tenders, witnesses[0], batches[0])

    data = read_public_data(platform.tenders, section.section_id)
    assert [i for i, _ in data.anchored_shares] == [1, 2]
    assert data.tender_amendment == 1
    result = open_section(data, batches, envelopes, platform.now())
    assert result.record["counts"] == {"opened": 3, "revoked": 1, "withdrawn": 0}
    # The record says which bids stand for the documents as published: all but the confirmed one.
    assert result.record["tender_amendment"] == 1
    assert {b["bidder"]: (b["confirmed_amendment"], b["amendment_confirmed"]) for b in result.record["bids"]} == {
        b.address.lower(): (1, True) if b is bidders[0] else (0, False) for b in bidders
    }
    anchor_opening(platform.tenders, platform.agency, section.section_id, result)
    attest_opening(platform.tenders, witnesses[:2], section.section_id, result.record_hash)

    tenders = platform.tenders
    stored = tenders.section(section.section_id)
    assert (stored.status, stored.opening_record_hash) == (SectionStatus.OPENED, result.record_hash)
    assert tenders.is_witnessed(section.section_id)
    assert [tenders.bid(section.section_id, b.address).status for b in bidders] == [BidStatus.OPENED] * 3 + [
        BidStatus.DECRYPTION_FAILED_BIDDER_CAUSED
    ]
    # Art. 31: the bidder-caused failure is a ground to claim its bond.
    assert tenders.claim_ground_holds(
        section.section_id, bidders[3].address, ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE
    )

    # Anyone with the public data redoes the opening and gets the anchored record.
    again = verify_opening(
        read_public_data(tenders, section.section_id),
        batches,
        envelopes,
        result.record_bytes,
        stored.opening_record_hash,
    )
    assert again.record_hash == result.record_hash
    record_file = tmp_path / "record.json"
    record_file.write_bytes(result.record_bytes)
    common = ["--rpc-url", platform.backend.chain.rpc_url, "--registry", tenders.address, "--workers", "1"]
    shares_files = [str(tmp_path / "shares-1.json"), str(tmp_path / "shares-2.json")]
    verify = ["verify-opening", "--section", "0x" + section.section_id.hex(), "--envelopes", str(tmp_path)]
    assert cli([*common, *verify, "--shares", *shares_files, "--record", str(record_file)]) == 0
    # The third witness verifies and attests through the CLI.
    monkeypatch.setenv("JZ_TEST_WITNESS3_KEY", witnesses[2].account.key.hex())
    attest = ["--key-env", "JZ_TEST_WITNESS3_KEY", *common, *verify, "--shares", *shares_files]
    assert cli([*attest, "--record", str(record_file), "--attest"]) == 0
    resync_signers()
    assert tenders.has_attested(section.section_id, witnesses[2].address)
    record_file.write_bytes(result.record_bytes.replace(b'"opened_at":', b'"opened_at":1'))
    assert cli([*common, *verify, "--shares", *shares_files, "--record", str(record_file)]) == 2


def test_commit_needs_the_anchored_key_and_a_bid_without_shares_is_withdrawn(
    platform: Platform, tmp_path: Path
) -> None:
    section, shares = _keyed_section(platform)
    bidder = platform.bidders[0]
    commit_with_deposit(platform, section, bidder)  # a commitment whose envelope never reaches the platform
    pass_deadline(platform, section)
    batch = release_shares(platform.tenders, platform.witnesses[0], shares[0], {}, _request(section, "w"))
    assert batch.shares == ()  # no envelope at hand: nothing to compute, nothing leaked
    result = open_section(read_public_data(platform.tenders, section.section_id), [batch], {}, platform.now())
    assert json.loads(result.record_bytes)["bids"][0]["failure"]["cause"] == "envelope_unavailable"


@pytest.mark.usefixtures("resync_signers")
def test_the_whole_opening_through_the_cli(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the README walks through: DKG, anchoring, sealing, shares, opening and attestation by CLI."""
    section = new_section(platform, quorum=2, opening_key=b"")
    section_hex = "0x" + section.section_id.hex()
    monkeypatch.setenv("JZ_PASSPHRASE", "见证")
    monkeypatch.setenv("JZ_AGENCY_KEY", platform.agency.account.key.hex())
    for j, witness in enumerate(platform.witnesses, start=1):
        monkeypatch.setenv(f"JZ_W{j}_KEY", witness.account.key.hex())
    chain = ["--rpc-url", platform.backend.chain.rpc_url, "--registry", platform.tenders.address]

    def run(*args: str) -> str:
        status = cli(list(args))
        captured = capsys.readouterr()
        assert status == 0, captured.err
        return captured.out.strip()

    publics = [run("keygen", "--out", str(tmp_path / f"t{j}.json")) for j in (1, 2, 3)]
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"section_id": section_hex, "threshold": 2, "transport_keys": publics}))
    deals = [str(tmp_path / f"deal-{j}.json") for j in (1, 2, 3)]
    for j in (1, 2, 3):
        run("deal", "--params", str(params), "--index", str(j), "--out", deals[j - 1])
    key = ""
    for j in (1, 2, 3):
        summary = run(
            "finish-dkg", "--params", str(params), "--deals", *deals, "--index", str(j),
            "--transport-key", str(tmp_path / f"t{j}.json"), "--share-out", str(tmp_path / f"share-{j}.json"),
        )  # fmt: skip
        key = json.loads(summary)["opening_key"]
    run(*chain, "--key-env", "JZ_AGENCY_KEY", "anchor-key", "--section", section_hex, "--opening-key", key)

    envelopes = tmp_path / "bids"
    envelopes.mkdir()
    document = tmp_path / "投标文件.pdf"
    document.write_bytes(b"%PDF-1.7 " + os.urandom(500))
    for number, bidder in enumerate(platform.bidders[:3]):
        commitment = run(
            "seal", "--section", section_hex, "--opening-key", key, "--bidder", bidder.address,
            "--announced", json.dumps({"price_fen": 700_000_00 + number, "quality": "合格"}),
            "--document", str(document), "--out", str(envelopes / f"{bidder.address}.jzb"),
        )  # fmt: skip
        commit_bid(platform,
            bidder, section.section_id, bytes.fromhex(commitment[2:]), BidCover.deposit(os.urandom(32))
        )
    pass_deadline(platform, section)

    shares = [str(tmp_path / f"shares-{j}.json") for j in (1, 3)]
    for j, out in zip((1, 3), shares, strict=True):
        run(*chain, "--key-env", f"JZ_W{j}_KEY", "--workers", "1", "shares", "--share-file",
            str(tmp_path / f"share-{j}.json"), "--envelopes", str(envelopes), "--out", out, "--publish")  # fmt: skip
    record = tmp_path / "record.json"
    opened = run(*chain, "--key-env", "JZ_AGENCY_KEY", "--workers", "1", "open", "--section", section_hex,
                 "--envelopes", str(envelopes), "--shares", *shares, "--out", str(record), "--anchor")  # fmt: skip
    assert json.loads(opened)["opened"] == 3
    for j in (1, 3):
        run(*chain, "--key-env", f"JZ_W{j}_KEY", "--workers", "1", "verify-opening", "--section", section_hex,
            "--envelopes", str(envelopes), "--shares", *shares, "--record", str(record), "--attest")  # fmt: skip
    assert platform.tenders.is_witnessed(section.section_id)
    stored = platform.tenders.section(section.section_id)
    assert stored.status == SectionStatus.OPENED
    assert "0x" + stored.opening_record_hash.hex() == json.loads(opened)["record_hash"]
