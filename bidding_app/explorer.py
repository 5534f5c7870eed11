"""What the witness portal reads from the consortium chain: blocks with their commit seals, a section's
on-chain history, and transactions' proof bundles.

Blocks and logs come through the standard JSON-RPC methods, so they work on any node; commit seals and
proofs need chain_node's own methods (`jz_getSeals`, `jz_getProof`). A node without them (anvil, the
development reference node) has no seals at all: the portal then says so (`SealsUnavailable`) instead
of showing blocks as if they were proven final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_canonical_address
from hexbytes import HexBytes

from bidding_app.chain import gateway
from bidding_app.errors import AppError, ChainUnavailable, InvalidInput, NotFound
from chain_node.blocks import Header, InvalidBlock
from chain_node.consensus import ValidatorSet, check_commit_seals
from chain_node.consensus.crypto import commit_seal_digest, recover
from chain_node.proofs import ProofFailed, decode_receipt
from contracts.client import Chain, Deployment, LoggedEvent
from contracts.errors import TransactionFailed
from contracts.records import SectionStatus

BLOCKS_PER_PAGE = 20
METHOD_NOT_FOUND = -32601
STATUS_LABELS = {
    SectionStatus.NONE: "未上链",
    SectionStatus.BIDDING: "投标中",
    SectionStatus.OPENED: "已开标",
    SectionStatus.FAILED_TENDER: "流标",
    SectionStatus.AWARDED: "已定标",
}


class SealsUnavailable(AppError):
    """The node answers no `jz_*` method: it keeps no commit seals, so nothing can be proven final."""

    code = "seals_unavailable"
    status = 501
    message = ("当前连接的区块链节点不提供提交签名与存证证明（jz_getSeals / jz_getProof），例如 anvil 开发节点："
               "区块的共识节点提交签名、存证证明的下载与校验在该节点上不可用")


class ChainReadFailed(AppError):
    code = "chain_read_failed"
    status = 502
    message = "读取区块链数据失败"


@dataclass(frozen=True)
class BlockSummary:
    number: int
    hash: str
    timestamp: int
    tx_count: int
    proposer: str


@dataclass(frozen=True)
class TransactionSummary:
    hash: str
    sender: str
    to: str
    index: int


@dataclass(frozen=True)
class SealView:
    """One commit seal: who claims to have signed, whom the signature recovers to, and whether it counts."""

    validator: str
    signature: str
    recovered: str
    in_set: bool

    @property
    def valid(self) -> bool:
        return self.in_set and self.recovered.lower() == self.validator.lower()


@dataclass(frozen=True)
class SealReport:
    """A block's commit seals checked against the validator set in force at that block."""

    seals: tuple[SealView, ...]
    validators: tuple[str, ...]
    quorum: int
    header_matches: bool  # the header the node sent hashes to the block hash
    final: bool
    failure: str  # why the seals do not prove the block final ("" when they do)


@dataclass(frozen=True)
class BlockDetail:
    summary: BlockSummary
    parent_hash: str
    receipts_root: str
    transactions: tuple[TransactionSummary, ...]
    seal_report: SealReport | None  # None: the genesis block, which no one seals


@dataclass(frozen=True)
class HistoryItem:
    """One event of a section's on-chain history, in chain order."""

    contract: str
    name: str
    args: tuple[tuple[str, str], ...]
    tx_hash: str
    block_number: int
    log_index: int


def chain_link() -> tuple[Chain, Deployment]:
    """The app's configured chain, or a clear 503 when the platform runs without one."""
    found = gateway()
    if found.chain is None or found.deployment is None:
        raise ChainUnavailable("平台未连接区块链节点，无法浏览链上数据")
    return found.chain, found.deployment


