"""Verification for anyone: one verdict for a letter (PDF), a QR payload or a guarantee number.

A letter is checked in this order, and the first failing check gives the verdict:

1. the PDF carries an intact signature block, the SHA-256 of the bytes it covers equals the hash it
   names, and the ECDSA signature over that hash is valid for the block's public key and signer
   address — else `tampered`;
2. the signer is a guarantor member of the consortium — else `not_guarantor`;
3. the chain knows the guarantee number — else `unknown`;
4. the signer is the guarantee's issuer — else `not_guarantor`;
5. the transaction the letter names (if any) is the one that anchored it, and the hash anchored in
   the `GuaranteeIssued` event equals the letter's hash — else `tampered`;
6. the guarantee's state on chain: `cancelled`, `released`, `claimed` (claimed or paid), `expired`
   (marked so, or past its validity), otherwise `genuine_in_force`.

Lookups for many letters go to the node as batched JSON-RPC (one round trip per few hundred letters).
The letter's anchoring transaction (written into its signature block at issue) names the block to
look in, and the `GuaranteeIssued` events of all letters anchored in one block come with one
`eth_getLogs`; the registry's logs are scanned only when that hint is missing or wrong. Evidence: the
anchoring transaction, block number and hash, and on chain_node a `jz_getProof` bundle (receipt,
Merkle proof, header and commit seals) that can be checked offline.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from eth_utils import keccak, to_checksum_address

from contracts.client import Deployment
from contracts.records import GuaranteeState, Role
from guarantees.letter import SignatureBlockMissing, read_signature, signature_valid
from guarantees.lifecycle import NUMBER_PATTERN, anchorings_in_blocks, event_topic, guarantee_id
from guarantees.records import Evidence, LetterSignature, Verdict, VerificationResult

_GUARANTEE_OF = keccak(text="guaranteeOf(bytes32)")[:4]
_HAS_ROLE = keccak(text="hasRole(address,uint256)")[:4]

_STATE_VERDICTS = {
    GuaranteeState.CANCELLED: Verdict.CANCELLED,
    GuaranteeState.RELEASED: Verdict.RELEASED,
    GuaranteeState.CLAIMED: Verdict.CLAIMED,
    GuaranteeState.PAID: Verdict.CLAIMED,
    GuaranteeState.EXPIRED: Verdict.EXPIRED,
}

EXIT_CODES = {
    Verdict.GENUINE_IN_FORCE: 0,
    Verdict.TAMPERED: 10,
    Verdict.UNKNOWN: 11,
    Verdict.NOT_GUARANTOR: 12,
    Verdict.CANCELLED: 13,
    Verdict.RELEASED: 14,
    Verdict.CLAIMED: 15,
    Verdict.EXPIRED: 16,
}


class BadNumber(ValueError):
    """The text is not a guarantee number or a verification URL carrying one."""


@dataclass(frozen=True)
class StoredGuarantee:
    """`guaranteeOf` decoded."""

    issuer: str
    valid_until: int
    state: GuaranteeState
    applicant: str
    amount: int
    beneficiary: str


@dataclass(frozen=True)
class _Parsed:
    block: LetterSignature | None
    digest: bytes
    failure: str  # why the letter is tampered ("" if its signature holds)


def _word(data: bytes, index: int) -> bytes:
    return data[32 * index : 32 * index + 32]


@lru_cache(maxsize=4096)
def _address(word: bytes) -> str:
    """The checksummed address in an ABI word (remembered: a checksum costs two keccaks)."""
    return to_checksum_address(word[12:])


def decode_guarantee(output: bytes) -> StoredGuarantee:
    return StoredGuarantee(
        issuer=_address(_word(output, 0)),
        valid_until=int.from_bytes(_word(output, 1), "big"),
        state=GuaranteeState(int.from_bytes(_word(output, 2), "big")),
        applicant=_address(_word(output, 5)),
        amount=int.from_bytes(_word(output, 6), "big"),
        beneficiary=_address(_word(output, 7)),
    )


def _call(to: str, data: bytes) -> tuple[str, list[Any]]:
    return "eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]


def _parse(pdf: bytes) -> _Parsed:
    """Signature checks that need no chain (LetterError for what is not a PDF at all)."""
    try:
        block, unsigned = read_signature(pdf)
    except SignatureBlockMissing as missing:
        return _Parsed(None, hashlib.sha256(pdf).digest(), str(missing))
    digest = hashlib.sha256(unsigned).digest()
    if digest != block.letter_hash:
        return _Parsed(block, digest, "the letter's bytes do not hash to the hash its signature names")
    if not signature_valid(block, digest):
        return _Parsed(block, digest, "the guarantor's signature does not verify for this letter")
    return _Parsed(block, digest, "")


def _anchorings_in_blocks(
    deployment: Deployment, wanted: dict[int, list[bytes]]
) -> dict[bytes, tuple[bytes, Evidence]]:
    found = anchorings_in_blocks(deployment.chain, deployment.guarantees.address, wanted)
    return {
        gid: (a.letter_hash, Evidence(a.tx_hash, a.block_number, a.block_hash, "0x" + a.letter_hash.hex()))
        for gid, a in found.items()
    }


def _anchoring_by_scan(deployment: Deployment, wanted_id: bytes) -> tuple[bytes, Evidence] | None:
    chain = deployment.chain
    found = chain.logs(deployment.guarantees.address, [event_topic(chain, "GuaranteeIssued"), wanted_id])
    if not found:
        return None
    logged = found[0]
    anchored = bytes(logged.event.args["letterHash"])
    evidence = Evidence(logged.tx_hash, logged.block_number, logged.block_hash, "0x" + anchored.hex())
    return anchored, evidence


def _with_proofs(deployment: Deployment, evidences: list[Evidence | None]) -> list[Evidence | None]:
    """Attach `jz_getProof` bundles where the node offers them (chain_node); unchanged elsewhere."""
    wanted = [(i, e) for i, e in enumerate(evidences) if e is not None]
    if not wanted:
        return evidences
    answers = deployment.chain.rpc_batch([("jz_getProof", [e.tx_hash]) for _, e in wanted])
    result = list(evidences)
    for (index, evidence), answer in zip(wanted, answers, strict=True):
        if isinstance(answer.get("result"), dict):
            result[index] = Evidence(
                evidence.tx_hash, evidence.block_number, evidence.block_hash, evidence.letter_hash, answer["result"]
            )
    return result


def _result(
    verdict: Verdict,
    number: str,
    reason: str,
    now: int,
    *,
    digest: bytes = b"",
    signer: str = "",
    stored: StoredGuarantee | None = None,
    evidence: Evidence | None = None,
) -> VerificationResult:
    return VerificationResult(
        verdict=verdict,
        number=number,
        reason=reason,
        letter_hash="0x" + digest.hex() if digest else "",
        signer=signer,
        issuer=stored.issuer if stored else "",
        applicant=stored.applicant if stored else "",
        beneficiary=stored.beneficiary if stored else "",
        amount=stored.amount if stored else 0,
        valid_until=stored.valid_until if stored else 0,
        state=stored.state.name.lower() if stored else "",
        evidence=evidence,
        checked_at=now,
    )


def _state_verdict(stored: StoredGuarantee, now: int) -> tuple[Verdict, str]:
    if stored.state in _STATE_VERDICTS:
        return _STATE_VERDICTS[stored.state], f"the guarantee is {stored.state.name.lower()} on chain"
    if now > stored.valid_until:
        return Verdict.EXPIRED, f"its validity ended at {stored.valid_until} (chain time now {now})"
    return Verdict.GENUINE_IN_FORCE, "signed by its issuing guarantor, anchored on chain and in force"


def _identity_verdict(
    block: LetterSignature, stored: StoredGuarantee, signer_is_guarantor: bool
) -> tuple[Verdict, str] | None:
    """Checks 2-4: who signed, whether the number exists, whether the signer issued it (None: all hold)."""
    if not signer_is_guarantor:
        return Verdict.NOT_GUARANTOR, f"the signer {block.signer} is not a guarantor member"
    if stored.state == GuaranteeState.NONE:
        return Verdict.UNKNOWN, f"no guarantee {block.number} on chain"
    if stored.issuer != block.signer:
        return Verdict.NOT_GUARANTOR, f"signed by {block.signer}, but issued by {stored.issuer}"
    return None


def _anchoring_mismatch(block: LetterSignature, digest: bytes, anchored: bytes, evidence: Evidence) -> str:
    """Check 5: why the letter does not match its anchoring on chain ("" when it does)."""
    if block.anchor_tx and block.anchor_tx.lower() != evidence.tx_hash.lower():
        return "the letter names another anchoring transaction than the one on chain"
    if anchored != digest:
        return "the letter's hash differs from the hash anchored on chain"
    return ""


def verify_letters(
    deployment: Deployment, pdfs: Sequence[bytes], *, with_proof: bool = False
) -> list[VerificationResult]:
    """Verdicts for many letters at once (batched chain lookups). LetterError if one is not a PDF."""
    parsed = [_parse(pdf) for pdf in pdfs]
    chain, registry = deployment.chain, deployment.guarantees.address
    signers = sorted({p.block.signer for p in parsed if p.block is not None and not p.failure})
    calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", ["latest", False])]
    calls += [
        _call(
            deployment.consortium.address,
            _HAS_ROLE + bytes(12) + bytes.fromhex(s[2:]) + int(Role.GUARANTOR).to_bytes(32, "big"),
        )
        for s in signers
    ]
    lookups = [i for i, p in enumerate(parsed) if p.block is not None and not p.failure]
    for index in lookups:
        block = parsed[index].block
        assert block is not None
        calls.append(_call(registry, _GUARANTEE_OF + guarantee_id(block.number)))
        calls.append(("eth_getTransactionByHash", [block.anchor_tx]) if block.anchor_tx else ("eth_chainId", []))
    answers = chain.rpc_batch(calls)
    now = int(answers[0]["result"]["timestamp"], 16)
    is_guarantor = {
        s: int(a.get("result", "0x0"), 16) == 1 for s, a in zip(signers, answers[1 : 1 + len(signers)], strict=True)
    }

    results: list[VerificationResult | None] = [None] * len(pdfs)
    evidences: list[Evidence | None] = [None] * len(pdfs)
    pending: list[tuple[int, LetterSignature, StoredGuarantee, int]] = []
    for index, item in enumerate(parsed):
        if item.failure:
            number = item.block.number if item.block else ""
            results[index] = _result(Verdict.TAMPERED, number, item.failure, now, digest=item.digest)
    offset = 1 + len(signers)
    for position, index in enumerate(lookups):
        block = parsed[index].block
        assert block is not None
        digest = parsed[index].digest
        stored_answer, hint_answer = answers[offset + 2 * position], answers[offset + 2 * position + 1]
        if "result" not in stored_answer:
            raise ConnectionError(f"guaranteeOf failed: {stored_answer.get('error')}")
        stored = decode_guarantee(bytes.fromhex(stored_answer["result"][2:]))
        early = _identity_verdict(block, stored, is_guarantor[block.signer])
        if early is not None:
            verdict, reason = early
            known = stored if stored.state != GuaranteeState.NONE else None
            results[index] = _result(
                verdict, block.number, reason, now, digest=digest, signer=block.signer, stored=known
            )
            continue
        hinted = hint_answer.get("result") if block.anchor_tx else None
        hinted_block = -1
        if (
            isinstance(hinted, dict)
            and hinted.get("blockNumber")
            and str(hinted.get("to", "")).lower() == registry.lower()
        ):
            hinted_block = int(hinted["blockNumber"], 16)
        pending.append((index, block, stored, hinted_block))

    wanted: dict[int, list[bytes]] = {}
    for _, block, _, hinted_block in pending:
        if hinted_block >= 0:
            wanted.setdefault(hinted_block, []).append(guarantee_id(block.number))
    anchorings = _anchorings_in_blocks(deployment, wanted) if wanted else {}
    for index, block, stored, _ in pending:
        digest = parsed[index].digest
        wanted_id = guarantee_id(block.number)
        anchoring = anchorings.get(wanted_id) or _anchoring_by_scan(deployment, wanted_id)
        if anchoring is None:
            results[index] = _result(
                Verdict.UNKNOWN, block.number, "no GuaranteeIssued event found", now, digest=digest, signer=block.signer
            )
            continue
        anchored, evidence = anchoring
        evidences[index] = evidence
        mismatch = _anchoring_mismatch(block, digest, anchored, evidence)
        verdict, reason = (Verdict.TAMPERED, mismatch) if mismatch else _state_verdict(stored, now)
        results[index] = _result(
            verdict, block.number, reason, now, digest=digest, signer=block.signer, stored=stored, evidence=evidence
        )
    if with_proof:
        proven = _with_proofs(deployment, evidences)
        for index, with_bundle in enumerate(proven):
            current = results[index]
            if with_bundle is not None and current is not None:
                results[index] = replace(current, evidence=with_bundle)
    return [r for r in results if r is not None]


def verify_letter(deployment: Deployment, pdf: bytes, *, with_proof: bool = True) -> VerificationResult:
    """The verdict for one letter, with a proof bundle where the chain offers one."""
    return verify_letters(deployment, [pdf], with_proof=with_proof)[0]


def number_from_qr(payload: str) -> str:
    """The guarantee number in a QR payload (the verification URL) or typed by hand."""
    text = payload.strip()
    if "://" in text or "?" in text:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query)
        values = query.get("number", [])
        if len(values) != 1:
            raise BadNumber("the link carries no guarantee number")
        text = values[0].strip()
    if not NUMBER_PATTERN.match(text):
        raise BadNumber(f"{text[:80]!r} is not a guarantee number (3-64 letters, digits or '-')")
    return text


def verify_number(deployment: Deployment, number_or_qr: str, *, with_proof: bool = True) -> VerificationResult:
    """The verdict for a guarantee number (or a QR payload): its state on chain, with evidence.

    Without the letter no tampering can be judged: the verdict says whether a guarantee with this
    number exists, and whether it is in force.
    """
    number = number_from_qr(number_or_qr)
    chain = deployment.chain
    wanted_id = guarantee_id(number)
    answers = chain.rpc_batch(
        [("eth_getBlockByNumber", ["latest", False]), _call(deployment.guarantees.address, _GUARANTEE_OF + wanted_id)]
    )
    now = int(answers[0]["result"]["timestamp"], 16)
    stored = decode_guarantee(bytes.fromhex(answers[1]["result"][2:]))
    if stored.state == GuaranteeState.NONE:
        return _result(Verdict.UNKNOWN, number, f"no guarantee {number} on chain", now)
    anchoring = _anchoring_by_scan(deployment, wanted_id)
    evidence = None
    digest = b""
    if anchoring is not None:
        digest, evidence = anchoring
        if with_proof:
            evidence = _with_proofs(deployment, [evidence])[0]
    verdict, reason = _state_verdict(stored, now)
    return _result(verdict, number, reason, now, digest=digest, stored=stored, evidence=evidence)


def exit_code(verdict: Verdict) -> int:
    return EXIT_CODES[verdict]
