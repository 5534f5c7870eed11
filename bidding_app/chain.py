"""The app's link to the consortium chain: the deployment it writes to and its members' signers.

Signers are made from the organisations' encrypted keys on demand and kept for the process, so that
their keys are decrypted once. Without an RPC URL the platform still serves pages; chain writes wait
in the outbox and chain time falls back to the system clock (development only).
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

    def now(self) -> int:
        """Chain time (the latest block's timestamp): the clock the contracts' deadlines use.

        Asked on every deadline check, so it is one plain JSON-RPC call on a kept-alive connection
        rather than a trip through web3's middleware.
        """
        if self.chain is None:
            return int(time.time())
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
    gateway = ChainGateway(chain, deployment, kek)
    app.extensions["jianzheng_chain"] = gateway
    return gateway


def gateway() -> ChainGateway:
    found: ChainGateway = current_app.extensions["jianzheng_chain"]
    return found
