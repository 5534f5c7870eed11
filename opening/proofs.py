"""Chaum–Pedersen proofs of equal discrete logarithms (DLEQ), made non-interactive by Fiat–Shamir.

A witness proves that its decryption share D = s·E uses the same secret s as its public share
Y = s·G, without revealing s; a DKG complainer proves the same of the key it reveals. The challenge
hashes a caller-given context (section id, witness index, bid commitment, ...) so a proof made for
one bid, section or witness never verifies for another.
"""

from __future__ import annotations

import hashlib
import os

from opening.ec import ORDER, Point, base_mul, base_mul_add, scalar_from_bytes

PROOF_SIZE = 64
_DOMAIN = b"jianzheng/dleq/v1"


def _challenge(context: bytes, public: Point, base: Point, result: Point, a: Point, b: Point) -> int:
    digest = hashlib.sha256(_DOMAIN)
    digest.update(len(context).to_bytes(2, "big") + context)
    for point in (public, base, result, a, b):
        digest.update(point.encode())
    return scalar_from_bytes(digest.digest())


def prove_dleq(secret: int, base: Point, context: bytes) -> tuple[Point, bytes]:
    """(secret·base, proof that log_G(secret·G) = log_base(secret·base)), as c ‖ z (64 bytes)."""
    public = base_mul(secret)
    result = base * secret
    # The nonce mixes the secret with fresh randomness: a weak random source alone cannot leak s.
    nonce_seed = hashlib.sha256(secret.to_bytes(32, "big") + context + base.encode() + os.urandom(32)).digest()
    nonce = scalar_from_bytes(nonce_seed) or 1
    challenge = _challenge(context, public, base, result, base_mul(nonce), base * nonce)
    response = (nonce + challenge * secret) % ORDER
    return result, challenge.to_bytes(32, "big") + response.to_bytes(32, "big")


def verify_dleq(public: Point, base: Point, result: Point, proof: bytes, context: bytes) -> bool:
    """Whether `proof` shows log_G(public) = log_base(result) in `context`."""
    if len(proof) != PROOF_SIZE:
        return False
    challenge, response = int.from_bytes(proof[:32], "big"), int.from_bytes(proof[32:], "big")
    if challenge >= ORDER or response >= ORDER:
        return False
    minus_c = (-challenge) % ORDER
    a = base_mul_add(response, public, minus_c)
    b = base * response + result * minus_c
    if a.is_infinity() or b.is_infinity():
        return False
    return _challenge(context, public, base, result, a, b) == challenge
