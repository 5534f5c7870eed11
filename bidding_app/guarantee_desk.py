"""Electronic bid guarantees in the platform (issue #5): the business rules, as free functions.

The rules themselves live in `guarantees.lifecycle` (and again in the contract); this module keeps the
platform's records of each step in the database, refuses an illegal step with a specific Chinese
error before anything is written, and queues each chain write on the durable outbox
(`bidding_app.guarantee_outbox`) in the same database transaction as the step's record.

Every guarantee is a 密文保函: the chain and the guarantor see only the sealed reference
keccak(sectionId, salt) until the section's opening is on chain (`lifecycle.sealed_view`); the salt is
shown to the bidder, which needs it to rely on the guarantee in its bid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bidding_app import bids, outbox
from bidding_app.chain import ChainGateway
from bidding_app.errors import AppError, ChainUnavailable, InvalidInput, NotFound, NotRegistered
from bidding_app.models import (
    Bid,
    GuaranteeApplication,
    GuaranteeClaim,
    GuaranteeEnding,
    GuaranteePremium,
    GuaranteeUnderwriting,
    IssuedGuaranteeLetter,
    Organisation,
    Section,
    Tender,
    now,
)
from contracts.client import Deployment
from contracts.records import ClaimGround, CoverKind, Guarantee, GuaranteeState, Role, id32
from guarantees import errors, lifecycle, supervision
from guarantees.letter import letter_hash, render_letter, sign_letter
from guarantees.records import (
    Claimability,
    Decision,
    ManualDecision,
    Party,
    PremiumTerms,
    SealedView,
    SupervisionAlert,
    UnderwritingDecision,
    UnderwritingRules,
)
from guarantees.records import GuaranteeApplication as ApplicationRecord

RULES = UnderwritingRules()
PREMIUM = PremiumTerms()
PAYER_ACCOUNT = re.compile(r"^[0-9A-Za-z-]{6,34}$")
MAX_TEXT = 2000

STATE_LABELS = {
    "applied": "待承保",
    "declined": "已拒保",
    "approved": "已承保，待缴保费",
    "paid": "保费已缴，待出函",
    "issuing": "出函上链中",
    "issued": "已出函（有效）",
    "issue_failed": "出函被链上拒绝",
    "withdrawn": "申请已撤回",
    "cancelling": "撤销上链中",
    "cancelled": "已撤销",
    "releasing": "解除上链中",
    "released": "已解除",
    "expiring": "过期登记上链中",
    "expired": "已过期",
    "claiming": "索赔上链中",
    "claimed": "已索赔，待赔付",
    "paying": "赔付登记上链中",
    "paid_out": "已赔付",
}
ISSUED_STATES = ("issued", "cancelling", "cancelled", "releasing", "released", "expiring", "expired", "claiming",
                 "claimed", "paying", "paid_out")
BENEFICIARY_STATES = tuple(s for s in ISSUED_STATES if s not in ("cancelling", "cancelled"))
GROUND_LABELS = {
    ClaimGround.WITHDRAWAL_AFTER_DEADLINE: "投标截止后撤回投标文件",
    ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE: "因投标人原因投标文件解密失败",
    ClaimGround.WINNER_REFUSED_TO_SIGN: "中标人拒绝签订合同",
}


class GuaranteeRefused(AppError):
    """A guarantee step the rules do not allow; `code` names the rule (see `REFUSALS`)."""

    status = 409

    def __init__(self, code: str, message: str, *, status: int = 409, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.code, self.status = code, status


# The library's refusal → (code, status, message in Chinese, form field).
REFUSALS: dict[type[errors.GuaranteeError], tuple[str, int, str, str | None]] = {
    errors.AmountBelowBond: ("amount_below_bond", 400, "担保金额不得低于本标段的投标保证金", "amount"),
    errors.ValidityTooShort: ("validity_too_short", 400, "保函有效期须覆盖投标有效期（自开标时间起算）",
                              "validity_days"),
    errors.BeneficiaryNotTenderer: ("beneficiary_not_tenderer", 409, "受益人必须是本标段的招标人", None),
    errors.AfterDeadline: ("after_deadline", 409, "已过投标截止时间（开标时间），不能再申请或出具保函", None),
    errors.UnknownSection: ("section_not_on_chain", 409, "该标段尚未上链，暂不能申请保函", None),
    errors.InvalidApplication: ("invalid_application", 400, "保函申请内容有误", None),
    errors.NotUnderwritten: ("not_underwritten", 409, "该申请尚未承保，不能缴纳保费或出函", None),
    errors.PremiumMismatch: ("premium_mismatch", 400, "保费金额与按费率计算的应缴保费不一致", "amount"),
    errors.PremiumNotPaid: ("premium_not_paid", 409, "保费尚未缴纳，不能出函", None),
    errors.NotCancellable: ("not_cancellable", 409, "已有投标使用该保函或已过投标截止时间，不能撤销", None),
    errors.NotReleasable: ("not_releasable", 409,
                           "招标尚未以解除投标保证金的方式结束：未中标人在定标或流标后、中标人在签订合同后方可解除",
                           None),
    errors.NotExpired: ("not_expired", 409, "保函尚在有效期内，不能登记过期", None),
    errors.ClaimWithoutGround: ("claim_without_ground", 400, "索赔须写明索赔事由并提供证据", "ground"),
    errors.ClaimGroundNotMet: ("claim_ground_not_met", 409, "链上开标记录不支持该索赔事由", "ground"),
    errors.InvalidPayout: ("invalid_payout", 400, "赔付金额须大于零且不超过担保金额", "paid"),
    errors.IllegalTransition: ("illegal_transition", 409, "保函当前状态不允许此操作", None),
    errors.UnknownGuarantee: ("unknown_guarantee", 409, "链上没有该保函", None),
    errors.WrongParty: ("wrong_party", 403, "贵单位不是该操作的当事方", None),
}


def refusal(error: errors.GuaranteeError) -> GuaranteeRefused:
    """The platform's answer to a refusal of `guarantees.lifecycle`: the most specific rule's code."""
    for kind in type(error).__mro__:
        if kind in REFUSALS:
            code, status, message, field = REFUSALS[kind]
            return GuaranteeRefused(code, message, status=status, field=field)
    return GuaranteeRefused("guarantee_refused", "保函操作被拒绝")


def illegal(message: str) -> GuaranteeRefused:
    return GuaranteeRefused("illegal_transition", message)


def _commit(session: Session) -> None:
    """Commit a step; the same step submitted twice at once meets a unique key and is refused as such."""
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        raise GuaranteeRefused("duplicate_submission", "该操作已提交，请勿重复提交") from None


def deployment_of(gateway: ChainGateway) -> Deployment:
    if gateway.deployment is None:
        raise ChainUnavailable()
    return gateway.deployment


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _text(value: Any, label: str, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{label}格式不正确", field=field)
    if required and not text:
        raise InvalidInput(f"请填写{label}", field=field)
    if len(text) > limit or any(ord(ch) < 32 and ch not in "\r\n\t" for ch in text):
        raise InvalidInput(f"{label}不能超过{limit}个字符，且不能含控制字符", field=field)
    return text


def _integer(value: Any, label: str, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInput(f"请填写{label}（整数）", field=field)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label}必须是整数", field=field) from None
    if isinstance(value, float) and value != number:
        raise InvalidInput(f"{label}必须是整数", field=field)
    if not low <= number <= high:
        raise InvalidInput(f"{label}必须在 {low} 到 {high} 之间", field=field)
    return number


# ------------------------------------------------------------------ records the library works on


def party(organisation: Organisation) -> Party:
    return Party(organisation.name, organisation.identifier, organisation.address or "")


def record_of(application: GuaranteeApplication) -> ApplicationRecord:
    """The library's view of an application row (parties, section, terms, the sealed reference's salt)."""
    section = application.section
    return ApplicationRecord(
        number=application.number,
        applicant=party(application.bidder),
        beneficiary=party(section.tender.tenderer),
        guarantor=party(application.guarantor),
        project_name=section.tender.title,
        section_name=section.title,
        section_id=_b32(section.chain_id),
        amount=application.amount,
        valid_until=application.valid_until,
        applied_at=application.applied_at,
        sealed=True,
        salt=_b32(application.salt),
    )


def underwriting_of(session: Session, application: GuaranteeApplication) -> GuaranteeUnderwriting | None:
    return session.scalars(
        sa.select(GuaranteeUnderwriting).where(GuaranteeUnderwriting.application_id == application.id)
    ).first()


def premium_of(session: Session, application: GuaranteeApplication) -> GuaranteePremium | None:
    return session.scalars(
        sa.select(GuaranteePremium).where(GuaranteePremium.application_id == application.id)
    ).first()


def letter_of(session: Session, application: GuaranteeApplication) -> IssuedGuaranteeLetter | None:
    return session.scalars(
        sa.select(IssuedGuaranteeLetter).where(IssuedGuaranteeLetter.application_id == application.id)
    ).first()


def claim_of(session: Session, application: GuaranteeApplication) -> GuaranteeClaim | None:
    return session.scalars(sa.select(GuaranteeClaim).where(GuaranteeClaim.application_id == application.id)).first()


def endings_of(session: Session, application: GuaranteeApplication) -> list[GuaranteeEnding]:
    return list(session.scalars(
        sa.select(GuaranteeEnding).where(GuaranteeEnding.application_id == application.id).order_by(GuaranteeEnding.id)
    ))


def decision_record(application: GuaranteeApplication, row: GuaranteeUnderwriting) -> UnderwritingDecision:
    return UnderwritingDecision(application.number, Decision.APPROVED if row.approved else Decision.REFUSED,
                                (row.reason,), row.decided_by, row.decided_at)


def premium_due(application: GuaranteeApplication) -> int:
    return lifecycle.compute_premium(application.amount, PREMIUM)


# ------------------------------------------------------------------ who sees what


def _holds(organisation: Organisation, role: Role) -> bool:
    return bool(organisation.roles & role)


def is_beneficiary_side(organisation: Organisation, application: GuaranteeApplication) -> bool:
    """The section's tenderer (the beneficiary) or its agency acting for it."""
    tender = application.section.tender
    return organisation.id in (tender.tenderer_id, tender.agency_id)


