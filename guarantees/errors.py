"""Named failures of the guarantee library: each illegal step or bad input has its own exception.

The app refuses an illegal step before it reaches the chain (with one of these); the contract refuses
it again on chain (with the `contracts.errors` exception of the same meaning) if the app is bypassed.
"""

from __future__ import annotations


class GuaranteeError(Exception):
    """Base of every refusal raised by `guarantees`."""


# ---------------------------------------------------------------- application and underwriting


class ApplicationRefused(GuaranteeError):
    """The application breaks a rule of the section it is for."""


class AmountBelowBond(ApplicationRefused):
    """The guaranteed amount is below the section's bid bond."""


class ValidityTooShort(ApplicationRefused):
    """The guarantee would end before the bid validity period does."""


class BeneficiaryNotTenderer(ApplicationRefused):
    """The beneficiary named is not the section's tenderer."""


class AfterDeadline(ApplicationRefused):
    """The section's bid deadline has passed: no guarantee can be applied for or issued for it."""


class UnknownSection(ApplicationRefused):
    """The chain knows no section with this id."""


class InvalidApplication(ApplicationRefused):
    """A field of the application is malformed (number, amount, account, salt)."""


class NotUnderwritten(GuaranteeError):
    """Issue or premium payment without an approving underwriting decision."""


class PremiumMismatch(GuaranteeError):
    """The premium recorded as paid differs from the premium computed for the application."""


class PremiumNotPaid(GuaranteeError):
    """Issue before the premium was recorded as paid."""


# ---------------------------------------------------------------- lifecycle on chain


class IllegalTransition(GuaranteeError):
    """The guarantee is not in a state the step may start from (e.g. release after claim)."""


class UnknownGuarantee(GuaranteeError):
    """The chain knows no guarantee with this number."""


class NotCancellable(IllegalTransition):
    """A bid relies on the guarantee: the guarantor may not cancel it."""


class NotReleasable(IllegalTransition):
    """The tender has not ended in a way that frees the applicant's bond."""


class NotExpired(IllegalTransition):
    """The guarantee is still within its validity period."""


class ClaimWithoutGround(IllegalTransition):
    """A claim must name a ground (withdrawal after the deadline, decryption failure, refusal to sign)."""


class ClaimGroundNotMet(IllegalTransition):
    """The section's on-chain record does not support the ground claimed."""


class InvalidPayout(IllegalTransition):
    """The payout is zero or above the guaranteed amount."""


class WrongParty(GuaranteeError):
    """The signer is not the party the step belongs to (issuer, beneficiary)."""


# ---------------------------------------------------------------- letters


class LetterError(GuaranteeError):
    """The file is not a guarantee letter this library can read (not a PDF, too large, malformed)."""


class NotAPdf(LetterError):
    """The bytes are not a PDF document."""


class LetterTooLarge(LetterError):
    """The file exceeds the size any guarantee letter has."""
