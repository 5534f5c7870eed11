"""Python exceptions named after the contracts' custom errors.

Every `error Foo(...)` in the Solidity sources becomes `contracts.errors.Foo`, a subclass of
`ContractRevert` whose `values` hold the error's arguments by name. They are built from the compiled
ABIs, so a new Solidity error needs no Python change:

    from contracts import errors
    with pytest.raises(errors.TenderRegistryBidAfterDeadline) as caught:
        ...
    caught.value.values["openingTime"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from contracts.toolchain import abi_signature, abi_type, load_artifacts

_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


class ContractRevert(Exception):
    """A transaction or call reverted. Subclasses carry the contract error's name."""

    error_name: str = "ContractRevert"

    def __init__(self, values: dict[str, Any] | None = None, data: bytes = b"") -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.data = data
        details = ", ".join(f"{key}={_show(value)}" for key, value in self.values.items())
        super().__init__(f"{self.error_name}({details})")


class PanicRevert(ContractRevert):
    """Solidity `Panic(uint256)`: an assertion, overflow or similar bug in a contract."""

    error_name = "Panic"


class MessageRevert(ContractRevert):
    """Solidity `Error(string)`: a revert with a plain message (none of ours use it)."""

    error_name = "Error"


class UnknownRevert(ContractRevert):
    """A revert whose data matches no known error, including an empty revert."""

    error_name = "UnknownRevert"


class TransactionFailed(Exception):
    """A transaction could not be sent or did not reach finality (node error, time-out)."""


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


@dataclass(frozen=True)
class _ErrorSpec:
    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]


_classes: dict[str, type[ContractRevert]] = {}
_by_selector: dict[bytes, _ErrorSpec] = {}


def register_abi(abi: list[dict[str, Any]]) -> None:
    """Make the errors of an ABI known, so that reverts carrying them can be decoded."""
    for item in abi:
        if item.get("type") != "error":
            continue
        types = tuple(abi_type(arg) for arg in item["inputs"])
        spec = _ErrorSpec(item["name"], tuple(arg["name"] for arg in item["inputs"]), types)
        selector = keccak(text=abi_signature(item))[:4]
        _by_selector[selector] = spec
        error_class(spec.name)


def _ensure_loaded() -> None:
    if not _by_selector:
        for artifact in load_artifacts().values():
            register_abi(artifact.abi)


def error_class(name: str) -> type[ContractRevert]:
    """The exception class for the contract error `name` (made on first use)."""
    existing = _classes.get(name)
    if existing is None:
        existing = type(name, (ContractRevert,), {"error_name": name, "__module__": __name__})
        _classes[name] = existing
    return existing


def decode_revert(data: bytes) -> ContractRevert:
    """Turn revert data into the matching exception instance."""
    _ensure_loaded()
    selector, payload = data[:4], data[4:]
    if selector == _PANIC_SELECTOR:
        (code,) = abi_decode(["uint256"], payload)
        return PanicRevert({"code": code}, data)
    if selector == _ERROR_STRING_SELECTOR:
        (message,) = abi_decode(["string"], payload)
        return MessageRevert({"message": message}, data)
    spec = _by_selector.get(selector)
    if spec is None:
        return UnknownRevert({"data": data}, data)
    try:
        decoded = abi_decode(list(spec.arg_types), payload)
    except Exception:  # malformed revert data from a foreign contract or node
        return UnknownRevert({"data": data}, data)
    values = {
        name: to_checksum_address(value) if typ == "address" else value
        for name, typ, value in zip(spec.arg_names, spec.arg_types, decoded, strict=True)
    }
    return error_class(spec.name)(values, data)


def __getattr__(name: str) -> type[ContractRevert]:
    _ensure_loaded()
    if name in _classes:
        return _classes[name]
    raise AttributeError(f"no contract error named {name!r}")
