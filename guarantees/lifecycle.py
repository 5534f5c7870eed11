"""The guarantee lifecycle as free functions: apply, underwrite, premium, issue, cancel, release,
expire, claim, payout; claimability from on-chain facts; the guarantor's sealed view (密文保函).

Each step is checked here first and refused with a named `guarantees.errors` exception, so the
platform can tell a user why; the contract checks the same rules again on chain, so a platform that
skipped these functions still could not break them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from eth_utils import to_checksum_address as _checksum_uncached

from contracts.client import Chain, Deployment, SignedTx, Signer, TxResult, sign_offline
from contracts.errors import TransactionFailed
from contracts.records import ClaimGround, CoverKind, Guarantee, GuaranteeState, GuaranteeTerms, id32
from guarantees import errors
from guarantees.letter import attach_signature, letter_hash, read_signature, render_letter, sign_digest
from guarantees.records import (
    Claimability,
    Decision,
    GuaranteeApplication,
    IssuedGuarantee,
    LetterFields,
    LetterSignature,
    ManualDecision,
    PremiumPayment,
    PremiumTerms,
    SealedView,
    SectionFacts,
    SectionReveal,
    UnderwritingDecision,
    UnderwritingRules,
)

NUMBER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,63}$")
ISSUE_GAS = 200_000


@lru_cache(maxsize=4096)
def to_checksum_address(address: str) -> str:
    """The checksummed form of an address (remembered: each costs two keccaks, and few accounts recur)."""
    return str(_checksum_uncached(address))


def guarantee_id(number: str) -> bytes:
    """The on-chain id of a guarantee number (保函编号)."""
    return id32(number)


def sealed_reference(section_id: bytes, salt: bytes) -> bytes:
    """`keccak256(abi.encode(sectionId, salt))`, as `GuaranteeRegistry.sealedReference` computes it."""
    return keccak(abi_encode(["bytes32", "bytes32"], [section_id, salt]))


def verify_url(base_url: str, number: str) -> str:
    """The public verification URL a letter's QR code carries."""
    return f"{base_url.rstrip('/')}/guarantees/verify?number={number}"


# ------------------------------------------------------------------ application


def section_facts(deployment: Deployment, section_id: bytes) -> SectionFacts:
    """The section's terms from the chain; UnknownSection if it has none."""
    section = deployment.tenders.section(section_id)
    if section.opening_time == 0:
        raise errors.UnknownSection(f"no section 0x{section_id.hex()} on chain")
    return SectionFacts(
        section_id=section_id,
        tender_id=section.tender_id,
        tenderer=to_checksum_address(section.tenderer),
        opening_time=section.opening_time,
        bid_bond=section.bid_bond,
        bid_validity_period=section.bid_validity_period,
        status=section.status,
    )


def check_application(application: GuaranteeApplication, facts: SectionFacts, now: int) -> None:
    """Refuse an application that breaks the section's rules (named exception per rule)."""
    if not NUMBER_PATTERN.match(application.number):
        raise errors.InvalidApplication(f"guarantee number {application.number!r}: 3-64 letters, digits or '-'")
    if application.amount <= 0 or application.amount >= 2**96:
        raise errors.InvalidApplication(f"amount {application.amount} fen is not a positive uint96")
    if application.sealed and len(application.salt) != 32:
        raise errors.InvalidApplication("a sealed (密文) guarantee needs a 32-byte salt")
    if application.section_id != facts.section_id:
        raise errors.InvalidApplication("the application is for another section than the facts given")
    if now >= facts.opening_time:
        raise errors.AfterDeadline(f"the bid deadline {facts.opening_time} has passed (now {now})")
    if application.amount < facts.bid_bond:
        raise errors.AmountBelowBond(f"amount {application.amount} fen < bid bond {facts.bid_bond} fen")
    if application.valid_until < facts.required_valid_until:
        raise errors.ValidityTooShort(
            f"valid until {application.valid_until} < end of bid validity {facts.required_valid_until}"
        )
    if to_checksum_address(application.beneficiary.account) != facts.tenderer:
        raise errors.BeneficiaryNotTenderer(
            f"beneficiary {application.beneficiary.account} is not the section's tenderer {facts.tenderer}"
        )


