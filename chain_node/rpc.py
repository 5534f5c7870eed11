"""JSON-RPC 2.0 framing for chain_node: parsing, batches, limits and the standard error codes.

Method implementations live in `chain_node.api`; this module only turns request bytes into calls and
results or errors into response bytes, so that malformed input of any shape gets a standard answer
(-32700 parse error, -32600 invalid request, -32601 unknown method, -32602 invalid params) and never
reaches the chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
EXECUTION_REVERTED = 3  # geth and anvil answer reverts with code 3 and the revert data in `data`
TRANSACTION_REJECTED = -32003
LIMIT_EXCEEDED = -32005
RESOURCE_NOT_FOUND = -32001

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH = 1000

_HEX = re.compile(r"^0x[0-9a-fA-F]*$")


class RpcError(Exception):
    """An error answered to the caller with a JSON-RPC code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


Method = Callable[[list[Any]], Any]


@dataclass(frozen=True)
class Dispatcher:
    """Maps method names to implementations taking the positional params list."""

    methods: dict[str, Method]

    def handle(self, body: bytes) -> bytes | None:
        """Answer one HTTP body: a single request or a batch. None for a batch of notifications only."""
        if len(body) > MAX_BODY_BYTES:
            return _encode(_error(None, LIMIT_EXCEEDED, f"request body over {MAX_BODY_BYTES} bytes"))
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            return _encode(_error(None, PARSE_ERROR, f"parse error: {error}"))
        if isinstance(request, list):
            if not request:
                return _encode(_error(None, INVALID_REQUEST, "empty batch"))
            if len(request) > MAX_BATCH:
                return _encode(_error(None, LIMIT_EXCEEDED, f"batch of {len(request)} requests; at most {MAX_BATCH}"))
            answers = [a for a in (self._one(item) for item in request) if a is not None]
            return _encode(answers) if answers else None
        answer = self._one(request)
        return _encode(answer) if answer is not None else None

    def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, "a request must be a JSON object")
        request_id = request.get("id")
        if request.get("jsonrpc") != "2.0":
            return _error(request_id, INVALID_REQUEST, 'jsonrpc must be "2.0"')
        method = request.get("method")
        if not isinstance(method, str):
            return _error(request_id, INVALID_REQUEST, "method must be a string")
        if request_id is not None and not isinstance(request_id, (str, int)):
            return _error(None, INVALID_REQUEST, "id must be a string, a number or null")
        params = request.get("params", [])
        if not isinstance(params, list):
            return _error(request_id, INVALID_PARAMS, "params must be an array")
        implementation = self.methods.get(method)
        if implementation is None:
            return _error(request_id, METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        try:
            result = implementation(params)
        except RpcError as error:
            return _error(request_id, error.code, error.message, error.data)
        except Exception as error:  # a bug must not take the node down; the caller is told
            return _error(request_id, INTERNAL_ERROR, f"internal error: {type(error).__name__}: {error}")
        if "id" not in request:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- parameter parsing


def param(params: list[Any], index: int, name: str, *, required: bool = True, default: Any = None) -> Any:
    if index < len(params) and params[index] is not None:
        return params[index]
    if required:
        raise invalid_params(f"missing value for required argument {index} ({name})")
    return default


def check_arity(params: list[Any], maximum: int) -> None:
    if len(params) > maximum:
        raise invalid_params(f"too many arguments, want at most {maximum}")


def quantity(value: Any, name: str) -> int:
    """A hex quantity ("0x1a"); plain non-negative integers are accepted too, as many clients send them."""
    if isinstance(value, bool):
        raise invalid_params(f"{name}: expected a hex quantity, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise invalid_params(f"{name}: negative quantity")
        return value
    if not isinstance(value, str) or not _HEX.match(value) or len(value) < 3:
        raise invalid_params(f"{name}: expected a hex quantity like 0x1a, got {value!r}"[:200])
    if len(value) > 66:
        raise invalid_params(f"{name}: quantity over 256 bits")
    return int(value, 16)


def data(value: Any, name: str, *, length: int | None = None, max_length: int = MAX_BODY_BYTES) -> bytes:
    if not isinstance(value, str) or not _HEX.match(value) or len(value) % 2:
        raise invalid_params(f"{name}: expected 0x-prefixed hex bytes, got {str(value)!r}"[:200])
    raw = bytes.fromhex(value[2:])
    if length is not None and len(raw) != length:
        raise invalid_params(f"{name}: expected {length} bytes, got {len(raw)}")
    if len(raw) > max_length:
        raise invalid_params(f"{name}: over {max_length} bytes")
    return raw


def address(value: Any, name: str) -> bytes:
    return data(value, name, length=20)


def hash32(value: Any, name: str) -> bytes:
    return data(value, name, length=32)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_params(f"{name}: expected true or false")
    return value