def _covered_a_bid() -> sa.ColumnElement[bool]:
    """The application's guarantee is the cover of its bidder's bid in its section (as the platform sent it)."""
    return sa.exists().where(Bid.section_id == GuaranteeApplication.section_id,
                             Bid.bidder_id == GuaranteeApplication.bidder_id, Bid.cover_kind == "guarantee",
                             Bid.cover_ref == GuaranteeApplication.number)


def _beneficiary_may_see(session: Session, application: GuaranteeApplication, chain_now: int) -> bool:
    return application.state in BENEFICIARY_STATES and chain_now >= application.section.opening_time and bool(
        session.scalar(sa.select(_covered_a_bid()).where(GuaranteeApplication.id == application.id)))


def visible_to(session: Session, organisation: Organisation, application: GuaranteeApplication,
               chain_now: int) -> str | None:
    """How `organisation` may see the application: as its bidder, its guarantor, the beneficiary side, or not.

    The beneficiary side sees a guarantee only after the bid deadline, and only one that covered a bid:
    before it a tenderer must not learn who bids, and a guarantee no bid used is none of its business.
    """
    if application.bidder_id == organisation.id:
        return "bidder"
    if application.guarantor_id == organisation.id:
        return "guarantor"
    if is_beneficiary_side(organisation, application) and _beneficiary_may_see(session, application, chain_now):
        return "beneficiary"
    return None