def underwrite(
    application: GuaranteeApplication,
    facts: SectionFacts,
    rules: UnderwritingRules,
    manual: ManualDecision | None,
    now: int,
) -> UnderwritingDecision:
    """The guarantor's decision: its rules first, then a person's decision on what passed them.

    Rules can only refuse; approval always needs `manual` (an underwriter's decision). An application
    that breaks the section's rules is refused here too, with the reason.
    """
    reasons: list[str] = []
    try:
        check_application(application, facts, now)
    except errors.ApplicationRefused as refusal:
        reasons.append(f"{type(refusal).__name__}: {refusal}")
    if application.amount > rules.max_amount:
        reasons.append(f"amount above the guarantor's limit of {rules.max_amount} fen")
    if application.valid_until - now > rules.max_validity_days * 86400:
        reasons.append(f"validity longer than {rules.max_validity_days} days")
    if to_checksum_address(application.applicant.account) in {to_checksum_address(a) for a in rules.refused_applicants}:
        reasons.append("applicant on the guarantor's refusal list")
    if facts.opening_time - now < rules.min_days_before_deadline * 86400:
        reasons.append(f"less than {rules.min_days_before_deadline} days before the bid deadline")
    if reasons:
        return UnderwritingDecision(application.number, Decision.REFUSED, tuple(reasons), "rules", now)
    if manual is None:
        raise errors.NotUnderwritten("the rules passed; an underwriter must now decide")
    decision = Decision.APPROVED if manual.approve else Decision.REFUSED
    return UnderwritingDecision(
        application.number, decision, (manual.note,) if manual.note else (), manual.underwriter, manual.decided_at
    )