def _call(chain: Chain, method: str, params: list[Any]) -> Any:
    """One raw JSON-RPC call; a node that does not know a `jz_` method means it keeps no seals."""
    try:
        (answer,) = chain.rpc_batch([(method, params)])
    except TransactionFailed as error:
        raise ChainReadFailed() from error
    refusal = answer.get("error")
    if refusal is not None:
        if method.startswith("jz_") and (refusal.get("code") == METHOD_NOT_FOUND
                                         or "not supported" in str(refusal.get("message", "")).lower()):
            raise SealsUnavailable()
        raise NotFound(f"区块链节点答复：{str(refusal.get('message', refusal))[:200]}")
    return answer.get("result")


def has_seals(chain: Chain) -> bool:
    """Whether the node is a consortium node with commit seals (chain_node) rather than a plain one."""
    try:
        _call(chain, "jz_validators", ["latest"])
    except SealsUnavailable:
        return False
    return True


def _summary(block: dict[str, Any]) -> BlockSummary:
    return BlockSummary(int(block["number"], 16), block["hash"], int(block["timestamp"], 16),
                        len(block["transactions"]), block["miner"])


def latest_blocks(chain: Chain, before: int | None = None, count: int = BLOCKS_PER_PAGE) -> list[BlockSummary]:
    """The `count` blocks below `before` (default: from the head down), newest first, in one batch."""
    top = chain.block_number() if before is None else min(before - 1, chain.block_number())
    numbers = [n for n in range(top, top - count, -1) if n >= 0]
    try:
        answers = chain.rpc_batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    except TransactionFailed as error:
        raise ChainReadFailed() from error
    return [_summary(a["result"]) for a in answers if a.get("result")]


def check_seals(block_hash: bytes, seals: Sequence[tuple[bytes, bytes]], validators: ValidatorSet) -> SealReport:
    """Recover every seal's signer over the commit-seal digest and check the quorum, as chain_node does."""
    digest = commit_seal_digest(block_hash)
    views = []
    for address, signature in seals:
        signer = recover(digest, signature)
        views.append(SealView("0x" + address.hex(), "0x" + signature.hex(),
                              "0x" + signer.hex() if signer else "", validators.contains(address)))
    check = check_commit_seals(block_hash, seals, validators)
    failure = "" if check.ok else f"{check.failure.value if check.failure else 'invalid'}: {check.detail}"
    return SealReport(tuple(views), tuple("0x" + a.hex() for a in validators.addresses), validators.quorum,
                      True, check.ok, failure)


def seal_report(chain: Chain, number: int) -> SealReport:
    """The block's seals (`jz_getSeals`), its header re-hashed here, and the seals checked here."""
    answer = _call(chain, "jz_getSeals", [hex(number)])
    try:
        header = Header.decode(bytes(HexBytes(answer["header"])))
        block_hash = bytes(HexBytes(answer["blockHash"]))
        seals = [(bytes(HexBytes(s["validator"])), bytes(HexBytes(s["signature"]))) for s in answer["commitSeals"]]
        validators = ValidatorSet.of(bytes(to_canonical_address(a)) for a in answer["validators"])
    except (InvalidBlock, KeyError, TypeError, ValueError) as error:
        raise ChainReadFailed(f"节点返回的区块提交签名数据无法解析：{error}") from error
    report = check_seals(block_hash, seals, validators)
    if header.hash() != block_hash:
        return SealReport(report.seals, report.validators, report.quorum, False, False,
                          "the header does not hash to the block hash")
    return report


def block_detail(chain: Chain, number: int, with_seals: bool = True) -> BlockDetail:
    """The block, its transactions and (unless `with_seals` is off) its commit seals checked here."""
    if number < 0:
        raise InvalidInput("区块号不能为负数", field="number")
    block = _call(chain, "eth_getBlockByNumber", [hex(number), True])
    if block is None:
        raise NotFound(f"区块 {number} 尚不存在")
    transactions = tuple(
        TransactionSummary(tx["hash"], tx["from"], tx.get("to") or "", int(tx["transactionIndex"], 16))
        for tx in block["transactions"]
    )
    report = seal_report(chain, number) if number > 0 and with_seals else None
    return BlockDetail(_summary(block), block["parentHash"], block["receiptsRoot"], transactions, report)


