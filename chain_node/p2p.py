"""Validator-to-validator transport: framed messages over TCP between the consortium's nodes.

Each node keeps one outgoing connection to every peer (for sending) and accepts incoming ones (for
receiving), so there is nothing to negotiate about who dials whom; a broken link is redialled with
backoff. Frames are `length (4 bytes) | kind (1 byte) | payload`. Nothing here is trusted: consensus
messages and transactions carry their own signatures, and synced blocks their commit seals.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chain_node.config import Peer

MAX_FRAME = 32 * 1024 * 1024
_HEADER = struct.Struct(">IB")
log = logging.getLogger("chain_node.p2p")


class Kind(enum.IntEnum):
    HELLO = 1
    CONSENSUS = 2
    TRANSACTIONS = 3
    SYNC_REQUEST = 4
    BLOCKS = 5
    STATUS = 6


@dataclass(frozen=True)
class Frame:
    kind: Kind
    payload: bytes


Handler = Callable[[bytes, Frame], Awaitable[None]]  # (peer address, frame)


def encode_frame(kind: Kind, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload) + 1, int(kind)) + payload


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    header = await reader.readexactly(_HEADER.size)
    length, kind = _HEADER.unpack(header)
    if length < 1 or length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes")
    payload = await reader.readexactly(length - 1)
    return Frame(Kind(kind), payload)


class PeerLink:
    """The outgoing side of one peer: a queue drained into a (re)dialled TCP connection."""

    def __init__(self, peer: Peer, hello: bytes, max_queue: int = 20_000) -> None:
        self.peer = peer
        self._hello = hello
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_queue)
        self.connected = False
        self.dropped = 0

    def send(self, kind: Kind, payload: bytes) -> None:
        """Queue a frame; when the peer is unreachable for long, old traffic is dropped, not hoarded."""
        frame = encode_frame(kind, payload)
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self.dropped += 1
        self._queue.put_nowait(frame)

    async def run(self) -> None:
        backoff = 0.05
        while True:
            try:
                _reader, writer = await asyncio.open_connection(self.peer.host, self.peer.port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            self.connected = True
            try:
                writer.write(encode_frame(Kind.HELLO, self._hello))
                while True:
                    frame = await self._queue.get()
                    chunks = [frame]
                    while not self._queue.empty() and len(chunks) < 512:
                        chunks.append(self._queue.get_nowait())
                    writer.write(b"".join(chunks))
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                self.connected = False
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            await asyncio.sleep(backoff)


class Network:
    """All links of one node, and its listener."""

    def __init__(self, own_address: bytes, genesis_hash: bytes, peers: tuple[Peer, ...], handler: Handler) -> None:
        self.own_address = own_address
        self.genesis_hash = genesis_hash
        hello = json.dumps({"address": own_address.hex(), "genesis": genesis_hash.hex()}).encode()
        self.links = {peer.address: PeerLink(peer, hello) for peer in peers if peer.address != own_address}
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.rejected_peers = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_FRAME)
        self._tasks = [asyncio.create_task(link.run()) for link in self.links.values()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()

    def broadcast(self, kind: Kind, payload: bytes) -> None:
        for link in self.links.values():
            link.send(kind, payload)

    def send(self, peer: bytes, kind: Kind, payload: bytes) -> None:
        link = self.links.get(peer)
        if link is not None:
            link.send(kind, payload)

    def connected_peers(self) -> list[bytes]:
        return [address for address, link in self.links.items() if link.connected]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await read_frame(reader)
            if first.kind != Kind.HELLO:
                raise ValueError("no hello")
            hello = json.loads(first.payload)
            if bytes.fromhex(hello["genesis"]) != self.genesis_hash:
                raise ValueError("peer of another network")
            peer = bytes.fromhex(hello["address"])
            while True:
                frame = await read_frame(reader)
                await self._handler(peer, frame)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except (ValueError, KeyError, TypeError) as error:
            self.rejected_peers += 1
            log.warning("dropping inbound connection: %s", error)
        finally:
            writer.close()