def application_for(session: Session, organisation: Organisation, application_id: int, chain_now: int) -> tuple[
    GuaranteeApplication, str
]:
    """The application and the caller's part in it; 'not found' for anyone who may not see it."""
    application = session.get(GuaranteeApplication, application_id)
    part = None if application is None else visible_to(session, organisation, application, chain_now)
    if application is None or part is None:
        raise NotFound("未找到该保函申请")
    return application, part


def applications_for(session: Session, organisation: Organisation, chain_now: int) -> list[
    tuple[GuaranteeApplication, str]
]:
    """Every application the organisation may see, newest first, with its part in each."""
    query = sa.select(GuaranteeApplication).join(Section).join(Tender).where(sa.or_(
        GuaranteeApplication.bidder_id == organisation.id,
        GuaranteeApplication.guarantor_id == organisation.id,
        sa.and_(sa.or_(Tender.tenderer_id == organisation.id, Tender.agency_id == organisation.id),
                GuaranteeApplication.state.in_(BENEFICIARY_STATES), Section.opening_time <= chain_now,
                _covered_a_bid()),
    )).order_by(GuaranteeApplication.id.desc()).limit(500)
    found = []
    for application in session.scalars(query).unique():
        part = visible_to(session, organisation, application, chain_now)
        if part is not None:
            found.append((application, part))
    return found


