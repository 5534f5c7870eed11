"""Uploaded files onto disk: streamed, hashed on the way, refused past a size limit or when empty."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bidding_app.errors import InvalidInput, TooLarge

CHUNK = 1024 * 1024
HEAD = 16


@dataclass(frozen=True)
class StoredFile:
    path: Path
    size: int
    sha256: str  # hex digits
    head: bytes  # the first bytes, for checking the content's type


def store_stream(stream: IO[bytes], path: Path, max_bytes: int, *, label: str, field: str) -> StoredFile:
    """Copy `stream` into the new file `path`; on any failure (too large, empty, I/O) the file is gone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        with open(path, "xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"{label}不能超过 {max_bytes // (1024 * 1024)} MB")
                if len(head) < HEAD:
                    head += chunk[: HEAD - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidInput(f"{label}是空的", field=field)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StoredFile(path, size, digest.hexdigest(), head)
