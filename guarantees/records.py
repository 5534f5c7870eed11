"""Frozen records of the guarantee domain: applications, decisions, premiums, letters, verdicts, alerts.

Amounts are in fen (分), times in unix seconds of chain time, accounts are checksummed addresses.
Names and identifiers of organisations appear in letters and in the platform's database, never on chain.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from contracts.records import ClaimGround, SectionStatus


@dataclass(frozen=True)
class Party:
    """An organisation named in a letter: its name, 统一社会信用代码 and chain account."""

    name: str
    identifier: str
    account: str


@dataclass(frozen=True)
class SectionFacts:
    """What the chain says about a section, as the application rules need it."""

    section_id: bytes
    tender_id: bytes
    tenderer: str
    opening_time: int
    bid_bond: int
    bid_validity_period: int
    status: SectionStatus

    @property
    def required_valid_until(self) -> int:
        """The guarantee must stay valid through the bid validity period, counted from the opening."""
        return self.opening_time + self.bid_validity_period


@dataclass(frozen=True)
class GuaranteeApplication:
    """A bidder's application for a bid guarantee, as submitted (before underwriting)."""

    number: str  # the guarantee number (保函编号); its keccak is the on-chain guarantee id
    applicant: Party
    beneficiary: Party
    guarantor: Party
    project_name: str
    section_name: str
    section_id: bytes
    amount: int
    valid_until: int
    applied_at: int
    sealed: bool = True  # 密文保函: the guarantor records only a sealed reference until the opening
    salt: bytes = b""  # opens the sealed reference; known to the applicant, not to the guarantor


class Decision(enum.StrEnum):
    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True)
class UnderwritingRules:
    """A guarantor's automatic rules, applied before a person decides."""

    max_amount: int = 50_000_000_00  # 5000万元 per guarantee
    max_validity_days: int = 400
    refused_applicants: frozenset[str] = frozenset()  # accounts on the guarantor's refusal list
    min_days_before_deadline: int = 0


@dataclass(frozen=True)
class ManualDecision:
    """An underwriter's decision on an application that passed the rules."""

    underwriter: str
    approve: bool
    note: str
    decided_at: int


@dataclass(frozen=True)
class UnderwritingDecision:
    number: str
    decision: Decision
    reasons: tuple[str, ...]
    underwriter: str
    decided_at: int

    @property
    def approved(self) -> bool:
        return self.decision is Decision.APPROVED


@dataclass(frozen=True)
class PremiumTerms:
    """Premium = amount × rate (in basis points), at least the minimum; in fen."""

    rate_bp: int = 15  # 0.15 %
    minimum: int = 300_00  # 300元


@dataclass(frozen=True)
class PremiumPayment:
    number: str
    amount: int
    payer_account: str  # the bank account the premium came from (supervision compares them)
    payment_ref: str
    paid_at: int


@dataclass(frozen=True)
class LetterFields:
    """Everything a 投标保函 states; rendered into the PDF and hashed with it."""

    number: str
    applicant: Party
    beneficiary: Party
    guarantor: Party
    project_name: str
    section_name: str
    amount: int
    valid_from: int
    valid_until: int
    issued_at: int
    verify_url: str
    signatory: str = "授权签字人"


@dataclass(frozen=True)
class LetterSignature:
    """The signature block appended to a letter: who signed which bytes, and where it was anchored."""

    number: str
    signed_length: int
    letter_hash: bytes
    signature: bytes  # DER ECDSA over letter_hash (secp256k1)
    public_key: bytes  # compressed SEC1
    signer: str
    anchor_tx: str  # the transaction that anchored the hash (a hint: verified against the chain)


@dataclass(frozen=True)
class IssuedGuarantee:
    """A guarantee issued and anchored: the signed letter and the anchoring evidence."""

    number: str
    guarantee_id: bytes
    section_ref: bytes
    sealed: bool
    letter_hash: bytes
    signed_pdf: bytes
    tx_hash: str
    block_number: int
    block_hash: str


class Verdict(enum.StrEnum):
    """The one answer a verification gives (the CLI's exit code follows it)."""

    GENUINE_IN_FORCE = "genuine_in_force"
    TAMPERED = "tampered"
    UNKNOWN = "unknown"
    NOT_GUARANTOR = "not_guarantor"
    CANCELLED = "cancelled"
    RELEASED = "released"
    CLAIMED = "claimed"
    EXPIRED = "expired"