def parse_tx_hash(value: str) -> str:
    text = value.strip().lower()
    if len(text) != 66 or not text.startswith("0x") or any(c not in "0123456789abcdef" for c in text[2:]):
        raise InvalidInput("交易哈希必须是 0x 开头的 64 位十六进制数", field="tx_hash")
    return text


def proof_bundle(chain: Chain, tx_hash: str) -> dict[str, Any]:
    """The transaction's proof bundle, exactly as `jz_getProof` gives it and `python -m chain_node verify`
    reads it."""
    bundle: dict[str, Any] = _call(chain, "jz_getProof", [parse_tx_hash(tx_hash)])
    return bundle


def transaction_sender(chain: Chain, tx_hash: str) -> str:
    found = _call(chain, "eth_getTransactionByHash", [parse_tx_hash(tx_hash)])
    return str(found["from"]) if found else ""


def named_section_ids(bundle: dict[str, Any]) -> list[str]:
    """Every 32-byte indexed value of the receipt's logs (0x-hex): the section ids it names, among others.

    Section ids are the first or second indexed field of every section event, so matching these against
    the platform's sections finds the sections a transaction concerns without decoding each event."""
    try:
        _status, logs = decode_receipt(bytes(HexBytes(bundle["receipt"])))
    except (ProofFailed, KeyError, ValueError, TypeError):
        return []
    return sorted({"0x" + topic.hex() for log in logs for topic in log.topics[1:3]})


def validator_file(bundle: dict[str, Any]) -> dict[str, Any]:
    """The validator-set file (`--validators` of `python -m chain_node verify`) of the bundle's block."""
    return {"blockNumber": bundle.get("blockNumber"), "validators": list(bundle.get("validators", []))}


# ---------------------------------------------------------------------------------------- section history


def _topic(signature: str) -> HexBytes:
    return HexBytes(keccak(text=signature))


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _item(contract: str, found: LoggedEvent) -> HistoryItem:
    event = found.event
    return HistoryItem(contract, event.name, tuple((k, _show(v)) for k, v in event.args.items()), found.tx_hash,
                       found.block_number, event.log_index)


def section_history(deployment: Deployment, tender_id: str, section_id: str, from_block: int = 0) -> list[HistoryItem]:
    """Every TenderRegistry and GuaranteeRegistry event about the section, in chain order.

    TenderRegistry events carry the section id as their first indexed field (SectionAdded as its second,
    and the tender's TenderCreated and TenderAmended its tender id). Guarantees name the section only when
    bound or claimed; every event of those guarantees (issued, paid, released ...) is then read by guarantee id.
    """
    chain = deployment.tenders.chain
    section = HexBytes(section_id)
    tender = HexBytes(tender_id)
    tenders_address = deployment.tenders.address
    guarantees_address = deployment.guarantees.address
    found: list[HistoryItem] = []
    for topics in ([_topic("TenderCreated(bytes32,address,address,bytes32)"), tender],
                   [_topic("TenderAmended(bytes32,uint256,bytes32)"), tender],
                   [None, tender, section], [None, section]):
        for logged in chain.logs(tenders_address, topics, from_block):
            if topics[0] is None and len(topics) == 3 and logged.event.name != "SectionAdded":
                continue
            found.append(_item("TenderRegistry", logged))
    guarantee_ids: set[bytes] = set()
    for logged in chain.logs(guarantees_address, [None, None, section], from_block):
        guarantee_ids.add(bytes(logged.event.args["guaranteeId"]))
    for guarantee_id in sorted(guarantee_ids):
        for logged in chain.logs(guarantees_address, [None, HexBytes(guarantee_id)], from_block):
            found.append(_item("GuaranteeRegistry", logged))
    unique = {(item.block_number, item.log_index): item for item in found}
    return [unique[key] for key in sorted(unique)]


def early_access_attempts(history: Sequence[HistoryItem]) -> list[HistoryItem]:
    """The section's anchored early-access attempts, taken from its history (with their transactions)."""
    return [item for item in history if item.name == "EarlyAccessAttempted"]
