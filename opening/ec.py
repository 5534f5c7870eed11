"""NIST P-256 group arithmetic through the system's OpenSSL libcrypto.

Why OpenSSL through ctypes: the opening needs full points (not only ECDH's x-coordinate) for
decryption shares, proofs and Lagrange combination, and the fastest P-256 code at hand is OpenSSL's
(constant-time `nistz256`). Measured on this machine per variable-base multiplication: pycryptodome
1.14 ms, fastecdsa 0.44 ms, OpenSSL 0.05 ms. `libcrypto.so.3` comes with Debian's `libssl3`, which
Python itself depends on, so no new package is needed.

Points are immutable values; scalars are Python ints reduced modulo the group order `ORDER`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
FIELD = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF

_NID_P256 = 415  # NID_X9_62_prime256v1
_COMPRESSED = 2
_UNCOMPRESSED = 4


class InvalidPoint(ValueError):
    """Bytes that are not the encoding of a point of P-256 other than the point at infinity."""


def _load() -> Any:
    name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError as error:
        raise ImportError(f"OpenSSL's libcrypto is needed for P-256 (Debian package libssl3): {error}") from error
    vp, sz, ci = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "EC_GROUP_new_by_curve_name": (vp, [ci]),
        "EC_GROUP_get0_generator": (vp, [vp]),
        "EC_POINT_new": (vp, [vp]),
        "EC_POINT_free": (None, [vp]),
        "EC_POINT_oct2point": (ci, [vp, vp, ctypes.c_char_p, sz, vp]),
        "EC_POINT_point2oct": (sz, [vp, vp, ci, ctypes.c_char_p, sz, vp]),
        "EC_POINT_mul": (ci, [vp, vp, vp, vp, vp, vp]),
        "EC_POINT_add": (ci, [vp, vp, vp, vp, vp]),
        "EC_POINT_invert": (ci, [vp, vp, vp]),
        "EC_POINT_copy": (ci, [vp, vp]),
        "EC_POINT_is_at_infinity": (ci, [vp, vp]),
        "EC_POINT_cmp": (ci, [vp, vp, vp, vp]),
        "BN_CTX_new": (vp, []),
        "BN_bin2bn": (vp, [ctypes.c_char_p, ci, vp]),
        "BN_clear_free": (None, [vp]),
    }
    for function, (restype, argtypes) in signatures.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    return lib


_lib = _load()
_group = _lib.EC_GROUP_new_by_curve_name(_NID_P256)
if not _group:
    raise ImportError("OpenSSL has no P-256 group")
_local = threading.local()


def _ctx() -> Any:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _lib.BN_CTX_new()
        _local.ctx = ctx
    return ctx


class _Scalar:
    """A BIGNUM holding a scalar for the duration of one call; cleared when freed (scalars may be secret)."""

    def __init__(self, value: int):
        raw = (value % ORDER).to_bytes(32, "big")
        self.ptr = _lib.BN_bin2bn(raw, 32, None)
        if not self.ptr:
            raise MemoryError("BN_bin2bn")

    def __enter__(self) -> Any:
        return self.ptr

    def __exit__(self, *_: object) -> None:
        _lib.BN_clear_free(self.ptr)


class Point:
    """A point of P-256, owned by this object (freed with it)."""

    __slots__ = ("_ptr",)

    def __init__(self, ptr: Any):
        if not ptr:
            raise MemoryError("EC_POINT_new")
        self._ptr = ptr

    def __del__(self) -> None:
        if getattr(self, "_ptr", None):
            _lib.EC_POINT_free(self._ptr)
            self._ptr = None

    # ---------------------------------------------------------------- encoding

    @classmethod
    def decode(cls, data: bytes) -> Point:
        """A point from its SEC1 encoding (compressed or uncompressed); InvalidPoint otherwise.

        OpenSSL checks that the point is on the curve; the point at infinity is refused because no
        honest key, share or commitment is ever that point.
        """
        if len(data) not in (33, 65) or data[0] not in (2, 3, 4) or (len(data) == 65) != (data[0] == 4):
            raise InvalidPoint(f"not a P-256 point encoding ({len(data)} bytes)")
        point = cls(_lib.EC_POINT_new(_group))
        if _lib.EC_POINT_oct2point(_group, point._ptr, data, len(data), _ctx()) != 1:
            raise InvalidPoint("not a point of P-256")
        if _lib.EC_POINT_is_at_infinity(_group, point._ptr):
            raise InvalidPoint("the point at infinity")
        return point

    def encode(self, *, compressed: bool = True) -> bytes:
        """SEC1 encoding: 33 bytes compressed (the default) or 65 bytes uncompressed."""
        if self.is_infinity():
            raise InvalidPoint("the point at infinity has no encoding here")
        size = 33 if compressed else 65
        buffer = ctypes.create_string_buffer(size)
        form = _COMPRESSED if compressed else _UNCOMPRESSED
        written = _lib.EC_POINT_point2oct(_group, self._ptr, form, buffer, size, _ctx())
        if written != size:
            raise InvalidPoint("EC_POINT_point2oct failed")
        return buffer.raw

    def x_bytes(self) -> bytes:
        """The 32-byte x-coordinate: what ECDH (and WebCrypto's deriveBits) yields as shared secret."""
        return self.encode(compressed=False)[1:33]

    # ---------------------------------------------------------------- arithmetic

    def __add__(self, other: Point) -> Point:
        result = Point(_lib.EC_POINT_new(_group))
        if _lib.EC_POINT_add(_group, result._ptr, self._ptr, other._ptr, _ctx()) != 1:
            raise ArithmeticError("EC_POINT_add")
        return result

    def __neg__(self) -> Point:
        result = Point(_lib.EC_POINT_new(_group))
        _lib.EC_POINT_copy(result._ptr, self._ptr)
        if _lib.EC_POINT_invert(_group, result._ptr, _ctx()) != 1:
            raise ArithmeticError("EC_POINT_invert")
        return result

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def __mul__(self, scalar: int) -> Point:
        result = Point(_lib.EC_POINT_new(_group))
        with _Scalar(scalar) as bn:
            if _lib.EC_POINT_mul(_group, result._ptr, None, self._ptr, bn, _ctx()) != 1:
                raise ArithmeticError("EC_POINT_mul")
        return result

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        return bool(_lib.EC_POINT_cmp(_group, self._ptr, other._ptr, _ctx()) == 0)

    def __hash__(self) -> int:
        return hash(self.encode())

    def __repr__(self) -> str:
        return "Point(infinity)" if self.is_infinity() else f"Point({self.encode().hex()})"

    def is_infinity(self) -> bool:
        return bool(_lib.EC_POINT_is_at_infinity(_group, self._ptr))


def base_mul(scalar: int) -> Point:
    """scalar·G, with OpenSSL's precomputed generator tables."""
    result = Point(_lib.EC_POINT_new(_group))
    with _Scalar(scalar) as bn:
        if _lib.EC_POINT_mul(_group, result._ptr, bn, None, None, _ctx()) != 1:
            raise ArithmeticError("EC_POINT_mul")
    return result


def base_mul_add(scalar: int, point: Point, point_scalar: int) -> Point:
    """scalar·G + point_scalar·point in one call (what a Schnorr-style verification needs)."""
    result = Point(_lib.EC_POINT_new(_group))
    with _Scalar(scalar) as g_bn, _Scalar(point_scalar) as p_bn:
        if _lib.EC_POINT_mul(_group, result._ptr, g_bn, point._ptr, p_bn, _ctx()) != 1:
            raise ArithmeticError("EC_POINT_mul")
    return result


def generator() -> Point:
    return base_mul(1)


def scalar_from_bytes(data: bytes) -> int:
    """A scalar from a hash output: big-endian, reduced modulo the order (bias < 2^-128)."""
    return int.from_bytes(data, "big") % ORDER


def lagrange_at_zero(index: int, indices: list[int]) -> int:
    """The Lagrange coefficient of share `index` to interpolate the polynomial at 0 from `indices`."""
    numerator, denominator = 1, 1
    for other in indices:
        if other == index:
            continue
        numerator = numerator * other % ORDER
        denominator = denominator * (other - index) % ORDER
    return numerator * pow(denominator, -1, ORDER) % ORDER


def commitment_at(commitments: list[bytes] | tuple[bytes, ...], index: int) -> Point:
    """Σ_t index^t · C_t: a Feldman commitment to a polynomial, evaluated in the exponent at `index`."""
    total = Point.decode(commitments[0])
    power = 1
    for commitment in commitments[1:]:
        power = power * index % ORDER
        total = total + Point.decode(commitment) * power
    return total