def compute_premium(amount: int, terms: PremiumTerms) -> int:
    """The premium in fen: amount × rate (basis points), rounded up to the fen, at least the minimum."""
    if amount <= 0:
        raise errors.InvalidApplication(f"amount {amount} fen is not positive")
    return max(terms.minimum, -(-amount * terms.rate_bp // 10_000))


def record_premium(
    application: GuaranteeApplication,
    decision: UnderwritingDecision,
    terms: PremiumTerms,
    *,
    paid_amount: int,
    payer_account: str,
    payment_ref: str,
    paid_at: int,
) -> PremiumPayment:
    """Record the premium as paid; only for an approved application and exactly the computed premium."""
    if decision.number != application.number or not decision.approved:
        raise errors.NotUnderwritten(f"{application.number} has no approving underwriting decision")
    due = compute_premium(application.amount, terms)
    if paid_amount != due:
        raise errors.PremiumMismatch(f"paid {paid_amount} fen, premium due is {due} fen")
    if not payer_account or not payment_ref:
        raise errors.PremiumNotPaid("a premium payment needs the payer's account and a payment reference")
    return PremiumPayment(application.number, paid_amount, payer_account, payment_ref, paid_at)


# ------------------------------------------------------------------ issue


@dataclass(frozen=True)
class PreparedLetter:
    """A letter rendered and signed, not yet anchored (picklable: built in worker processes)."""

    number: str
    unsigned_pdf: bytes
    letter_hash: bytes
    signature: bytes
    public_key: bytes
    signer: str


SEALED_SECTION_NAME = "开标后由交易平台依链上开标记录披露"


def letter_fields(application: GuaranteeApplication, issued_at: int, base_url: str) -> LetterFields:
    """The letter's fields. A 密文保函 names its tender only by the sealed reference: the guarantor
    signs it without learning where the applicant bids; the opening reveals it (`reveal_section`)."""
    project, section = application.project_name, application.section_name
    if application.sealed:
        project = f"密文保函，标段密文引用 0x{sealed_reference(application.section_id, application.salt).hex()}"
        section = SEALED_SECTION_NAME
    return LetterFields(
        number=application.number,
        applicant=application.applicant,
        beneficiary=application.beneficiary,
        guarantor=application.guarantor,
        project_name=project,
        section_name=section,
        amount=application.amount,
        valid_from=issued_at,
        valid_until=application.valid_until,
        issued_at=issued_at,
        verify_url=verify_url(base_url, application.number),
    )


def prepare_letter(fields: LetterFields, private_key: bytes) -> PreparedLetter:
    """Render the letter and sign its hash with the guarantor's key (the CPU-heavy part of issuing)."""
    from guarantees.letter import address_of_public_key

    unsigned = render_letter(fields)
    digest = letter_hash(unsigned)
    signature, public_key = sign_digest(private_key, digest)
    return PreparedLetter(fields.number, unsigned, digest, signature, public_key, address_of_public_key(public_key))


def guarantee_terms(application: GuaranteeApplication, digest: bytes) -> GuaranteeTerms:
    """The terms anchored on chain: a sealed reference for a 密文保函, else the section id."""
    section_ref = (
        sealed_reference(application.section_id, application.salt) if application.sealed else application.section_id
    )
    return GuaranteeTerms(
        section_ref=section_ref,
        sealed_ref=application.sealed,
        applicant=to_checksum_address(application.applicant.account),
        beneficiary=to_checksum_address(application.beneficiary.account),
        amount=application.amount,
        valid_until=application.valid_until,
        letter_hash=digest,
    )


def anchor_letters(
    deployment: Deployment,
    guarantor: Signer,
    letters: list[tuple[GuaranteeApplication, PreparedLetter]],
) -> list[IssuedGuarantee]:
    """Anchor prepared letters with pipelined `issue` transactions; return the signed letters.

    Each transaction is signed first, so its hash is known and written into the letter's signature
    block (a hint for fast verification); then all are sent at once and awaited until final.
    """
    fees = deployment.chain._fees()
    ready = []
    for application, prepared in letters:
        if prepared.signer != guarantor.address:
            raise errors.WrongParty(f"letter {prepared.number} is signed by {prepared.signer}, not {guarantor.address}")
        terms = guarantee_terms(application, prepared.letter_hash)
        gid = guarantee_id(application.number)
        signed = deployment.guarantees.sign_issue(guarantor, gid, terms, gas=ISSUE_GAS, fees=fees)
        ready.append(_ready_to_send(application, prepared, terms, signed))
    return anchor_prepared(deployment.chain, ready)


ISSUE_SIGNATURE = "issue(bytes32,(bytes32,bool,address,address,uint96,uint64,bytes32))"
_ISSUE_SELECTOR = keccak(text=ISSUE_SIGNATURE)[:4]
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")


def issue_call_data(guarantee: bytes, terms: GuaranteeTerms) -> bytes:
    """The calldata of `GuaranteeRegistry.issue`, encoded without a node (for worker processes).

    Every argument is static, so the ABI encoding is the selector and one 32-byte word per value;
    values outside their types' ranges go through `eth_abi`, which names what is wrong.
    """
    if (
        len(guarantee) == len(terms.section_ref) == len(terms.letter_hash) == 32
        and 0 <= terms.amount < 1 << 96
        and 0 <= terms.valid_until < 1 << 64
        and _ADDRESS.match(terms.applicant)
        and _ADDRESS.match(terms.beneficiary)
    ):
        return b"".join(
            (
                _ISSUE_SELECTOR,
                guarantee,
                terms.section_ref,
                bytes(31) + (b"\x01" if terms.sealed_ref else b"\x00"),
                bytes(12) + bytes.fromhex(terms.applicant[2:]),
                bytes(12) + bytes.fromhex(terms.beneficiary[2:]),
                terms.amount.to_bytes(32, "big"),
                terms.valid_until.to_bytes(32, "big"),
                terms.letter_hash,
            )
        )
    encoded_terms = (
        terms.section_ref,
        terms.sealed_ref,
        terms.applicant,
        terms.beneficiary,
        terms.amount,
        terms.valid_until,
        terms.letter_hash,
    )
    return _ISSUE_SELECTOR + abi_encode(
        ["bytes32", "(bytes32,bool,address,address,uint96,uint64,bytes32)"], [guarantee, encoded_terms]
    )


@dataclass(frozen=True)
class TxContext:
    """What signing a transaction offline needs from the chain: its id, the registry, fees and gas."""

    chain_id: int
    registry: str
    fees: dict[str, int]
    gas: int = ISSUE_GAS


@dataclass(frozen=True)
class PreparedIssue:
    """A letter signed and its `issue` transaction signed, ready to send (built in worker processes)."""

    number: str
    guarantee_id: bytes
    section_ref: bytes
    sealed: bool
    letter_hash: bytes
    signed_pdf: bytes
    signed_tx: SignedTx


def prepare_issue(
    application: GuaranteeApplication,
    fields: LetterFields,
    private_key: bytes,
    nonce: int,
    context: TxContext,
) -> PreparedIssue:
    """Everything issuing needs except the chain, with the guarantor's key: letter, hash, signature,
    the signed `issue` transaction (with the given nonce) and the signed letter naming it.

    Pure CPU work on picklable inputs, so a guarantor's system can spread it over processes and
    send the transactions in order afterwards (`anchor_prepared`).
    """
    prepared = prepare_letter(fields, private_key)
    terms = guarantee_terms(application, prepared.letter_hash)
    gid = guarantee_id(application.number)
    tx: dict[str, Any] = {
        "from": prepared.signer,
        "to": to_checksum_address(context.registry),
        "data": issue_call_data(gid, terms),
        "value": 0,
        "gas": context.gas,
        "nonce": nonce,
        "chainId": context.chain_id,
        **context.fees,
    }
    tx_hash, raw = sign_offline(tx, private_key)
    return _ready_to_send(application, prepared, terms, SignedTx(tx_hash, raw, tx), gid)


def _ready_to_send(
    application: GuaranteeApplication,
    prepared: PreparedLetter,
    terms: GuaranteeTerms,
    signed_tx: SignedTx,
    gid: bytes | None = None,
) -> PreparedIssue:
    """The signed letter, its signature block naming the transaction that will anchor it."""
    block = LetterSignature(
        number=application.number,
        signed_length=len(prepared.unsigned_pdf),
        letter_hash=prepared.letter_hash,
        signature=prepared.signature,
        public_key=prepared.public_key,
        signer=prepared.signer,
        anchor_tx=signed_tx.tx_hash,
    )
    return PreparedIssue(
        number=application.number,
        guarantee_id=guarantee_id(application.number) if gid is None else gid,
        section_ref=terms.section_ref,
        sealed=application.sealed,
        letter_hash=prepared.letter_hash,
        signed_pdf=attach_signature(prepared.unsigned_pdf, block),
        signed_tx=signed_tx,
    )


def anchor_prepared(chain: Chain, prepared: Sequence[PreparedIssue]) -> list[IssuedGuarantee]:
    """Send prepared issues in batches and wait until all are final; the issued guarantees."""
    chain.send_raw_many([p.signed_tx for p in prepared])
    return await_prepared(chain, prepared)


def await_prepared(chain: Chain, prepared: Sequence[PreparedIssue]) -> list[IssuedGuarantee]:
    """Wait until already sent prepared issues are final; the issued guarantees with their evidence.

    Finality and success are read from the receipts (batched; a node answers each from one stored
    record): a transaction whose receipt holds no `GuaranteeIssued` event reverted, and its receipt
    is then replayed to name the error.
    """
    if not prepared:
        return []
    receipts = chain.final_receipts([p.signed_tx.tx_hash for p in prepared])
    registry = str(prepared[0].signed_tx.tx["to"]).lower()
    topic = "0x" + event_topic(chain, "GuaranteeIssued").hex()
    anchorings: dict[bytes, Anchoring] = {}
    for receipt in receipts.values():
        for log in receipt["logs"]:
            if str(log["address"]).lower() == registry and log["topics"] and log["topics"][0] == topic:
                found = _anchoring(log)
                anchorings[found.guarantee_id] = found
    issued = []
    for p in prepared:
        anchoring = anchorings.get(p.guarantee_id)
        if anchoring is None or anchoring.tx_hash.lower() != p.signed_tx.tx_hash.lower():
            chain.wait_many([p.signed_tx])  # raises the revert, named
            raise TransactionFailed(f"{p.signed_tx.tx_hash} emitted no GuaranteeIssued event")
        issued.append(
            IssuedGuarantee(
                number=p.number,
                guarantee_id=p.guarantee_id,
                section_ref=p.section_ref,
                sealed=p.sealed,
                letter_hash=p.letter_hash,
                signed_pdf=p.signed_pdf,
                tx_hash=anchoring.tx_hash,
                block_number=anchoring.block_number,
                block_hash=anchoring.block_hash,
            )
        )
    return issued


@dataclass(frozen=True)
class Anchoring:
    """Where a guarantee's letter hash was anchored: its `GuaranteeIssued` event."""

    guarantee_id: bytes
    letter_hash: bytes
    tx_hash: str
    block_number: int
    block_hash: str


def anchorings_in_blocks(chain: Chain, registry: str, wanted: dict[int, list[bytes]]) -> dict[bytes, Anchoring]:
    """The `GuaranteeIssued` events of the wanted ids, block by block: one `eth_getLogs` per block.

    A node answers a filter on one block and a list of ids much faster than one receipt per
    guarantee; issuing and verification both use this.
    """
    topic = "0x" + event_topic(chain, "GuaranteeIssued").hex()
    blocks = sorted(wanted)
    answers = chain.rpc_batch(
        [
            (
                "eth_getLogs",
                [
                    {
                        "address": registry,
                        "fromBlock": hex(number),
                        "toBlock": hex(number),
                        "topics": [topic, ["0x" + i.hex() for i in wanted[number]]],
                    }
                ],
            )
            for number in blocks
        ]
    )
    found: dict[bytes, Anchoring] = {}
    for answer in answers:
        for log in answer.get("result") or []:
            anchoring = _anchoring(log)
            found[anchoring.guarantee_id] = anchoring
    return found


def _anchoring(log: dict[str, Any]) -> Anchoring:
    """A `GuaranteeIssued` log (JSON-RPC shape) as the anchoring it records."""
    data = bytes.fromhex(log["data"][2:])
    return Anchoring(
        guarantee_id=bytes.fromhex(log["topics"][1][2:]),
        letter_hash=data[5 * 32 : 6 * 32],  # the sixth non-indexed word: letterHash
        tx_hash=str(log["transactionHash"]),
        block_number=int(log["blockNumber"], 16),
        block_hash=str(log["blockHash"]),
    )


def issue(
    deployment: Deployment,
    guarantor: Signer,
    application: GuaranteeApplication,
    decision: UnderwritingDecision,
    payment: PremiumPayment,
    *,
    base_url: str,
    now: int | None = None,
) -> IssuedGuarantee:
    """Issue an approved, paid guarantee: letter, signature, anchoring on chain (final on return)."""
    if decision.number != application.number or not decision.approved:
        raise errors.NotUnderwritten(f"{application.number} has no approving underwriting decision")
    if payment.number != application.number:
        raise errors.PremiumNotPaid(f"no premium recorded as paid for {application.number}")
    moment = deployment.chain.now() if now is None else now
    check_application(application, section_facts(deployment, application.section_id), moment)
    if to_checksum_address(application.guarantor.account) != guarantor.address:
        raise errors.WrongParty(f"the application names guarantor {application.guarantor.account}")
    existing = deployment.guarantees.guarantee(guarantee_id(application.number))
    if existing.state != GuaranteeState.NONE:
        raise errors.IllegalTransition(f"guarantee {application.number} exists already ({existing.state.name})")
    fields = letter_fields(application, moment, base_url)
    prepared = prepare_letter(fields, bytes(guarantor.account.key))
    return anchor_letters(deployment, guarantor, [(application, prepared)])[0]


# ------------------------------------------------------------------ after issue


def on_chain(deployment: Deployment, number: str) -> Guarantee:
    """The guarantee as stored on chain; UnknownGuarantee if none has this number."""
    stored = deployment.guarantees.guarantee(guarantee_id(number))
    if stored.state == GuaranteeState.NONE:
        raise errors.UnknownGuarantee(f"no guarantee {number} on chain")
    return stored


def check_cover(deployment: Deployment, guarantee: bytes, section_id: bytes, bidder: str, salt: bytes | None) -> None:
    """Refuse, before a bid relies on it, a guarantee its reveal at the opening would fail on: the same
    rules `GuaranteeRegistry.bind` applies then, read from the chain now (nothing is written, so the
    密文保函 stays sealed). Named exception per rule."""
    stored = deployment.guarantees.guarantee(guarantee)
    if stored.state == GuaranteeState.NONE:
        raise errors.UnknownGuarantee(f"no guarantee 0x{guarantee.hex()} on chain")
    if stored.state != GuaranteeState.ISSUED or stored.bound:
        raise errors.IllegalTransition(f"guarantee 0x{guarantee.hex()} is {stored.state.name.lower()}"
                                       + (" and already relied on" if stored.bound else ""))
    if to_checksum_address(stored.applicant) != to_checksum_address(bidder):
        raise errors.WrongParty(f"guarantee 0x{guarantee.hex()} was issued to {stored.applicant}, not {bidder}")
    expected = sealed_reference(section_id, salt or b"") if stored.sealed_ref else section_id
    if stored.sealed_ref and (salt is None or len(salt) != 32):
        raise errors.InvalidApplication("a sealed (密文) guarantee needs its 32-byte salt")
    if stored.section_ref != expected:
        raise errors.InvalidApplication(f"guarantee 0x{guarantee.hex()} covers another section (or the salt is wrong)")
    facts = section_facts(deployment, section_id)
    if to_checksum_address(stored.beneficiary) != facts.tenderer:
        raise errors.BeneficiaryNotTenderer(f"beneficiary {stored.beneficiary} is not the tenderer {facts.tenderer}")
    if stored.amount < facts.bid_bond:
        raise errors.AmountBelowBond(f"amount {stored.amount} fen < bid bond {facts.bid_bond} fen")
    if stored.valid_until < facts.required_valid_until:
        raise errors.ValidityTooShort(f"valid until {stored.valid_until} < end of bid validity "
                                      f"{facts.required_valid_until}")


def _issued(deployment: Deployment, number: str, step: str) -> Guarantee:
    stored = on_chain(deployment, number)
    if stored.state != GuaranteeState.ISSUED:
        raise errors.IllegalTransition(f"cannot {step} guarantee {number}: it is {stored.state.name.lower()}")
    return stored


def cancel(deployment: Deployment, guarantor: Signer, number: str) -> TxResult:
    """Cancel, as the issuer, a guarantee that no bid relies on, before the bid deadline.

    For a sealed guarantee the deadline is not known from the chain (the guarantor does not know the
    section). A bid's cover is revealed, and the guarantee bound, only at the opening: before that the
    chain cannot tell whether a sealed bid relies on it, and a guarantee cancelled then leaves that
    bid without a valid cover (its reveal is refused).
    """
    stored = _issued(deployment, number, "cancel")
    if to_checksum_address(stored.issuer) != guarantor.address:
        raise errors.WrongParty(f"only the issuer {stored.issuer} may cancel {number}")
    if stored.bound:
        raise errors.NotCancellable(f"a bid relies on {number}; it can no longer be cancelled")
    if not stored.sealed_ref:
        opening_time, _ = deployment.tenders.deadline_of(stored.section_ref)
        if deployment.chain.now() >= opening_time:
            raise errors.NotCancellable(f"the bid deadline of {number}'s section has passed: release it instead")
    return deployment.guarantees.cancel(guarantor, guarantee_id(number))


def release(deployment: Deployment, signer: Signer, number: str, section_id: bytes) -> TxResult:
    """End a guarantee without payment: the beneficiary at any time; the issuer once the bond is free.

    The bond is free at once for a bidder that did not win (or a failed tender), and for the winner
    once the contract is signed (`TenderRegistry.bondReleasable`).
    """
    stored = _issued(deployment, number, "release")
    if signer.address != to_checksum_address(stored.beneficiary):
        if signer.address != to_checksum_address(stored.issuer):
            raise errors.WrongParty(f"only the issuer or the beneficiary may release {number}")
        if stored.bound:
            kind, cover = deployment.tenders.bid_cover(section_id, stored.applicant)
            if kind != CoverKind.GUARANTEE or cover != guarantee_id(number):
                raise errors.NotReleasable(f"{number} does not cover the applicant's bid in that section")
            if not deployment.tenders.bond_releasable(section_id, stored.applicant):
                raise errors.NotReleasable(f"the tender has not ended in a way that frees the bond of {number}")
    return deployment.guarantees.release(signer, guarantee_id(number), section_id)


def expire(deployment: Deployment, signer: Signer, number: str) -> TxResult:
    """Mark an issued guarantee whose validity has ended as expired (anyone may)."""
    stored = _issued(deployment, number, "expire")
    now = deployment.chain.now()
    if now <= stored.valid_until:
        raise errors.NotExpired(f"{number} is valid until {stored.valid_until} (now {now})")
    return deployment.guarantees.expire(signer, guarantee_id(number))


def claim(
    deployment: Deployment,
    beneficiary: Signer,
    number: str,
    section_id: bytes,
    ground: ClaimGround,
    evidence_hash: bytes,
) -> TxResult:
    """Claim, as the beneficiary, on a ground the section's on-chain record supports."""
    if ground == ClaimGround.NONE:
        raise errors.ClaimWithoutGround(f"a claim on {number} must name its ground")
    if len(evidence_hash) != 32 or evidence_hash == b"\x00" * 32:
        raise errors.ClaimWithoutGround("a claim needs the hash of its evidence")
    stored = _issued(deployment, number, "claim")
    if beneficiary.address != to_checksum_address(stored.beneficiary):
        raise errors.WrongParty(f"only the beneficiary {stored.beneficiary} may claim on {number}")
    kind, cover = deployment.tenders.bid_cover(section_id, stored.applicant)
    if kind != CoverKind.GUARANTEE or cover != guarantee_id(number):
        raise errors.ClaimGroundNotMet(f"{number} does not cover the applicant's bid in that section")
    if not deployment.tenders.claim_ground_holds(section_id, stored.applicant, ground):
        raise errors.ClaimGroundNotMet(f"the section's record does not show {ground.name.lower()} for {number}")
    return deployment.guarantees.claim(beneficiary, guarantee_id(number), section_id, ground, evidence_hash)


def record_payout(deployment: Deployment, guarantor: Signer, number: str, paid: int, payment_ref: bytes) -> TxResult:
    """Record, as the issuer, that a claim was paid (0 < paid ≤ amount)."""
    stored = on_chain(deployment, number)
    if stored.state != GuaranteeState.CLAIMED:
        raise errors.IllegalTransition(f"{number} is {stored.state.name.lower()}, not claimed: nothing to pay")
    if to_checksum_address(stored.issuer) != guarantor.address:
        raise errors.WrongParty(f"only the issuer {stored.issuer} records the payout of {number}")
    if paid <= 0 or paid > stored.amount:
        raise errors.InvalidPayout(f"payout {paid} fen must be within 1..{stored.amount}")
    return deployment.guarantees.record_payout(guarantor, guarantee_id(number), paid, payment_ref)


# ------------------------------------------------------------------ facts from the chain


def event_topic(chain: Chain, name: str) -> bytes:
    """The topic of one of our contracts' events, by name."""
    for topic, spec in chain._events.items():
        if spec.name == name:
            return topic
    raise KeyError(name)


_GROUNDS = {
    "BidDecryptionFailed": ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE,
    "BidWithdrawnAfterDeadline": ClaimGround.WITHDRAWAL_AFTER_DEADLINE,
    "RefusalToSignRecorded": ClaimGround.WINNER_REFUSED_TO_SIGN,
}


def claimable_guarantees(deployment: Deployment, section_id: bytes, from_block: int = 0) -> list[Claimability]:
    """The guarantees of a section that on-chain facts made claimable, each with the fact and its ground.

    Read from TenderRegistry's events: a bidder-caused decryption failure, a withdrawal after the
    deadline, or the winner's refusal to sign; each kept only if the bid's revealed cover is a guarantee
    that is still issued and the contract agrees the ground holds (a cover not revealed yet covers
    nothing on chain: the platform reveals every cover at the opening).
    """
    chain, tenders = deployment.chain, deployment.tenders
    topics = [[event_topic(chain, name) for name in _GROUNDS], section_id]
    found: list[Claimability] = []
    for logged in chain.logs(tenders.address, topics, from_block):
        event = logged.event
        if event.name == "BidDecryptionFailed" and not event.args["bidderCaused"]:
            continue
        ground = _GROUNDS[event.name]
        bidder = event.args.get("bidder") or tenders.section(section_id).winner
        kind, cover = tenders.bid_cover(section_id, bidder)
        if kind != CoverKind.GUARANTEE or cover == b"\x00" * 32:
            continue
        if deployment.guarantees.guarantee(cover).state != GuaranteeState.ISSUED:
            continue
        if not tenders.claim_ground_holds(section_id, bidder, ground):
            continue
        found.append(
            Claimability(cover, section_id, to_checksum_address(bidder), ground, logged.tx_hash, logged.block_number)
        )
    return found


def reveal_section(deployment: Deployment, guarantee: bytes, from_block: int = 0) -> SectionReveal | None:
    """The section a guarantee covers, once the bid relying on it had its cover revealed; else None.

    A bid commits only to a blinded cover, so nothing on chain links the guarantee to a section before
    the opening. From the section's opening time on, the platform (or the bidder) reveals each bid's
    cover: `TenderRegistry.revealCover` emits `CoverRevealed` and binds the guarantee, which emits
    `GuaranteeBound(guaranteeId, sectionId, bidder)`. That event is the guarantor's source.
    """
    chain = deployment.chain
    bound = chain.logs(deployment.guarantees.address, [event_topic(chain, "GuaranteeBound"), guarantee], from_block)
    if not bound:
        return None
    logged = bound[-1]
    section_id = bytes(logged.event.args["sectionId"])
    tender_id = deployment.tenders.section(section_id).tender_id
    return SectionReveal(section_id, tender_id, logged.tx_hash, logged.block_number)


def sealed_view(
    application: GuaranteeApplication, deployment: Deployment | None = None, from_block: int = 0
) -> SealedView:
    """What the guarantor may see of a guarantee: no section until the opening reveals it.

    Project and section names are left out of the view; with a deployment, the section is revealed
    by the on-chain reveal of the bid's cover at the opening (see `reveal_section`).
    """
    reference = (
        sealed_reference(application.section_id, application.salt) if application.sealed else application.section_id
    )
    revealed = None
    if deployment is not None and application.sealed:
        revealed = reveal_section(deployment, guarantee_id(application.number), from_block)
    elif not application.sealed:
        revealed = SectionReveal(application.section_id, b"", "", 0)
    return SealedView(
        number=application.number,
        applicant=to_checksum_address(application.applicant.account),
        amount=application.amount,
        valid_until=application.valid_until,
        section_ref=reference,
        revealed=revealed,
    )


def signed_letter_number(pdf: bytes) -> str:
    """The guarantee number a signed letter's signature block names."""
    block, _ = read_signature(pdf)
    return block.number
