"""The app's link to the consortium chain: the deployment it writes to and its members' signers.

Signers are made from the organisations' encrypted keys on demand and kept for the process, so that
their keys are decrypted once. Without an RPC URL the platform still serves pages; chain writes wait
in the outbox and chain time falls back to the system clock (development only).

For the bid upload's deadline check (`now_for_deadline`) chain time is kept for at most
`CHAIN_TIME_MAX_AGE` seconds (0: asked every time; `run_platform.py` serves with 0.5): under load every
upload of a busy second would otherwise ask the node the same question. The age is counted from before
the question was sent, so the check sees a new block at most that long after the node had it. A kept
time is an *earlier* time, and it is only used to accept (a refusal asks the node again), so the
platform is never stricter than the contract: a bid it takes within that window after the deadline is
refused by the contract, and the outbox records the refusal on the bid (status `failed`, or the
committed bid stands for a refused replacement). Every other check asks the node (`now`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import Flask, current_app

from bidding_app.errors import ChainUnavailable
from bidding_app.keys import decrypt_key
from bidding_app.models import Organisation
from contracts.client import Chain, Deployment, Signer

LATEST_BLOCK = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]})


@dataclass
class ChainGateway:
    chain: Chain | None
    deployment: Deployment | None
    kek: bytes
    _signers: dict[str, Signer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: requests.Session = field(default_factory=requests.Session)
    time_max_age: float = 0.0
    _time: tuple[float, int] | None = None  # (monotonic clock before asking, chain time answered)
    _time_lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> int:
        """Chain time (the latest block's timestamp): the clock the contracts' deadlines use, asked now."""
        if self.chain is None:
            return int(time.time())
        return self._ask_time()

    def now_for_deadline(self, deadline: int) -> int:
        """Chain time for checking that something happens before `deadline`, kept for `time_max_age` s.

        The kept time is used only to *accept*: if it is at or past the deadline, the node is asked
        again, so a refusal is always on fresh chain time (see the module's docstring for the bound).
        When the kept time is too old, one caller asks the node while the others wait for its answer.
        """
        if self.chain is None or self.time_max_age <= 0:
            return self.now()
        kept = self._time
        if kept is None or time.monotonic() - kept[0] >= self.time_max_age:
            with self._time_lock:
                kept = self._time
                if kept is None or time.monotonic() - kept[0] >= self.time_max_age:
                    asked = time.monotonic()
                    kept = (asked, self._ask_time())
                    self._time = kept
        if kept[1] < deadline:
            return kept[1]
        asked = time.monotonic()
        fresh = self._ask_time()
        self._time = (asked, fresh)
        return fresh

    def _ask_time(self) -> int:
        """One plain JSON-RPC call on a kept-alive connection rather than a trip through web3's middleware."""
        assert self.chain is not None
        try:
            answer = self._http.post(self.chain.rpc_url, data=LATEST_BLOCK, timeout=self.chain.timeout,
                                     headers={"Content-Type": "application/json"}).json()
            return int(answer["result"]["timestamp"], 16)
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise ChainUnavailable() from error

    def signer_for(self, organisation: Organisation) -> Signer:
        if organisation.encrypted_key is None:
            raise LookupError(f"organisation {organisation.identifier} has no chain key")
        with self._lock:
            signer = self._signers.get(organisation.identifier)
            if signer is None:
                key = decrypt_key(self.kek, organisation.identifier, organisation.encrypted_key)
                signer = Signer.from_key(key)
                self._signers[organisation.identifier] = signer
            return signer

    def require(self) -> tuple[Chain, Deployment]:
        if self.chain is None or self.deployment is None:
            raise RuntimeError("no chain configured (RPC_URL and DEPLOYMENT)")
        return self.chain, self.deployment


def _manifest(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    loaded: dict[str, Any] = json.loads(Path(str(value)).read_text(encoding="utf-8"))
    return loaded


def init_chain(app: Flask, kek: bytes) -> ChainGateway:
    rpc_url = app.config.get("RPC_URL")
    deployment_source = app.config.get("DEPLOYMENT")
    chain = deployment = None
    if rpc_url and deployment_source:
        chain = Chain(str(rpc_url), timeout=float(app.config["CHAIN_TIMEOUT"]))
        deployment = Deployment.from_manifest(chain, _manifest(deployment_source))
    gateway = ChainGateway(chain, deployment, kek, time_max_age=float(app.config["CHAIN_TIME_MAX_AGE"]))
    app.extensions["jianzheng_chain"] = gateway
    return gateway


def gateway() -> ChainGateway:
    found: ChainGateway = current_app.extensions["jianzheng_chain"]
    return found
