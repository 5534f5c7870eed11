"""Organisations' chain keys, encrypted at rest with AES-256-GCM under the platform's key-encryption key.

The stored blob is nonce (12 bytes) ‖ ciphertext+tag; the organisation's identifier is the associated
data, so a key copied onto another organisation's row does not decrypt.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bidding_app.config import file_secret


class KeyDecryptionFailed(Exception):
    """The stored key does not open under this key-encryption key (wrong key, or tampered row)."""


def load_kek(value: str | None, file: Path) -> bytes:
    """The key-encryption key: 64 hex digits from config/env, else a file (created once, mode 600)."""
    if value:
        kek = bytes.fromhex(value.removeprefix("0x"))
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (64 hex digits)")
        return kek
    return bytes.fromhex(file_secret(file, lambda: os.urandom(32).hex()))


def encrypt_key(kek: bytes, identifier: str, private_key: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, private_key, identifier.encode())


def decrypt_key(kek: bytes, identifier: str, blob: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(blob[:12], blob[12:], identifier.encode())
    except InvalidTag as error:
        raise KeyDecryptionFailed(identifier) from error
