"""`make demo`: one whole tender on the local platform, through the platform's own HTTP API.

Starts a fresh local consortium chain (4 chain_node validators), deploys the contracts, starts the
platform (as `make run` does, on free ports under build/demo/), and then plays every party with its
own account: the agency publishes; the witnesses generate the opening key with their own software;
five bidders get guarantees and seal their bids; the deadline passes (the development chain's clock is
moved forward); the witnesses release their decryption shares; the bids open (唱标); the record is
anchored and attested; the agency awards; the guarantees are released and one is claimed. Each step
prints its on-chain evidence (transaction, block). `--keep` leaves everything running to look around.

    python scripts/demo.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run_local import deploy_consortium, start_chain, start_platform

from chain_node.network import rpc_call
from contracts.client import Chain, Deployment, Signer
from contracts.deploy import load_config
from contracts.records import ClaimGround, Role
from contracts.toolchain import PROJECT_ROOT, compile_all
from opening import dkg
from opening.envelope import commitment_of, seal_bid
from opening.shares import ShareBatch
from opening.witness import AccessRequest, WitnessShare, release_shares

CONSORTIUM = PROJECT_ROOT / "scripts" / "consortium.dev.json"
PASSWORD = os.environ.get("JIANZHENG_DEV_PASSWORD", "jianzheng-dev")


class DemoFailed(Exception):
    """A step did not give what the platform promises; the message says which and what came back."""


@dataclass
class Party:
    """One organisation's API session (its own bearer token)."""

    name: str
    identifier: str
    organisation_id: int
    address: str
    session: requests.Session
    base: str

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        answer = self.session.request(method, self.base + path, timeout=60, **kwargs)
        if answer.status_code not in expect:
            raise DemoFailed(f"{self.name}: {method} {path} → {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.headers.get("Content-Type", "").startswith("application/json") else answer


@dataclass
class Demo:
    base: str
    rpc_urls: list[str]
    manifest: dict[str, Any]
    parties: dict[str, Party] = field(default_factory=dict)
    step_number: int = 0

    def step(self, title: str) -> None:
        self.step_number += 1
        print(f"\n[{self.step_number}] {title}", flush=True)

    def say(self, text: str) -> None:
        print(f"    {text}", flush=True)

    def evidence(self, what: str, tx: str | None, block: int | None = None) -> None:
        where = f"，区块 {block}" if block is not None else ""
        self.say(f"{what}：交易 {tx}{where}（证明：{self.base}/witness/proofs/{tx}）")

    def wait(self, what: str, probe: Callable[[], Any], timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out waiting for {what}")
            time.sleep(0.1)  # a read of the platform's own database: cheap next to a block's latency

    def chain_now(self) -> int:
        block = rpc_call(self.rpc_urls[0], "eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    def advance_chain_time_to(self, timestamp: int) -> None:
        """The development network's clock moves forward on every validator (`jz_devIncreaseTime`)."""
        gap = timestamp - self.chain_now()
        if gap > 0:
            for url in self.rpc_urls:
                rpc_call(url, "jz_devIncreaseTime", [hex(gap)])
        self.wait("the deadline in chain time", lambda: self.chain_now() >= timestamp)


def log_in(base: str, identifier: str, name: str) -> Party:
    session = requests.Session()
    answer = session.post(base + "/api/v1/token", json={"username": identifier, "password": PASSWORD}, timeout=30)
    if answer.status_code != 201:
        raise DemoFailed(f"log in as {name}: {answer.status_code} {answer.text[:300]}")
    session.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    me = session.get(base + "/api/v1/me", timeout=30).json()
    return Party(name, identifier, int(me["organisation"]["id"]), str(me["organisation"]["address"]), session, base)


def run_scenario(demo: Demo) -> None:
    config = load_config(CONSORTIUM)

    def parties(role: Role, count: int) -> list[Party]:
        return [log_in(demo.base, m.identifier, m.name) for m in config.with_role(role)[:count]]

    (agency,), (tenderer,) = parties(Role.AGENCY, 1), parties(Role.TENDERER, 1)
    witnesses, bidders = parties(Role.WITNESS, 3), parties(Role.BIDDER, 5)

    demo.step("招标代理机构发布招标项目（一个标段，开标密钥由三家见证机构分布式生成）")
    opening_time = demo.chain_now() + 900
    tender = agency.call("POST", "/api/v1/tenders", json={
        "title": "滨海大道综合改造工程施工招标", "description": "道路、排水与照明改造，工期 240 日历天。",
        "tenderer_id": tenderer.organisation_id, "submission_key": uuid.uuid4().hex,
        "sections": [{
            "title": "第一标段：道路与排水", "opening_time": opening_time, "bid_bond": 50_000_000,
            "bid_validity_days": 90, "min_valid_bids": 3, "witness_ids": [w.organisation_id for w in witnesses],
            "witness_quorum": 2, "opening_key": "",
        }],
    })
    section_id = tender["sections"][0]["id"]
    tender_path = f"/api/v1/tenders/{tender['id']}"
    published = demo.wait("the tender on chain", lambda: _confirmed(agency.call("GET", tender_path)))
    demo.say(f"项目编号 {published['number']}，标段 {published['sections'][0]['chain_id']}")
    demo.evidence("招标项目上链", published["chain_tx"], published["chain_block"])

    demo.step("见证机构用各自的见证软件生成开标密钥（任何一方都不持有完整私钥）")
    shares = key_ceremony(demo, witnesses, section_id)

    demo.step("五家投标人报名，并向担保机构申请电子投标保函（密文保函：担保机构只看到密封的项目引用）")
    guarantors = parties(Role.GUARANTOR, 2)
    letters: dict[str, dict[str, Any]] = {}
    # Every bidder's guarantee is issued first and waited for afterwards: the platform's outbox sends them
    # together, so the chain takes them in one or two blocks instead of one block after the other.
    issuing: list[tuple[Party, Party, str, dict[str, Any]]] = []
    for number, bidder in enumerate(bidders):
        bidder.call("POST", f"/api/v1/sections/{section_id}/registration")
        guarantor = guarantors[number % len(guarantors)]
        application = bidder.call("POST", f"/api/v1/sections/{section_id}/guarantees", json={
            "guarantor_id": guarantor.organisation_id, "amount": 50_000_000, "validity_days": 120,
            "submission_key": uuid.uuid4().hex})
        path = f"/api/v1/guarantees/{application['id']}"
        seen = guarantor.call("GET", path)
        guarantor.call("POST", path + "/underwrite", json={"approve": True, "reason": "资信良好，自动规则通过"})
        guarantor.call("POST", path + "/premium", json={"paid_fen": seen["premium_due"],
                                                        "payer_account": f"6222-0{number}-8888-{number}{number}",
                                                        "payment_ref": f"BF-{uuid.uuid4().hex[:10]}"})
        guarantor.call("POST", path + "/issue", json={})
        issuing.append((bidder, guarantor, path, seen))
    for bidder, guarantor, path, seen in issuing:
        issued = demo.wait("the guarantee on chain", _poll(guarantor, path, _issued))
        mine = bidder.call("GET", path)
        letters[bidder.name] = mine | {"guarantor": guarantor}
        demo.say(f"{bidder.name}：报名；保函 {mine['number']}（{guarantor.name}，担保机构所见项目引用 "
                 f"{seen['section_ref'][:18]}…）")
        demo.evidence("  保函上链", issued["letter"]["tx_hash"], issued["letter"]["block"])
    pdf = bidders[0].call("GET", f"/api/v1/guarantees/{letters[bidders[0].name]['id']}/letter").content
    verdict = requests.post(demo.base + "/api/guarantees/verify", files={"file": ("letter.pdf", pdf)}, timeout=30)
    demo.say(f"任何人核验 {bidders[0].name} 的保函 PDF：{verdict.json().get('verdict')}")

    demo.step("投标人在本地加密投标文件后上传（平台从不持有明文）；承诺值上链")
    section = agency.call("GET", tender_path)["sections"][0]
    opening_key = bytes.fromhex(section["opening_key"][2:])
    prices = [8_765_000_00, 8_512_300_00, 8_930_000_00, 8_640_500_00, 8_400_000_00]
    uploaded: list[tuple[Party, int]] = []  # as with the guarantees: all uploaded, then waited for
    for number, bidder in enumerate(bidders):
        announced = {"price_fen": prices[number], "duration_days": 240 - number * 5, "quality": "合格"}
        key = opening_key
        if number == 4:  # this bidder's software seals to a wrong key: its own fault (art. 31), a claim ground
            key = dkg.key_dealt_in_one_place(2, len(witnesses)).encode()  # nobody here holds its shares
        envelope = seal_bid(bytes.fromhex(section["chain_id"][2:]), key, bidder.address, announced,
                            f"{bidder.name} 投标文件（技术标与商务标）".encode() * 200, "投标文件.pdf")
        letter = letters[bidder.name]
        bid = bidder.call("PUT", f"/api/v1/sections/{section_id}/bid", data=envelope, headers={
            "Content-Type": "application/octet-stream", "X-Commitment": "0x" + commitment_of(envelope).hex(),
            "X-Submission-Key": uuid.uuid4().hex, "X-Cover-Kind": "guarantee", "X-Cover-Ref": letter["number"],
            "X-Guarantee-Salt": letter["salt"]})
        uploaded.append((bidder, bid["id"]))
    for number, (bidder, bid_id) in enumerate(uploaded):
        committed = demo.wait("the bid's commitment", _poll(bidder, f"/api/v1/bids/{bid_id}", _committed))
        demo.say(f"{bidder.name}：报价 {prices[number] / 100:,.2f} 元，承诺值 {committed['commitment'][:18]}…")
        demo.evidence("  承诺值上链", committed["chain_tx"], committed["chain_block"])

    demo.step("投标截止（开发链时钟前移到开标时间）：开标大厅自动开始，投标保证金的密文随之揭示")
    stream = HallStream(demo, bidders[0], section_id)
    stream.start()
    demo.advance_chain_time_to(opening_time)
    state = demo.wait("the hall to start", lambda: _at_least(
        agency.call("GET", f"/api/v1/sections/{section_id}/hall"), "started"))
    demo.say(f"开标大厅 {demo.base}/sections/{section_id}/hall：{state['stage']}")

    demo.step("见证机构各自下载密封投标文件，在本机计算解密份额并上传（平台不持有任何份额）")
    deployment = Deployment.from_manifest(Chain(demo.rpc_urls[0]), demo.manifest)
    signers = {m.identifier: m.signer for m in config.with_role(Role.WITNESS)}
    for index in sorted(shares)[:2]:  # the quorum (2 of 3) is enough; the third keeps its share to itself
        witness, secret = shares[index]
        share = WitnessShare(bytes.fromhex(section["chain_id"][2:]), index, secret, opening_key)
        batch = witness_batch(witness, signers[witness.identifier], deployment, share, section_id)
        answer = witness.call("POST", f"/api/v1/sections/{section_id}/share-batches", data=batch.canonical(),
                              headers={"Content-Type": "application/json"})
        demo.say(f"{witness.name}（见证人 {index}）：{len(batch.shares)} 个解密份额，批次 {answer['digest'][:18]}…")
    closed = demo.wait("the opening record on chain", lambda: _at_least(
        agency.call("GET", f"/api/v1/sections/{section_id}/hall"), "closed"), timeout=180)
    stream.finish(timeout=30)
    result = "有效" if closed["result"] == "opened" else "流标"
    demo.say(f"开标结果：{result}；开标记录哈希 {closed['record_hash'][:18]}…")
    demo.evidence("开标记录上链", closed["close_tx"], closed["close_block"])
    demo.say(f"开标记录 PDF：{demo.base}/sections/{section_id}/hall/record.pdf")

    demo.step("投标人在线确认开标记录；一家提出异议，招标代理机构答复")
    for bidder in bidders[:3]:
        bidder.call("POST", f"/api/v1/sections/{section_id}/responses",
                    json={"kind": "confirmation", "text": "确认开标记录无误"})
    objection = bidders[3].call("POST", f"/api/v1/sections/{section_id}/responses",
                                json={"kind": "objection", "text": "请核实第三标价的工期是否按招标文件要求填写"})
    numbered = demo.wait("the objection on chain", lambda: _response(
        agency.call("GET", f"/api/v1/sections/{section_id}/hall"), objection["id"], "number"))
    agency.call("POST", f"/api/v1/sections/{section_id}/responses/{objection['id']}/answer",
                json={"text": "经核实，工期填写符合招标文件第三章要求。"})
    answered = demo.wait("the answer on chain", lambda: _response(
        agency.call("GET", f"/api/v1/sections/{section_id}/hall"), objection["id"], "answer_tx"))
    demo.evidence(f"异议（第 {numbered['number']} 号）上链", numbered["tx"], numbered["block"])
    demo.evidence("答复上链", answered["answer_tx"], answered["answer_block"])

    demo.step("见证机构独立复核开标（由公开数据重算开标记录）并见证")
    for witness in witnesses[:2]:
        witness.call("POST", f"/api/v1/sections/{section_id}/attestation", json={})
    attested = demo.wait("the witnesses' attestations", lambda: _attested(
        agency.call("GET", f"/api/v1/sections/{section_id}/hall"), 2), timeout=120)
    for row in attested:
        demo.evidence(f"{row['witness']} 见证", row["tx"], row["block"])

    demo.step("定标：招标代理机构选定中标人，招标人登记合同签订")
    opened = [b for b in closed["bids"] if b["outcome"] == "opened"]
    best = min(opened, key=lambda b: b["announced"]["price_fen"])
    winner = next(b for b in bidders if b.address.lower() == best["address"])
    agency.call("POST", f"/api/v1/sections/{section_id}/award",
                json={"winner_id": winner.organisation_id, "summary": "经评标委员会评审，综合得分第一。"})
    awarded = demo.wait("the award on chain", lambda: _status(
        agency.call("GET", f"/api/v1/sections/{section_id}/award"), "awarded"))
    demo.say(f"中标人：{winner.name}（报价 {best['announced']['price_fen'] / 100:,.2f} 元）")
    demo.evidence("定标上链", awarded["chain_tx"], awarded["chain_block"])
    tenderer.call("POST", f"/api/v1/sections/{section_id}/contract",
                  json={"outcome": "signed", "note": "施工合同 HT-2026-0188 已签订"})
    signed = demo.wait("the contract on chain", lambda: _contract(
        tenderer.call("GET", f"/api/v1/sections/{section_id}/award")))
    demo.evidence("合同签订上链", signed["chain_tx"], signed["chain_block"])

    demo.step("保函：未中标人的保函解除，中标人的保函在签约后解除，解密失败（投标人原因）的保函被索赔")
    failed = [b for b in closed["bids"] if b["outcome"] != "opened"]
    claimants = {bidder.name for bidder in bidders if any(b["address"] == bidder.address.lower() for b in failed)}
    for bidder in bidders:  # every claim and release sent first, then each waited for
        letter = letters[bidder.name]
        path = f"/api/v1/guarantees/{letter['id']}"
        if bidder.name in claimants:
            tenderer.call("POST", path + "/claim", json={
                "ground": int(ClaimGround.BIDDER_CAUSED_DECRYPTION_FAILURE),
                "evidence": f"开标记录 {closed['record_hash']}：该投标文件因投标人原因无法解密"})
        else:
            letter["guarantor"].call("POST", path + "/release",
                                     json={"reason": "中标人已签约" if bidder is winner else "未中标"})
    for bidder in bidders:
        letter = letters[bidder.name]
        issuer: Party = letter["guarantor"]
        path = f"/api/v1/guarantees/{letter['id']}"
        if bidder.name in claimants:
            claimed = demo.wait("the claim on chain", _watch(tenderer, path, "claimed"))
            issuer.call("POST", path + "/payout", json={"paid_fen": letter["amount"],
                                                            "payment_ref": f"PF-{uuid.uuid4().hex[:10]}"})
            paid = demo.wait("the payout on chain", _watch(issuer, path, "paid_out"))
            demo.say(f"{bidder.name}：保函 {letter['number']} 被索赔并赔付 {letter['amount'] / 100:,.2f} 元")
            demo.evidence("  索赔上链", claimed["claim"]["tx_hash"])
            demo.evidence("  赔付上链", paid["claim"]["payout_tx"])
            continue
        demo.wait("the release on chain", _watch(issuer, path, "released"))
        demo.say(f"{bidder.name}：保函 {letter['number']} 已解除")

    demo.step("监管：保函释放的现金保证金与预警")
    report = parties(Role.REGULATOR, 1)[0].call("GET", "/api/v1/regulator/guarantees")
    demo.say(f"保函替代现金保证金：{report['cash_deposits_freed'] / 100:,.2f} 元；预警 {len(report['alerts'])} 条")


def _confirmed(tender: dict[str, Any]) -> dict[str, Any] | None:
    return tender if tender["chain_tx"] and all(s["chain_tx"] for s in tender["sections"]) else None


def key_ceremony(demo: Demo, witnesses: list[Party], section_id: int) -> dict[int, tuple[Party, int]]:
    """Each witness's own software: transport key, deal, check; returns witness index → (witness, its secret
    share), as each witness would keep it on its own machine."""
    path = f"/api/v1/sections/{section_id}/key-ceremony"
    transport: dict[str, tuple[int, int]] = {}
    for witness in witnesses:
        secret, public = dkg.new_transport_key()
        answer = witness.call("POST", path + "/transport-key", json={"public_key": public.hex()})
        index = next(w["index"] for w in answer["witnesses"] if w["organisation_id"] == witness.organisation_id)
        transport[witness.name] = (index, secret)
    state = witnesses[0].call("GET", path)
    params = dkg.DkgParams(bytes.fromhex(state["chain_id"][2:]), state["threshold"],
                           tuple(bytes.fromhex(state["transport_keys"][str(i)]) for i in range(1, len(witnesses) + 1)))
    for witness in witnesses:
        index, _ = transport[witness.name]
        witness.call("POST", path + "/deal", json={"deal": dkg.deal_to_json(dkg.deal(params, index))})
    deals = [dkg.deal_from_json(d) for d in witnesses[0].call("GET", path)["deals"]]
    for witness in witnesses:
        index, secret = transport[witness.name]
        complaints = dkg.receive(params, deals, index, secret)
        witness.call("POST", path + "/complaints", json={"complaints": [dkg.complaint_to_json(c) for c in complaints]})
        demo.say(f"{witness.name}（见证人 {index}）检查分发数据：{len(complaints)} 项投诉")
    state = demo.wait("the opening key on chain", lambda: _anchored(witnesses[0].call("GET", path)))
    outcome = dkg.finish(params, deals, [dkg.complaint_from_json(c) for c in state["complaints"]])
    demo.say(f"开标公钥 {state['opening_key'][:26]}…（{state['threshold']}/{len(witnesses)} 门限）")
    demo.evidence("开标公钥上链", state["chain_tx"], state["chain_block"])
    by_name = {w.name: w for w in witnesses}
    return {index: (by_name[name], dkg.secret_share(params, deals, outcome, index, secret))
            for name, (index, secret) in transport.items() if index in outcome.qualified}


def _anchored(state: dict[str, Any]) -> dict[str, Any] | None:
    if state["state"] == "failed":
        raise DemoFailed(f"key ceremony failed: {state['error']}")
    return state if state["state"] == "anchored" else None


def _issued(application: dict[str, Any]) -> dict[str, Any] | None:
    if application["state"] == "issue_failed":
        raise DemoFailed(f"the guarantee was refused on chain: {application['error_code']}")
    return application if application["state"] == "issued" and application.get("letter") else None


def _committed(bid: dict[str, Any]) -> dict[str, Any] | None:
    if bid["status"] == "failed":
        raise DemoFailed(f"the bid was refused on chain: {bid['error_code']}")
    return bid if bid["status"] == "committed" and bid["chain_tx"] else None


STAGES = ("waiting", "started", "opening", "closing", "closed")


def _at_least(state: dict[str, Any], stage: str) -> dict[str, Any] | None:
    if state["stage"] == "failed":
        raise DemoFailed(f"the opening failed: {state}")
    return state if STAGES.index(state["stage"]) >= STAGES.index(stage) else None


def _response(state: dict[str, Any], response_id: int, field: str) -> dict[str, Any] | None:
    found = next(r for r in state["responses"] if r["id"] == response_id)
    if "failed" in (found["status"], found["answer_status"]):
        raise DemoFailed(f"a response was refused on chain: {found}")
    return found if found.get(field) else None


def _attested(state: dict[str, Any], count: int) -> list[dict[str, Any]] | None:
    done = [a for a in state["attestations"] if a["status"] == "attested"]
    if any(a["status"] in ("failed", "mismatch") for a in state["attestations"]):
        raise DemoFailed(f"an attestation failed: {state['attestations']}")
    return done if len(done) >= count else None


def _status(award: dict[str, Any], status: str) -> dict[str, Any] | None:
    if award["status"] == "failed":
        raise DemoFailed(f"the award was refused on chain: {award['error_code']}")
    return award if award["status"] == status else None


def _contract(award: dict[str, Any]) -> dict[str, Any] | None:
    contract: dict[str, Any] = award["contract"]
    if contract["status"] == "failed":
        raise DemoFailed(f"the contract record was refused on chain: {contract['error_code']}")
    return contract if contract["status"] == "signed" else None


def _state(application: dict[str, Any], state: str) -> dict[str, Any] | None:
    if application.get("error_code"):
        raise DemoFailed(f"guarantee {application['number']}: {application['error_code']}")
    return application if application["state"] == state else None


def _poll(party: Party, path: str, check: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    """A probe for `Demo.wait`: `check` what `party` reads at `path` now."""
    return lambda: check(party.call("GET", path))


def _watch(party: Party, path: str, state: str) -> Callable[[], Any]:
    return _poll(party, path, lambda application: _state(application, state))


def witness_batch(witness: Party, signer: Signer, deployment: Deployment, share: WitnessShare,
                  section_id: int) -> ShareBatch:
    """The witness software: download the sealed bids, check the deadline and key against its own view of
    the chain, compute the shares with proofs (opening.witness.release_shares)."""
    listing = witness.call("GET", f"/api/v1/sections/{section_id}/envelopes")
    with tempfile.TemporaryDirectory(prefix="jz-witness-") as folder:
        envelopes = {}
        for entry in listing["envelopes"]:
            path = Path(folder) / f"{entry['bidder']}.jzb"
            path.write_bytes(witness.call("GET", entry["url"]).content)
            envelopes[entry["bidder"]] = path
        request = AccessRequest(share.section_id, signer.address, "decryption shares", int(time.time()))
        return release_shares(deployment.tenders, signer, share, envelopes, request)


class HallStream(threading.Thread):
    """A bidder following the opening hall live (server-sent events): prints each 唱标 as it comes.

    Like the hall page's EventSource it reconnects with its Last-Event-ID when the connection drops (a
    worker restarting, a read timeout), and it ends on the hall's `closed` event, after every 唱标."""

    def __init__(self, demo: Demo, viewer: Party, section_id: int) -> None:
        super().__init__(daemon=True)
        self.demo, self.viewer, self.section_id = demo, viewer, section_id
        self._halt = threading.Event()
        self._last_id = ""

    def run(self) -> None:
        url = f"{self.demo.base}/api/v1/sections/{self.section_id}/hall/events"
        while not self._halt.is_set():
            headers = {"Last-Event-ID": self._last_id} if self._last_id else {}
            try:
                # The read timeout is above the stream's 15 s keep-alive: a quiet hall is not a dead one.
                with self.viewer.session.get(url, stream=True, timeout=(10, 40), headers=headers) as answer:
                    if self._follow(answer):
                        return
            except requests.RequestException:
                time.sleep(0.5)

    def _follow(self, answer: requests.Response) -> bool:
        """Print the stream's 唱标; True once the hall has closed (or the demo stopped listening)."""
        kind = ""
        for raw in answer.iter_lines(decode_unicode=True):
            line = raw if isinstance(raw, str) else raw.decode()
            if self._halt.is_set():
                return True
            if line.startswith("id:"):
                self._last_id = line.split(":", 1)[1].strip()
            elif line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("announcement", "bid_failed"):
                self.show(kind, json.loads(line.split(":", 1)[1])["data"])
            elif line.startswith("data:") and kind == "closed":
                return True
        return False

    def show(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "announcement":
            fields = data["announced"]
            self.demo.say(f"唱标  {data['bidder']}：报价 {fields['price_fen'] / 100:,.2f} 元，工期 "
                          f"{fields['duration_days']} 日历天，质量 {fields['quality']}")
        else:
            self.demo.say(f"唱标  {data['bidder']}：{data['outcome_zh']}（{data['cause_zh']}）")

    def finish(self, timeout: float) -> None:
        """Wait for the stream to reach the hall's `closed` event (every 唱标 printed), then stop it."""
        self.join(timeout)
        self._halt.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the chain and the platform running afterwards")
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "build" / "demo",
                        help="the chain's and the platform's files (emptied first)")
    args = parser.parse_args(argv)
    compile_all()
    folder = args.folder
    local = start_chain("chain_node", 0, 4, folder / "chain")
    platform = None
    try:
        deployment = folder / "deployment.json"
        manifest = deploy_consortium(local.rpc_url, CONSORTIUM, deployment)
        platform, url = start_platform(local.rpc_url, deployment, CONSORTIUM, 0, folder=folder / "platform",
                                       announce=False, log=folder / "platform.log")
        base = url.rstrip("/")
        print(f"Jianzheng demo: platform {base}, chain {local.rpc_url} ({local.label})", flush=True)
        demo = Demo(base, local.rpc_urls, manifest)
        run_scenario(demo)
        print("\n演示完成：每一步都可在平台和链上核对。", flush=True)
        if args.keep:
            print(f"Still running: {base} (user: a member's 统一社会信用代码, password {PASSWORD}). Ctrl-C stops.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    except DemoFailed as failure:
        print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if platform is not None:
            platform.send_signal(signal.SIGINT)
            try:
                platform.wait(timeout=20)
            except Exception:
                platform.kill()
        local.stop()


if __name__ == "__main__":
    sys.exit(main())
