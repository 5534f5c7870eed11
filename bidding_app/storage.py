"""Uploaded files onto disk: streamed, hashed on the way, refused past a size limit or when empty."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from bidding_app.errors import InvalidInput, TooLarge

CHUNK = 1024 * 1024
HEAD = 16


@dataclass(frozen=True)
class StoredFile:
    path: Path
    size: int
    sha256: str  # hex digits
    head: bytes  # the first bytes, for checking the content's type


def _blocking(call: Callable[[], None]) -> None:
    """Run blocking disk work; in a gevent worker on gevent's thread pool, so that the other requests
    of the process keep running while the disk works (fsync releases the GIL)."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("os"):
        import gevent

        gevent.get_hub().threadpool.apply(call)
    else:
        call()


def _flush_to_disk(path: Path) -> None:
    for target, flags, flush in ((path, os.O_RDONLY, os.fdatasync),
                                 (path.parent, os.O_RDONLY | os.O_DIRECTORY, os.fsync)):
        fd = os.open(target, flags)
        try:
            flush(fd)
        finally:
            os.close(fd)


def make_durable(path: Path) -> None:
    """Put the file's content and its name (in its folder) on disk, so that a power loss cannot keep a
    database row that points to it while dropping the file itself. Costs about 1-2 ms of disk time,
    spent in one trip to the thread pool."""
    _blocking(lambda: _flush_to_disk(path))


class Readable(Protocol):
    """Anything an upload is read from: a file, a form part's stream, a request body."""

    def read(self, size: int = -1, /) -> bytes: ...


class BodyReader:
    """A request body of known length, read straight from the server's input stream (`wsgi.input`).

    What werkzeug's stream wrapper adds costs a zeroed buffer and two more copies of every megabyte of a
    sealed envelope; this reads at most `length` bytes, as WSGI asks, and tells a body cut short (the
    client went away) from a complete one."""

    def __init__(self, source: IO[bytes], length: int) -> None:
        self._source = source
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        wanted = self._remaining if size < 0 else min(size, self._remaining)
        if wanted <= 0:
            return b""
        data = self._source.read(wanted)
        if not data:
            raise InvalidInput("上传中断：收到的数据少于请求声明的长度，请重新上传", field="envelope")
        self._remaining -= len(data)
        return data


def _create(path: Path) -> BinaryIO:
    """A new file, its folder made when missing (asked of the disk only then, not on every upload)."""
    try:
        return open(path, "xb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "xb")


def store_stream(stream: Readable, path: Path, max_bytes: int, *, label: str, field: str) -> StoredFile:
    """Copy `stream` into the new file `path`; on any failure (too large, empty, I/O) the file is gone."""
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        with _create(path) as out:
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