def guarantor_view(application: GuaranteeApplication, deployment: Deployment | None) -> SealedView:
    """What the guarantor may see: the sealed reference only, until the section's opening is on chain."""
    record = record_of(application)
    looked_up = deployment if application.state in ISSUED_STATES else None  # nothing to reveal before issue
    return lifecycle.sealed_view(record, looked_up)


def guarantees_for_cover(session: Session, bidder: Organisation, section: Section) -> list[GuaranteeApplication]:
    """The bidder's issued guarantees for a section, to pick one as its bid's cover."""
    return list(session.scalars(sa.select(GuaranteeApplication).where(
        GuaranteeApplication.bidder_id == bidder.id, GuaranteeApplication.section_id == section.id,
        GuaranteeApplication.state == "issued").order_by(GuaranteeApplication.id)))


def claimable(gateway: ChainGateway, applications: Sequence[GuaranteeApplication], chain_now: int) -> dict[
    int, Claimability
]:
    """The applications whose guarantees on-chain facts made claimable (bidder-caused decryption failure,
    withdrawal after the deadline, the winner's refusal to sign), by application id."""
    if gateway.deployment is None:
        return {}
    by_section: dict[str, list[GuaranteeApplication]] = {}
    for application in applications:
        if application.state == "issued" and chain_now >= application.section.opening_time:
            by_section.setdefault(application.section.chain_id, []).append(application)
    found: dict[int, Claimability] = {}
    for section_id, rows in by_section.items():
        facts = {c.guarantee_id: c for c in lifecycle.claimable_guarantees(gateway.deployment, _b32(section_id))}
        for application in rows:
            fact = facts.get(_b32(application.guarantee_id))
            if fact is not None:
                found[application.id] = fact
    return found


# ------------------------------------------------------------------ apply


@dataclass(frozen=True)
class ApplicationDraft:
    guarantor_id: int
    amount: int  # fen
    validity_days: int  # from the opening time
    submission_key: str


def parse_draft(data: dict[str, Any], amount: int | None = None) -> ApplicationDraft:
    """An application from API-shaped data (`amount` in fen), or with the amount already parsed (forms)."""
    return ApplicationDraft(
        guarantor_id=_integer(data.get("guarantor_id"), "担保机构", "guarantor_id", 1, 2**31),
        amount=amount if amount is not None else _integer(data.get("amount"), "担保金额（分）", "amount", 1, 2**96 - 1),
        validity_days=_integer(data.get("validity_days"), "保函有效期（天）", "validity_days", 1, 3650),
        submission_key=bids.parse_submission_key(data.get("submission_key")),
    )


def new_number() -> str:
    return f"JZBH-{uuid.uuid4().hex[:16].upper()}"


def guarantors(session: Session) -> list[Organisation]:
    return [o for o in session.scalars(sa.select(Organisation).order_by(Organisation.id)) if o.roles & Role.GUARANTOR]


