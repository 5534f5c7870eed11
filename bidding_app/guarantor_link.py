"""The platform's side of the guarantor integration API (`guarantees.web.guarantor_blueprint`).

A bank's or insurer's own system pulls the applications addressed to it (sealed: the reference, never
the tender) and pushes underwriting results, premiums received, letters it issued and anchored itself,
releases and claim payouts. Requests arrive authenticated (signed with the guarantor's consortium key,
replays refused: `guarantees.integration`); here each message is checked against the application's
state and the chain, applied through the same rules as the guarantor's pages, and answered with the
application's new state. A refusal is an `integration.IntegrationError` with a specific code.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from bidding_app import guarantee_desk as desk
from bidding_app.chain import ChainGateway
from bidding_app.db import db
from bidding_app.errors import AppError
from bidding_app.models import (
    GuaranteeApplication,
    GuaranteeEnding,
    IssuedGuaranteeLetter,
    Organisation,
    now,
)
from contracts.records import GuaranteeState
from guarantees import integration, lifecycle
from guarantees.integration import StepRefused, UnknownApplication
from guarantees.letter import read_signature

OPEN_STATES = ("applied", "approved", "paid")


class PlatformGuarantorLink:
    """Handler and application source of the guarantor API, on the platform's database and chain link."""

    def __init__(self, app: Flask, gateway: ChainGateway) -> None:
        self.app = app
        self.gateway = gateway

    # -------------------------------------------------------------- pull

    def applications(self, guarantor: str) -> list[dict[str, Any]]:
        organisation = self._organisation(guarantor)
        rows = db.session.scalars(sa.select(GuaranteeApplication).where(
            GuaranteeApplication.guarantor_id == organisation.id, GuaranteeApplication.state.in_(OPEN_STATES)
        ).order_by(GuaranteeApplication.id)).all()
        answer = []
        for row in rows:
            message = integration.application_message(desk.record_of(row), bytes.fromhex(row.section_ref[2:]))
            answer.append({**message.to_json(), "state": row.state, "premium_due_fen": desk.premium_due(row)})
        return answer

    # -------------------------------------------------------------- push

    def handle(self, guarantor: str, message: integration.Message) -> dict[str, Any]:
        organisation = self._organisation(guarantor)
        application = db.session.scalars(sa.select(GuaranteeApplication).where(
            GuaranteeApplication.number == message.number, GuaranteeApplication.guarantor_id == organisation.id
        )).first()
        if application is None:
            raise UnknownApplication(f"no application {message.number} addressed to {guarantor}")
        try:
            if isinstance(message, integration.UnderwritingResultMessage):
                self._underwriting(application, message)
            elif isinstance(message, integration.PremiumMessage):
                desk.record_premium(db.session, application, f"{organisation.name}（系统接口）", message.paid_fen,
                                    message.payer_account, message.payment_ref)
            elif isinstance(message, integration.LetterMessage):
                self._letter(application, message)
            elif isinstance(message, integration.ReleaseMessage):
                self._ended_on_chain(application, message.tx_hash, GuaranteeState.RELEASED, "released", "release")
            else:
                self._payout(application, message)
        except AppError as error:
            db.session.rollback()
            raise StepRefused(f"{error.code}: {error.message}") from error
        return {"number": application.number, "state": application.state}

    def _organisation(self, guarantor: str) -> Organisation:
        found = db.session.scalars(sa.select(Organisation).where(sa.func.lower(Organisation.address) ==
                                                                  guarantor.lower())).first()
        if found is None:
            raise UnknownApplication(f"{guarantor} is no organisation of this platform")
        return found

    def _underwriting(self, application: GuaranteeApplication, message: integration.UnderwritingResultMessage) -> None:
        if message.approved and message.premium_fen != desk.premium_due(application):
            raise StepRefused(f"premium_mismatch: premium due is {desk.premium_due(application)} fen")
        reason = "；".join(message.reasons)[: desk.MAX_TEXT] or ("系统承保" if message.approved else "系统拒保")
        desk.underwrite(db.session, self.gateway, application, f"{message.underwriter[:60]}（系统接口）",
                        message.approved, reason)

    def _letter(self, application: GuaranteeApplication, message: integration.LetterMessage) -> None:
        """A letter the guarantor issued and anchored itself (already verified genuine, in force and signed
        by it): accepted if its on-chain terms are the application's."""
        if application.state != "paid":
            raise StepRefused(f"not_ready: application {application.number} is {application.state}, not paid")
        deployment = desk.deployment_of(self.gateway)
        stored = lifecycle.on_chain(deployment, application.number)
        record = desk.record_of(application)
        expected = lifecycle.guarantee_terms(record, b"")
        if (stored.section_ref != expected.section_ref or not stored.sealed_ref
                or stored.applicant.lower() != expected.applicant.lower()
                or stored.beneficiary.lower() != expected.beneficiary.lower()
                or stored.amount != application.amount or stored.valid_until < application.valid_until):
            raise StepRefused("terms_mismatch: the guarantee on chain is not the one applied for")
        block, _ = read_signature(message.pdf)
        anchored = deployment.guarantees.issued_event(bytes.fromhex(application.guarantee_id[2:]))
        stored_name = f"{uuid.uuid4().hex}.pdf"
        path = desk.letter_path(Path(self.app.config["UPLOAD_FOLDER"]), stored_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(message.pdf)
        db.session.add(IssuedGuaranteeLetter(
            application_id=application.id, stored_name=stored_name, size=len(message.pdf),
            letter_hash="0x" + block.letter_hash.hex(), source="guarantor_api", issued_at=now(),
            tx_hash=anchored[1] if anchored else None, block=anchored[2] if anchored else None))
        application.state, application.updated_at = "issued", now()
        db.session.commit()

    def _receipt_block(self, tx_hash: str) -> int:
        """The block of a guarantor's own transaction to GuaranteeRegistry that succeeded."""
        deployment = desk.deployment_of(self.gateway)
        try:
            receipt = deployment.chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            raise StepRefused(f"unknown_transaction: {tx_hash} is not on chain") from None
        if receipt["status"] != 1 or str(receipt["to"]).lower() != deployment.guarantees.address.lower():
            raise StepRefused(f"wrong_transaction: {tx_hash} is no successful GuaranteeRegistry call")
        return int(receipt["blockNumber"])

    def _ended_on_chain(self, application: GuaranteeApplication, tx_hash: str, state: GuaranteeState, done: str,
                        kind: str) -> None:
        if application.state != "issued":
            raise StepRefused(f"illegal_transition: {application.number} is {application.state}")
        block = self._receipt_block(tx_hash)
        deployment = desk.deployment_of(self.gateway)
        if lifecycle.on_chain(deployment, application.number).state != state:
            raise StepRefused(f"chain_disagrees: {application.number} is not {state.name.lower()} on chain")
        db.session.add(GuaranteeEnding(application_id=application.id, kind=kind, requested_by="担保机构系统接口",
                                       reason="", tx_hash=tx_hash, block=block))
        application.state, application.updated_at = done, now()
        db.session.commit()

    def _payout(self, application: GuaranteeApplication, message: integration.PayoutMessage) -> None:
        claim = desk.claim_of(db.session, application)
        if application.state != "claimed" or claim is None:
            raise StepRefused(f"illegal_transition: {application.number} has no claim waiting for payment")
        block = self._receipt_block(message.tx_hash)
        deployment = desk.deployment_of(self.gateway)
        if lifecycle.on_chain(deployment, application.number).state != GuaranteeState.PAID:
            raise StepRefused(f"chain_disagrees: {application.number} is not paid on chain")
        claim.payout, claim.payout_ref = message.paid_fen, message.payment_ref
        claim.payout_tx, claim.payout_block = message.tx_hash, block
        application.state, application.updated_at = "paid_out", now()
        db.session.commit()

