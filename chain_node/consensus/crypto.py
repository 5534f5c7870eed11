"""secp256k1 keys, recoverable signatures and Ethereum addresses for the consensus messages.

Signatures are 65 bytes r||s||v with v in {0, 1} and a low s: one canonical byte string per signature, so a
relayed message cannot be re-encoded into a "different" one by flipping s (malleability), and duplicate
detection by content stays sound.
"""

from __future__ import annotations

import functools

import coincurve

from chain_node.trie import keccak as _keccak  # the C keccak (safe-pysha3), not eth_hash's pycryptodome

ADDRESS_LENGTH = 20
SIGNATURE_LENGTH = 65
DIGEST_LENGTH = 32

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2

COMMIT_SEAL_DOMAIN = b"jianzheng commit seal"


def keccak(data: bytes) -> bytes:
    """Keccak-256 (the Ethereum hash, not SHA3-256)."""
    return bytes(_keccak(data))


def address_of_public_key(public_key: coincurve.PublicKey) -> bytes:
    """Ethereum address: the last 20 bytes of keccak(uncompressed public key without its 0x04 prefix)."""
    return keccak(public_key.format(compressed=False)[1:])[12:]


def address_of(private_key: bytes) -> bytes:
    """The address that `sign(private_key, ...)` signatures recover to."""
    return address_of_public_key(coincurve.PrivateKey(private_key).public_key)


def sign(private_key: bytes, digest: bytes) -> bytes:
    """Sign a 32-byte digest: 65 bytes r||s||v (v in {0, 1}), deterministic (RFC 6979) and low-s.

    Determinism matters: a validator that restarts and re-sends a message it had already signed produces the
    very same bytes, so peers see a duplicate, not an equivocation.
    """
    if len(digest) != DIGEST_LENGTH:
        raise ValueError(f"digest must be {DIGEST_LENGTH} bytes, got {len(digest)}")
    return bytes(coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None))


def recover(digest: bytes, signature: bytes) -> bytes | None:
    """The address that signed `digest`, or None if the signature is malformed, high-s or unrecoverable.

    Returns None rather than raising: callers treat every bad signature the same way (drop and count).
    Memoised because every validator of a simulated network, and a node re-checking justifications, recovers
    the same signatures many times; the function is pure, so the cache cannot change a result.
    """
    if len(digest) != DIGEST_LENGTH or len(signature) != SIGNATURE_LENGTH:
        return None
    return _recover_cached(bytes(digest), bytes(signature))


@functools.lru_cache(maxsize=32768)
def _recover_cached(digest: bytes, signature: bytes) -> bytes | None:
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (0, 1) or not 0 < r < _SECP256K1_N or not 0 < s <= _HALF_N:
        return None
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception:  # coincurve raises plain Exception subclasses for unrecoverable signatures
        return None
    return address_of_public_key(public_key)


def commit_seal_digest(digest: bytes) -> bytes:
    """What a validator signs to seal a block: keccak(b"jianzheng commit seal" + block digest).

    The domain prefix keeps a commit seal from ever being a valid signature of a consensus message (and
    vice versa); anyone holding the validator set can check a seal without the consensus messages.
    """
    if len(digest) != DIGEST_LENGTH:
        raise ValueError(f"digest must be {DIGEST_LENGTH} bytes, got {len(digest)}")
    return keccak(COMMIT_SEAL_DOMAIN + digest)
