"""Builders for the guarantee tests: parties from the dev consortium, applications, issued letters."""

from __future__ import annotations

import os
import uuid
from typing import Any

from contracts.client import Signer
from contracts.records import Role
from guarantees import lifecycle
from guarantees.records import (
    GuaranteeApplication,
    IssuedGuarantee,
    ManualDecision,
    Party,
    PremiumPayment,
    PremiumTerms,
    UnderwritingDecision,
    UnderwritingRules,
)
from tests.helpers import Platform, SectionRef

BASE_URL = "https://jz.example.cn"
PREMIUM = PremiumTerms(rate_bp=15, minimum=300_00)


def party(platform: Platform, signer: Signer) -> Party:
    for member in platform.config.members:
        if member.signer.address == signer.address:
            return Party(member.name, member.identifier, signer.address)
    return Party("某投标人有限公司", "91350200MA99999999", signer.address)


def fresh_number() -> str:
    return f"JZBH-{uuid.uuid4().hex[:16].upper()}"


def application(
    platform: Platform,
    section: SectionRef,
    bidder: Signer,
    *,
    guarantor: Signer | None = None,
    sealed: bool = True,
    **changes: Any,
) -> GuaranteeApplication:
    chosen = guarantor or platform.guarantors[0]
    values: dict[str, Any] = {
        "number": fresh_number(),
        "applicant": party(platform, bidder),
        "beneficiary": party(platform, platform.tenderer),
        "guarantor": party(platform, chosen),
        "project_name": "厦门市某水厂扩建工程施工总承包",
        "section_name": "第一标段（土建）",
        "section_id": section.section_id,
        "amount": section.terms.bid_bond,
        "valid_until": section.opening_time + section.terms.bid_validity_period + 30 * 86400,
        "applied_at": platform.now(),
        "sealed": sealed,
        "salt": os.urandom(32) if sealed else b"",
    }
    values.update(changes)
    return GuaranteeApplication(**values)


def issue(platform: Platform, app: GuaranteeApplication, guarantor: Signer | None = None) -> IssuedGuarantee:
    """Underwrite, take the premium and issue, as the platform does for an approved application."""
    decision, payment = approve_and_pay(platform, app)
    return lifecycle.issue(
        platform.deployment, guarantor or platform.guarantors[0], app, decision, payment, base_url=BASE_URL
    )


def approve_and_pay(platform: Platform, app: GuaranteeApplication) -> tuple[UnderwritingDecision, PremiumPayment]:
    facts = lifecycle.section_facts(platform.deployment, app.section_id)
    now = platform.now()
    decision = lifecycle.underwrite(
        app, facts, UnderwritingRules(), ManualDecision("张审核", True, "资信良好", now), now
    )
    payment = lifecycle.record_premium(
        app,
        decision,
        PREMIUM,
        paid_amount=lifecycle.compute_premium(app.amount, PREMIUM),
        payer_account=f"6222{app.applicant.identifier[-8:]}",
        payment_ref=f"PAY-{app.number}",
        paid_at=now,
    )
    return decision, payment


def guarantor_members(platform: Platform) -> list[Signer]:
    return [m.signer for m in platform.config.with_role(Role.GUARANTOR)]
