"""The opening hall's chain writes, as outbox actions: how each is encoded and what its outcome changes.

A feature module of the outbox (`bidding_app.outbox.FEATURE_MODULES`: ACTIONS, encode_call,
apply_confirmed, apply_failed). Each effect runs in the sender's transaction that records the entry's
outcome, and adds the hall event viewers see, with the transaction and block.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session

from bidding_app.hall_events import emit
from bidding_app.models import (
    OpeningAttestation,
    OpeningResponse,
    OutboxEntry,
    Section,
    SectionOpening,
    ShareBatchUpload,
)
from contracts.client import Deployment

ACTIONS = (
    "publish_decryption_shares",  # a witness anchors its share batch's hash
    "record_outcomes",  # the agency records bids' outcomes (opened with the 唱标 hash, or failed)
    "close_opening",  # the agency anchors the record hash; the contract decides opened or 流标
    "raise_objection",  # a bidder's objection (hash of its text)
    "answer_objection",  # the agency's answer (hash of its text)
    "attest_opening",  # a witness attests the record hash, after the platform redid the opening for it
)


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def call_of(action: str, payload: dict[str, Any]) -> tuple[str, list[Any]]:
    """The TenderRegistry function and arguments of a hall action."""
    section = _b32(payload["section_id"])
    if action == "publish_decryption_shares":
        return "publishDecryptionShares", [section, _b32(payload["shares_hash"])]
    if action == "record_outcomes":
        outcomes = [(to_checksum_address(bidder), int(status), _b32(digest))
                    for bidder, status, digest in payload["outcomes"]]
        return "recordOutcomes", [section, outcomes]
    if action == "close_opening":
        return "closeOpening", [section, _b32(payload["record_hash"])]
    if action == "raise_objection":
        return "raiseObjection", [section, _b32(payload["objection_hash"])]
    if action == "answer_objection":
        return "answerObjection", [section, int(payload["objection_id"]), _b32(payload["answer_hash"])]
    if action == "attest_opening":
        return "attestOpening", [section, _b32(payload["record_hash"])]
    raise ValueError(f"unknown hall action {action}")


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The TenderRegistry address and calldata of a hall action (the outbox's interface)."""
    function, args = call_of(action, payload)
    registry = deployment.tenders
    contract = deployment.chain.contract("TenderRegistry", registry.address)
    return registry.address, bytes(HexBytes(contract.encode_abi(function, args=args)))


def _section(session: Session, payload: dict[str, Any]) -> Section:
    return session.scalars(sa.select(Section).where(Section.chain_id == payload["section_id"])).one()


def _proof(entry: OutboxEntry) -> dict[str, Any]:
    return {"tx": entry.tx_hash, "block": entry.block_number}


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    section = _section(session, payload)
    action = entry.action
    if action == "publish_decryption_shares":
        batch = session.get_one(ShareBatchUpload, int(payload["batch_id"]))
        batch.status, batch.chain_tx, batch.chain_block, batch.error_code = (
            "anchored", entry.tx_hash, entry.block_number, None)
        session.flush()
        anchored = session.scalar(sa.select(sa.func.count(ShareBatchUpload.id)).where(
            ShareBatchUpload.section_id == section.id, ShareBatchUpload.status == "anchored")) or 0
        emit(session, section.id, "batch_anchored", {
            "witness": batch.witness.name, "witness_index": batch.witness_index, "digest": batch.digest,
            "anchored": anchored, "quorum": section.witness_quorum, "witnesses": len(section.witnesses),
            **_proof(entry)})
    elif action == "record_outcomes":
        emit(session, section.id, "outcomes_anchored", {"count": len(payload["outcomes"]), **_proof(entry)})
    elif action == "close_opening":
        opening = session.get_one(SectionOpening, section.id)
        opening.close_tx, opening.close_block = entry.tx_hash, entry.block_number
    elif action == "raise_objection":
        response = session.get_one(OpeningResponse, int(payload["response_id"]))
        response.status, response.chain_tx, response.chain_block = "anchored", entry.tx_hash, entry.block_number
        emit(session, section.id, "objection_anchored", {"response_id": response.id, **_proof(entry)})
    elif action == "answer_objection":
        response = session.get_one(OpeningResponse, int(payload["response_id"]))
        response.answer_status, response.answer_tx, response.answer_block = (
            "anchored", entry.tx_hash, entry.block_number)
        emit(session, section.id, "answer_anchored", {"response_id": response.id, **_proof(entry)})
    elif action == "attest_opening":
        attestation = session.get_one(OpeningAttestation, (section.id, entry.organisation_id))
        attestation.status, attestation.chain_tx, attestation.chain_block = (
            "attested", entry.tx_hash, entry.block_number)
        emit(session, section.id, "attestation", {"witness": attestation.witness.name, "status": "attested",
                                                  "detail": attestation.detail, **_proof(entry)})


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    """The chain refused the write: mark what depended on it and tell the hall why (the error's name)."""
    section = _section(session, payload)
    action = entry.action
    if action == "publish_decryption_shares":
        batch = session.get_one(ShareBatchUpload, int(payload["batch_id"]))
        batch.status, batch.error_code = "failed", entry.error_code
    elif action in ("record_outcomes", "close_opening"):
        opening = session.get_one(SectionOpening, section.id)
        opening.error = f"{action}: {entry.error_code}"
    elif action == "raise_objection":
        session.get_one(OpeningResponse, int(payload["response_id"])).status = "failed"
    elif action == "answer_objection":
        session.get_one(OpeningResponse, int(payload["response_id"])).answer_status = "failed"
    elif action == "attest_opening":
        attestation = session.get_one(OpeningAttestation, (section.id, entry.organisation_id))
        attestation.status, attestation.detail = "failed", entry.error_code or ""
    emit(session, section.id, "chain_write_failed", {"action": action, "error": entry.error_code,
                                                     "organisation": entry.organisation.name})
