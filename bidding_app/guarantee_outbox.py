"""The guarantee desk's chain writes, as outbox actions: how each is encoded and what it changes once
the chain confirmed (or refused) it.

`bidding_app.outbox` dispatches the actions named in `ACTIONS` here, so the outbox's own if-chains stay
as they are. Every payload names the application, the state it reaches when confirmed (`done`) and
the state it falls back to when the contract refuses the write (`undo`): the refusal's error name is
kept on the application, so the page says what the chain objected to. Either applies only while the
application is still in the write's `pending` state: a duplicate write refused after the first one
landed leaves the application as the first one made it.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session

from bidding_app.models import (
    GuaranteeApplication,
    GuaranteeClaim,
    GuaranteeEnding,
    IssuedGuaranteeLetter,
    OutboxEntry,
    now,
)
from contracts.client import Deployment

ACTIONS = ("issue_guarantee", "cancel_guarantee", "release_guarantee", "expire_guarantee", "claim_guarantee",
           "record_guarantee_payout")


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The GuaranteeRegistry address and the calldata of one of the desk's outbox entries."""
    guarantee = _b32(payload["guarantee_id"])
    args: list[Any]
    if action == "issue_guarantee":
        terms = (_b32(payload["section_ref"]), True, to_checksum_address(payload["applicant"]),
                 to_checksum_address(payload["beneficiary"]), int(payload["amount"]), int(payload["valid_until"]),
                 _b32(payload["letter_hash"]))
        function, args = "issue", [guarantee, terms]
    elif action == "cancel_guarantee":
        function, args = "cancel", [guarantee]
    elif action == "release_guarantee":
        function, args = "release", [guarantee, _b32(payload["section_id"])]
    elif action == "expire_guarantee":
        function, args = "expire", [guarantee]
    elif action == "claim_guarantee":
        function = "claim"
        args = [guarantee, _b32(payload["section_id"]), int(payload["ground"]), _b32(payload["evidence_hash"])]
    elif action == "record_guarantee_payout":
        function, args = "recordPayout", [guarantee, int(payload["paid"]), _b32(payload["payment_ref"])]
    else:
        raise ValueError(f"unknown guarantee outbox action {action}")
    registry = deployment.guarantees.address
    contract = deployment.chain.contract("GuaranteeRegistry", registry)
    return registry, bytes(HexBytes(contract.encode_abi(function, args=args)))


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    """The write is final: the application reaches its next state and the step row gets tx and block."""
    application = session.get_one(GuaranteeApplication, int(payload["application_id"]))
    if application.state == payload["pending"]:
        application.state, application.error_code, application.updated_at = payload["done"], None, now()
    step: IssuedGuaranteeLetter | GuaranteeEnding | GuaranteeClaim | None = None
    if entry.action == "issue_guarantee":
        step = session.get_one(IssuedGuaranteeLetter, int(payload["letter_id"]))
    elif "ending_id" in payload:
        step = session.get_one(GuaranteeEnding, int(payload["ending_id"]))
    elif entry.action == "claim_guarantee":
        step = session.get_one(GuaranteeClaim, int(payload["claim_id"]))
    if step is not None:
        step.tx_hash, step.block = entry.tx_hash, entry.block_number
    if entry.action == "record_guarantee_payout":
        claim = session.get_one(GuaranteeClaim, int(payload["claim_id"]))
        claim.payout, claim.payout_ref = int(payload["paid"]), str(payload["payment_ref_text"])
        claim.payout_tx, claim.payout_block = entry.tx_hash, entry.block_number


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    """The contract refused the write: back to the state before it, with the contract error's name."""
    application = session.get_one(GuaranteeApplication, int(payload["application_id"]))
    if application.state == payload["pending"]:
        application.state, application.error_code, application.updated_at = payload["undo"], entry.error_code, now()
    if entry.action == "claim_guarantee":  # a refused claim leaves none: the beneficiary may claim again
        session.delete(session.get_one(GuaranteeClaim, int(payload["claim_id"])))