def apply(session: Session, gateway: ChainGateway, bidder: Organisation, section: Section,
          draft: ApplicationDraft) -> tuple[GuaranteeApplication, bool]:
    """Apply for a 密文保函 for a section the bidder registered for; (application, created).

    A second submission of the same form (same key) gives the first application.
    """
    existing = session.scalars(sa.select(GuaranteeApplication).where(
        GuaranteeApplication.bidder_id == bidder.id, GuaranteeApplication.submission_key == draft.submission_key
    )).first()
    if existing is not None:
        return existing, False
    if bids.registration_of(session, bidder, section) is None:
        raise NotRegistered("贵单位尚未报名该标段，报名后才能申请投标保函")
    guarantor = session.get(Organisation, draft.guarantor_id)
    if guarantor is None or not _holds(guarantor, Role.GUARANTOR) or not guarantor.address:
        raise InvalidInput("请选择一家担保机构", field="guarantor_id")
    deployment = deployment_of(gateway)
    if not section.chain_tx:
        raise refusal(errors.UnknownSection())
    number = new_number()
    salt = os.urandom(32)
    row = GuaranteeApplication(
        number=number, guarantee_id="0x" + lifecycle.guarantee_id(number).hex(), bidder_id=bidder.id,
        section_id=section.id, guarantor_id=guarantor.id, amount=draft.amount,
        valid_until=section.opening_time + draft.validity_days * 86400, salt="0x" + salt.hex(),
        section_ref="0x" + lifecycle.sealed_reference(_b32(section.chain_id), salt).hex(), state="applied",
        submission_key=draft.submission_key,
    )
    row.bidder, row.guarantor, row.section = bidder, guarantor, section
    try:
        facts = lifecycle.section_facts(deployment, _b32(section.chain_id))
        lifecycle.check_application(record_of(row), facts, gateway.now())
    except errors.GuaranteeError as error:
        raise refusal(error) from error
    session.add(row)
    session.commit()
    return row, True


def withdraw_application(session: Session, application: GuaranteeApplication) -> None:
    """The bidder withdraws an application not yet issued (nothing is on chain)."""
    if application.state not in ("applied", "approved", "paid", "declined"):
        raise illegal("该申请已出函或已结束，不能撤回申请")
    application.state, application.updated_at = "withdrawn", now()
    session.commit()


# ------------------------------------------------------------------ underwriting and premium


def rule_results(gateway: ChainGateway, application: GuaranteeApplication) -> list[str]:
    """The guarantor's rules on the application: the refusals, [] when every rule passed."""
    deployment = deployment_of(gateway)
    record = record_of(application)
    moment = gateway.now()
    try:
        facts = lifecycle.section_facts(deployment, record.section_id)
        decided = lifecycle.underwrite(record, facts, RULES, None, moment)
    except errors.NotUnderwritten:
        return []
    except errors.GuaranteeError as error:
        return [f"{type(error).__name__}: {error}"]
    return list(decided.reasons)


def underwrite(session: Session, gateway: ChainGateway, application: GuaranteeApplication, decided_by: str,
               approve: bool, reason: str) -> GuaranteeUnderwriting:
    """Record the guarantor's decision: its rules first (they can only refuse), then the person's."""
    if application.state != "applied":
        raise illegal(f"该申请当前为“{STATE_LABELS[application.state]}”，不能再作承保决定")
    reason = _text(reason, "决定理由", "reason", required=not approve)
    refusals = rule_results(gateway, application)
    if approve and refusals:
        raise GuaranteeRefused("rules_refused", "承保规则检查未通过，不能承保：" + "；".join(refusals))
    moment = gateway.now()
    manual = ManualDecision(decided_by, approve, reason, moment)
    if not refusals:
        deployment = deployment_of(gateway)
        record = record_of(application)
        decided = lifecycle.underwrite(record, lifecycle.section_facts(deployment, record.section_id), RULES, manual,
                                       moment)
        approve = decided.approved
    row = GuaranteeUnderwriting(application_id=application.id, rule_results=json.dumps(refusals, ensure_ascii=False),
                                approved=approve, reason=reason or "；".join(refusals), decided_by=decided_by,
                                decided_at=moment)
    session.add(row)
    application.state, application.updated_at = ("approved" if approve else "declined"), now()
    _commit(session)
    return row


def record_premium(session: Session, application: GuaranteeApplication, recorded_by: str, paid_amount: int,
                   payer_account: str, payment_ref: str) -> GuaranteePremium:
    """Record the premium as paid: exactly the premium computed for the amount, with the payer's account."""
    decided = underwriting_of(session, application)
    if application.state != "approved" or decided is None:
        if application.state in ("applied", "declined"):
            raise refusal(errors.NotUnderwritten())
        raise illegal("保费已记录或该申请已结束")
    payer_account = _text(payer_account, "付款账号", "payer_account", limit=34)
    if not PAYER_ACCOUNT.match(payer_account):
        raise InvalidInput("付款账号应为 6-34 位数字、字母或“-”", field="payer_account")
    payment_ref = _text(payment_ref, "付款流水号", "payment_ref", limit=64)
    try:
        payment = lifecycle.record_premium(
            record_of(application), decision_record(application, decided), PREMIUM, paid_amount=paid_amount,
            payer_account=payer_account, payment_ref=payment_ref, paid_at=now())
    except errors.GuaranteeError as error:
        raise refusal(error) from error
    row = GuaranteePremium(application_id=application.id, amount=payment.amount, payer_account=payment.payer_account,
                           payment_ref=payment.payment_ref, recorded_by=recorded_by, paid_at=payment.paid_at)
    session.add(row)
    application.state, application.updated_at = "paid", now()
    _commit(session)
    return row