VERDICT_TEXT = {
    Verdict.GENUINE_IN_FORCE: "真实有效：保函为担保机构签发并已上链存证，目前有效",
    Verdict.TAMPERED: "已被篡改：文件内容与签名或链上存证的哈希不一致",
    Verdict.UNKNOWN: "未知保函：链上没有该编号的保函",
    Verdict.NOT_GUARANTOR: "签名人不是担保机构：签名密钥不属于签发该保函的担保机构",
    Verdict.CANCELLED: "已撤销：担保机构已撤销该保函",
    Verdict.RELEASED: "已解除：保函已解除（退保），不再有效",
    Verdict.CLAIMED: "已索赔：受益人已就该保函索赔",
    Verdict.EXPIRED: "已过期：保函有效期已届满",
}


@dataclass(frozen=True)
class Evidence:
    """Where the guarantee was anchored: the issue transaction, its block, and a proof bundle if any."""

    tx_hash: str
    block_number: int
    block_hash: str
    letter_hash: str
    proof: dict[str, Any] | None = None


@dataclass(frozen=True)
class VerificationResult:
    verdict: Verdict
    number: str
    reason: str
    letter_hash: str = ""
    signer: str = ""
    issuer: str = ""
    applicant: str = ""
    beneficiary: str = ""
    amount: int = 0
    valid_until: int = 0
    state: str = ""
    evidence: Evidence | None = None
    checked_at: int = 0

    @property
    def text(self) -> str:
        return VERDICT_TEXT[self.verdict]

    def to_json(self) -> dict[str, Any]:
        evidence = None
        if self.evidence is not None:
            evidence = {
                "tx_hash": self.evidence.tx_hash,
                "block_number": self.evidence.block_number,
                "block_hash": self.evidence.block_hash,
                "letter_hash": self.evidence.letter_hash,
                "proof": self.evidence.proof,
            }
        return {
            "verdict": self.verdict.value,
            "text": self.text,
            "number": self.number,
            "reason": self.reason,
            "letter_hash": self.letter_hash,
            "signer": self.signer,
            "issuer": self.issuer,
            "applicant": self.applicant,
            "beneficiary": self.beneficiary,
            "amount_fen": self.amount,
            "valid_until": self.valid_until,
            "state": self.state,
            "evidence": evidence,
            "checked_at": self.checked_at,
        }


@dataclass(frozen=True)
class Claimability:
    """A guarantee that on-chain facts made claimable, with the fact's transaction."""

    guarantee_id: bytes
    section_id: bytes
    bidder: str
    ground: ClaimGround
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class SealedView:
    """What a guarantor sees of a 密文保函: a sealed reference until the section's opening."""

    number: str
    applicant: str
    amount: int
    valid_until: int
    section_ref: bytes
    revealed: SectionReveal | None = None


@dataclass(frozen=True)
class SectionReveal:
    """The section a sealed guarantee covers, learnt from the on-chain opening: the reveal of the cover
    of the bid that relies on it (`CoverRevealed` + `GuaranteeBound`, one transaction)."""

    section_id: bytes
    tender_id: bytes
    opening_tx: str  # the reveal's transaction
    opening_block: int


@dataclass(frozen=True)
class GuaranteeRecord:
    """A guarantee as supervision sees it: issue facts, premium payer, and the state on chain."""

    number: str
    guarantee_id: bytes
    section_id: bytes  # the section (revealed for a sealed guarantee)
    applicant: str
    beneficiary: str
    issuer: str
    amount: int
    issued_at: int  # block timestamp of the issue
    state: str = "issued"
    premium_payer_account: str = ""
    bound: bool = False


class AlertKind(enum.StrEnum):
    ISSUED_AFTER_DEADLINE = "issued_after_deadline"
    BELOW_BOND = "below_bond"
    BENEFICIARY_NOT_TENDERER = "beneficiary_not_tenderer"
    SEVERAL_GUARANTEES_FOR_ONE_BID = "several_guarantees_for_one_bid"
    SHARED_PREMIUM_ACCOUNT = "shared_premium_account"


@dataclass(frozen=True)
class SupervisionAlert:
    """An anomaly found by the supervision rules (智慧监管预警)."""

    kind: AlertKind
    section_id: bytes
    numbers: tuple[str, ...]
    detail: str
    accounts: tuple[str, ...] = field(default=())
