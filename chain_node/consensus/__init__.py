"""BFT consensus of the consortium chain: QBFT with immediate finality, as a pure state machine.

The node owns sockets, clocks and storage; `QbftCore` only turns inputs (messages, ticks, proposals) into an
`Outbox` of things to do. See `core` for the message flow and the safety argument, `messages` for the wire
format, `validators` for the validator set and commit-seal checks.
"""

from chain_node.consensus.core import (
    STAT_KEYS,
    ConsensusError,
    Decision,
    NotStartedError,
    Outbox,
    PreparedCertificate,
    ProposalRejected,
    QbftConfig,
    QbftCore,
    RestoreError,
    Validate,
)
from chain_node.consensus.crypto import address_of, commit_seal_digest, keccak, recover, sign
from chain_node.consensus.messages import (
    Commit,
    DecodeError,
    Message,
    MessageCode,
    MessageError,
    Prepare,
    Proposal,
    RoundChange,
    Signed,
    decode_message,
    encode_message,
    sign_body,
)
from chain_node.consensus.validators import (
    Seal,
    SealCheck,
    SealFailure,
    ValidatorSet,
    check_commit_seals,
    verify_commit_seals,
)

__all__ = [
    "STAT_KEYS",
    "Commit",
    "ConsensusError",
    "Decision",
    "DecodeError",
    "Message",
    "MessageCode",
    "MessageError",
    "NotStartedError",
    "Outbox",
    "Prepare",
    "PreparedCertificate",
    "Proposal",
    "ProposalRejected",
    "QbftConfig",
    "QbftCore",
    "RestoreError",
    "RoundChange",
    "Seal",
    "SealCheck",
    "SealFailure",
    "Signed",
    "Validate",
    "ValidatorSet",
    "address_of",
    "check_commit_seals",
    "commit_seal_digest",
    "decode_message",
    "encode_message",
    "keccak",
    "recover",
    "sign",
    "sign_body",
    "verify_commit_seals",
]