# ------------------------------------------------------------------ issue


def letter_path(upload_folder: Path, stored_name: str) -> Path:
    return upload_folder / "guarantees" / stored_name


def _on_chain_state(deployment: Deployment, application: GuaranteeApplication) -> Guarantee:
    return deployment.guarantees.guarantee(_b32(application.guarantee_id))


def issue(session: Session, gateway: ChainGateway, application: GuaranteeApplication, upload_folder: Path,
          base_url: str) -> IssuedGuaranteeLetter:
    """Render and sign the letter with the guarantor's key, store it, and queue its anchoring.

    The letter row and the outbox entry that anchors it are committed together, before anything is
    sent: a crash afterwards leaves a letter the outbox anchors when it resumes, never a letter
    anchored without a record. The letter names no anchoring transaction (the outbox signs it later);
    verification then finds the anchoring by the guarantee's id.
    """
    if application.state in ("applied", "declined", "approved"):
        raise refusal(errors.PremiumNotPaid() if application.state == "approved" else errors.NotUnderwritten())
    if application.state != "paid":
        raise illegal("该保函已出具或申请已结束")
    deployment = deployment_of(gateway)
    record = record_of(application)
    moment = gateway.now()
    try:
        lifecycle.check_application(record, lifecycle.section_facts(deployment, record.section_id), moment)
    except errors.GuaranteeError as error:
        raise refusal(error) from error
    if _on_chain_state(deployment, application).state != GuaranteeState.NONE:
        raise illegal("链上已有该编号的保函")
    key = bytes(gateway.signer_for(application.guarantor).account.key)
    unsigned = render_letter(lifecycle.letter_fields(record, moment, base_url))
    digest = letter_hash(unsigned)
    signed = sign_letter(unsigned, application.number, key, "")
    stored_name = f"{uuid.uuid4().hex}.pdf"
    path = letter_path(upload_folder, stored_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(signed)
    try:
        letter = IssuedGuaranteeLetter(application_id=application.id, stored_name=stored_name, size=len(signed),
                                       letter_hash="0x" + digest.hex(), source="platform", issued_at=moment)
        session.add(letter)
        session.flush()
        terms = lifecycle.guarantee_terms(record, digest)
        outbox.enqueue(session, application.guarantor_id, "issue_guarantee", f"issue_guarantee:{application.number}", {
            "application_id": application.id, "letter_id": letter.id, "guarantee_id": application.guarantee_id,
            "section_ref": "0x" + terms.section_ref.hex(), "applicant": terms.applicant,
            "beneficiary": terms.beneficiary, "amount": terms.amount, "valid_until": terms.valid_until,
            "letter_hash": "0x" + digest.hex(), "pending": "issuing", "done": "issued", "undo": "issue_failed"})
        application.state, application.updated_at = "issuing", now()
        _commit(session)
    except BaseException:
        session.rollback()
        path.unlink(missing_ok=True)
        raise
    return letter


# ------------------------------------------------------------------ after issue


def _issued_on_chain(deployment: Deployment, application: GuaranteeApplication) -> Guarantee:
    if application.state != "issued":
        raise illegal(f"该保函当前为“{STATE_LABELS[application.state]}”，不能进行此操作")
    stored = _on_chain_state(deployment, application)
    if stored.state != GuaranteeState.ISSUED:
        raise refusal(errors.IllegalTransition())
    return stored


PENDING_ENDINGS = {"cancel": "cancelling", "release": "releasing", "expire": "expiring"}


def _ending(session: Session, application: GuaranteeApplication, kind: str, requested_by: str, reason: str,
            done: str, payload: dict[str, Any]) -> GuaranteeEnding:
    """Record a cancellation, release or expiry and queue its chain write (sent for the guarantor)."""
    ending = GuaranteeEnding(application_id=application.id, kind=kind, requested_by=requested_by, reason=reason)
    session.add(ending)
    session.flush()
    outbox.enqueue(session, application.guarantor_id, f"{kind}_guarantee",
                   f"{kind}_guarantee:{application.number}:{ending.id}",
                   {"application_id": application.id, "ending_id": ending.id, "guarantee_id": application.guarantee_id,
                    "pending": PENDING_ENDINGS[kind], "done": done, "undo": "issued", **payload})
    application.state, application.error_code, application.updated_at = PENDING_ENDINGS[kind], None, now()
    _commit(session)
    return ending


def cancel(session: Session, gateway: ChainGateway, application: GuaranteeApplication, requested_by: str,
           reason: str, *, by_bidder: bool) -> GuaranteeEnding | None:
    """Cancel before the bid deadline: the bidder withdraws an application not yet issued; an issued
    guarantee that no bid relies on is cancelled on chain (with the guarantor's key, the issuer's),
    at the bidder's request or the guarantor's."""
    if application.state in ("applied", "approved", "paid", "declined"):
        if not by_bidder:
            raise illegal("尚未出具的保函申请不能撤销，请作出拒保决定")
        withdraw_application(session, application)
        return None
    deployment = deployment_of(gateway)
    stored = _issued_on_chain(deployment, application)
    if stored.bound or gateway.now() >= application.section.opening_time:
        raise refusal(errors.NotCancellable())
    reason = _text(reason, "撤销原因", "reason", required=False)
    return _ending(session, application, "cancel", requested_by, reason, "cancelled", {})


def release(session: Session, gateway: ChainGateway, application: GuaranteeApplication, requested_by: str,
            reason: str) -> GuaranteeEnding:
    """Release once the tender ended in a way that frees the bidder's bond (TenderRegistry.bondReleasable):
    non-winners once the section is awarded or failed, the winner once the contract is signed."""
    deployment = deployment_of(gateway)
    stored = _issued_on_chain(deployment, application)
    section_id = _b32(application.section.chain_id)
    if gateway.now() < application.section.opening_time:
        raise refusal(errors.NotReleasable())
    if stored.bound:
        kind, cover = deployment.tenders.bid_cover(section_id, stored.applicant)
        if kind != CoverKind.GUARANTEE or cover != _b32(application.guarantee_id):
            raise refusal(errors.NotReleasable())
    if not deployment.tenders.bond_releasable(section_id, stored.applicant):
        raise refusal(errors.NotReleasable())
    reason = _text(reason, "解除说明", "reason", required=False)
    return _ending(session, application, "release", requested_by, reason, "released",
                   {"section_id": application.section.chain_id})


def expire(session: Session, gateway: ChainGateway, application: GuaranteeApplication, requested_by: str
           ) -> GuaranteeEnding:
    """Record on chain that a guarantee's validity has ended."""
    deployment = deployment_of(gateway)
    stored = _issued_on_chain(deployment, application)
    if gateway.now() <= stored.valid_until:
        raise refusal(errors.NotExpired())
    return _ending(session, application, "expire", requested_by, "", "expired", {})


def parse_ground(value: Any) -> ClaimGround:
    try:
        ground = ClaimGround(int(value))
    except (TypeError, ValueError):
        ground = ClaimGround.NONE
    if ground == ClaimGround.NONE:
        raise refusal(errors.ClaimWithoutGround())
    return ground


def claim(session: Session, gateway: ChainGateway, application: GuaranteeApplication, claimed_by: str,
          ground_value: Any, evidence: Any) -> GuaranteeClaim:
    """The beneficiary claims on a ground the section's on-chain record supports, with its evidence.

    Sent with the tenderer's key (the beneficiary), also when its agency files the claim for it.
    """
    ground = parse_ground(ground_value)
    text = evidence.strip() if isinstance(evidence, str) else ""
    if not text:
        raise GuaranteeRefused("claim_without_evidence", "索赔须提供证据说明", status=400, field="evidence")
    text = _text(text, "证据说明", "evidence")
    deployment = deployment_of(gateway)
    stored = _issued_on_chain(deployment, application)
    section_id = _b32(application.section.chain_id)
    kind, cover = deployment.tenders.bid_cover(section_id, stored.applicant)
    if kind != CoverKind.GUARANTEE or cover != _b32(application.guarantee_id):
        raise GuaranteeRefused("claim_ground_not_met", "该保函不是投标人在本标段投标所用的保函", field="ground")
    if not deployment.tenders.claim_ground_holds(section_id, stored.applicant, ground):
        raise refusal(errors.ClaimGroundNotMet())
    evidence_hash = "0x" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = GuaranteeClaim(application_id=application.id, ground=int(ground), evidence=text,
                         evidence_hash=evidence_hash, claimed_by=claimed_by)
    session.add(row)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        raise GuaranteeRefused("duplicate_submission", "该保函已有索赔，请勿重复提交") from None
    outbox.enqueue(session, application.section.tender.tenderer_id, "claim_guarantee",
                   f"claim_guarantee:{application.number}:{row.id}",
                   {"application_id": application.id, "claim_id": row.id, "guarantee_id": application.guarantee_id,
                    "section_id": application.section.chain_id, "ground": int(ground), "evidence_hash": evidence_hash,
                    "pending": "claiming", "done": "claimed", "undo": "issued"})
    application.state, application.error_code, application.updated_at = "claiming", None, now()
    _commit(session)
    return row


def record_payout(session: Session, gateway: ChainGateway, application: GuaranteeApplication, paid_value: Any,
                  payment_ref: Any) -> GuaranteeClaim:
    """The guarantor records that it paid the claim (0 < paid ≤ amount), anchored on chain."""
    row = claim_of(session, application)
    if application.state != "claimed" or row is None:
        raise illegal("该保函没有待赔付的索赔")
    paid = _integer(paid_value, "赔付金额（分）", "paid", -(2**63), 2**63 - 1)
    if not 0 < paid <= application.amount:
        raise refusal(errors.InvalidPayout())
    reference = _text(payment_ref, "赔付流水号", "payment_ref", limit=64)
    deployment = deployment_of(gateway)
    if _on_chain_state(deployment, application).state != GuaranteeState.CLAIMED:
        raise refusal(errors.IllegalTransition())
    outbox.enqueue(session, application.guarantor_id, "record_guarantee_payout",
                   f"record_guarantee_payout:{application.number}:{row.id}:{reference}",
                   {"application_id": application.id, "claim_id": row.id, "guarantee_id": application.guarantee_id,
                    "paid": paid, "payment_ref": "0x" + id32(reference).hex(), "payment_ref_text": reference,
                    "pending": "paying", "done": "paid_out", "undo": "claimed"})
    application.state, application.error_code, application.updated_at = "paying", None, now()
    _commit(session)
    return row


# ------------------------------------------------------------------ supervision


@dataclass(frozen=True)
class SupervisionReport:
    """The regulator's view: cash deposits freed by guarantees, and the alerts with what they name."""

    cash_deposits_freed: int  # fen
    guarantees: int
    alerts: list[SupervisionAlert]
    applications: dict[str, GuaranteeApplication]  # by number, for the evidence links
    sections: dict[bytes, Section]  # by chain id


def supervision_report(session: Session, gateway: ChainGateway) -> SupervisionReport:
    """Read every guarantee anchored on chain, name them with the platform's numbers and premium payer
    accounts, and apply `guarantees.supervision`'s rules."""
    deployment = deployment_of(gateway)
    rows = list(session.scalars(sa.select(GuaranteeApplication)))
    numbers = {_b32(row.guarantee_id): row.number for row in rows}
    premiums = {row.number: premium.payer_account for row in rows if (premium := premium_of(session, row))}
    records, facts = supervision.records_from_chain(deployment, numbers=numbers, premium_accounts=premiums)
    sections = {_b32(s.chain_id): s for s in session.scalars(
        sa.select(Section).where(Section.chain_id.in_(["0x" + sid.hex() for sid in facts])))}
    return SupervisionReport(
        cash_deposits_freed=supervision.cash_deposits_freed(records, facts),
        guarantees=len(records),
        alerts=supervision.supervision_alerts(records, facts),
        applications={row.number: row for row in rows},
        sections=sections,
    )
