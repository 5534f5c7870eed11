"""The section's key ceremony: the witnesses' DKG (opening/dkg.py), relayed by the platform.

The witnesses run the ceremony with their own software (`python -m opening`, or any program on
`opening.dkg`): each posts its transport public key, then its deal, then its complaints (often none).
Deals are encrypted to the recipients' transport keys, so the platform carries them without learning
any share. When every witness has checked the deals (or the agency closes the ceremony with the
messages it has), the platform runs `dkg.finish` — anyone can, from the public transcript — and anchors
the opening key for the agency with `setOpeningKey` through the outbox. From then on bidders seal to it.

Witness index j is the witness's position in the section's on-chain witness list (`witnessesOf`), the
order the opening software uses too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hexbytes import HexBytes
from sqlalchemy.orm import Session

from bidding_app import outbox
from bidding_app.chain import ChainGateway
from bidding_app.errors import AfterDeadline, AppError, Forbidden, InvalidInput, NotFound
from bidding_app.models import KeyCeremonyMessage, Organisation, OutboxEntry, Section
from contracts.client import Deployment
from contracts.records import Role
from opening import dkg
from opening.ec import InvalidPoint, Point

ACTIONS = ("set_opening_key",)
KINDS = ("transport_key", "deal", "complaints")
HEX = re.compile(r"^(0x)?[0-9a-fA-F]*$")
MAX_COMPLAINTS = 64


class CeremonyStepRefused(AppError):
    code = "key_ceremony_step_refused"
    status = 409
    message = "密钥生成仪式当前不接受此操作"


@dataclass(frozen=True)
class Participant:
    index: int  # 1-based, the position in the section's on-chain witness list
    organisation: Organisation


@dataclass(frozen=True)
class Ceremony:
    section: Section
    participants: tuple[Participant, ...]
    messages: dict[tuple[int, str], Any]  # (witness index, kind) → the posted JSON

    @property
    def threshold(self) -> int:
        return self.section.witness_quorum

    def posted(self, kind: str) -> list[int]:
        return sorted(index for index, k in self.messages if k == kind)

    def params(self) -> dkg.DkgParams:
        keys = tuple(bytes.fromhex(self.messages[(p.index, "transport_key")]) for p in self.participants)
        return dkg.DkgParams(bytes.fromhex(self.section.chain_id[2:]), self.threshold, keys)

    def deals(self) -> list[dkg.Deal]:
        return [dkg.deal_from_json(self.messages[(i, "deal")]) for i in self.posted("deal")]

    def complaints(self) -> list[dkg.Complaint]:
        return [dkg.complaint_from_json(c) for i in self.posted("complaints") for c in self.messages[(i, "complaints")]]

    def state(self) -> str:
        key = self.section.opening_key
        if key not in ("", "0x") and self.section.opening_key_tx:
            return "anchored"
        if self.section.key_ceremony_error:
            return "failed"
        if key not in ("", "0x"):
            return "anchoring" if self.messages else "given_at_publication"
        n = len(self.participants)
        if len(self.posted("transport_key")) < n:
            return "collecting_transport_keys"
        if len(self.posted("deal")) < n:
            return "dealing"
        return "checking"


def _chain_section_id(section: Section) -> bytes:
    return bytes.fromhex(section.chain_id[2:])


def load(session: Session, deployment: Deployment, section: Section) -> Ceremony:
    """The ceremony of `section` as posted so far, with its witnesses in chain order."""
    if not section.chain_tx:
        raise CeremonyStepRefused("该标段尚未上链，不能开始密钥生成")
    addresses = [a.lower() for a in deployment.tenders.witnesses(_chain_section_id(section))]
    by_address = {
        (o.address or "").lower(): o
        for o in session.scalars(sa.select(Organisation).where(Organisation.address.is_not(None)))
    }
    participants = tuple(Participant(i, by_address[a]) for i, a in enumerate(addresses, start=1) if a in by_address)
    if len(participants) != len(addresses):
        raise CeremonyStepRefused("该标段有见证机构不在平台上，无法通过平台进行密钥生成")
    rows = session.scalars(sa.select(KeyCeremonyMessage).where(KeyCeremonyMessage.section_id == section.id))
    messages = {(row.witness_index, row.kind): json.loads(row.body) for row in rows}
    return Ceremony(section, participants, messages)


def readable(ceremony: Ceremony, organisation: Organisation) -> None:
    tender = ceremony.section.tender
    if organisation.id == tender.agency_id or organisation.roles & (Role.REGULATOR | Role.ADMIN):
        return
    if any(p.organisation.id == organisation.id for p in ceremony.participants):
        return
    raise Forbidden("只有该标段的见证机构、招标代理机构和监管机构可以查看密钥生成过程")


def _participant(ceremony: Ceremony, organisation: Organisation) -> Participant:
    for participant in ceremony.participants:
        if participant.organisation.id == organisation.id:
            return participant
    raise Forbidden("只有该标段的见证机构可以参与密钥生成")


def _hex(value: Any, field: str, label: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or not HEX.match(value) or len(value) > 4096:
        raise InvalidInput(f"{label}必须是十六进制字符串", field=field)
    data = bytes.fromhex(value.removeprefix("0x")) if len(value.removeprefix("0x")) % 2 == 0 else None
    if data is None or (size is not None and len(data) != size):
        raise InvalidInput(f"{label}长度不正确", field=field)
    return data


def _store(session: Session, ceremony: Ceremony, participant: Participant, kind: str, body: Any) -> None:
    session.add(KeyCeremonyMessage(section_id=ceremony.section.id, witness_index=participant.index,
                                   organisation_id=participant.organisation.id, kind=kind,
                                   body=json.dumps(body, sort_keys=True)))
    ceremony.messages[(participant.index, kind)] = body


def _open_for_messages(ceremony: Ceremony, chain_now: int) -> None:
    if chain_now >= ceremony.section.opening_time:
        raise AfterDeadline("已过开标时间，不能再生成开标密钥")
    if ceremony.state() in ("anchoring", "anchored", "failed", "given_at_publication"):
        raise CeremonyStepRefused("密钥生成已结束（或开标公钥已随招标公告发布）")


def post(
    session: Session, gateway: ChainGateway, organisation: Organisation, section: Section, kind: str, body: Any
) -> Ceremony:
    """One witness's message of step `kind`; finishes the ceremony when it was the last one expected."""
    _, deployment = gateway.require()
    ceremony = load(session, deployment, section)
    participant = _participant(ceremony, organisation)
    _open_for_messages(ceremony, gateway.now())
    if (participant.index, kind) in ceremony.messages:
        raise CeremonyStepRefused("贵机构已提交过这一步，不能更改（更改会让其他见证机构的检查失效）")
    if not isinstance(body, dict):
        raise InvalidInput("请求体必须是 JSON 对象")
    if kind == "transport_key":
        key = _hex(body.get("public_key"), "public_key", "传输公钥", 33)
        try:
            Point.decode(key)
        except InvalidPoint:
            raise InvalidInput("传输公钥不是 P-256 曲线上的点", field="public_key") from None
        if any(v == key.hex() for (_, k), v in ceremony.messages.items() if k == "transport_key"):
            raise InvalidInput("该传输公钥已被其他见证机构使用", field="public_key")
        _store(session, ceremony, participant, kind, key.hex())
    elif kind == "deal":
        if ceremony.state() == "collecting_transport_keys":
            raise CeremonyStepRefused("还有见证机构未提交传输公钥，暂不能分发")
        deal = _parse(dkg.deal_from_json, body.get("deal"), "deal", "分发数据")
        if deal.dealer != participant.index:
            raise InvalidInput(f"分发者序号应为 {participant.index}", field="deal")
        try:
            dkg.check_deal_shape(ceremony.params(), deal)
        except dkg.InvalidDeal as error:
            raise InvalidInput(f"分发数据格式不正确：{error}", field="deal") from None
        _store(session, ceremony, participant, kind, dkg.deal_to_json(deal))
    elif kind == "complaints":
        if ceremony.state() != "checking":
            raise CeremonyStepRefused("还有见证机构未提交分发数据，暂不能提交检查结果")
        raw = body.get("complaints")
        if not isinstance(raw, list) or len(raw) > MAX_COMPLAINTS:
            raise InvalidInput("complaints 必须是投诉列表（可为空）", field="complaints")
        complaints = [_parse(dkg.complaint_from_json, item, "complaints", "投诉") for item in raw]
        if any(c.recipient != participant.index for c in complaints):
            raise InvalidInput(f"投诉人序号应为 {participant.index}", field="complaints")
        _store(session, ceremony, participant, kind, [dkg.complaint_to_json(c) for c in complaints])
        if len(ceremony.posted("complaints")) == len(ceremony.participants):
            _finish(session, ceremony)
    else:
        raise NotFound("未知的密钥生成步骤")
    session.commit()
    return ceremony


def _parse(parser: Any, raw: Any, field: str, label: str) -> Any:
    try:
        return parser(raw)
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"{label}格式不正确", field=field) from None


def close(session: Session, gateway: ChainGateway, agency: Organisation, section: Section) -> Ceremony:
    """The agency ends the ceremony with the messages posted so far (a witness stopped answering): missing
    dealers are disqualified; the key is anchored if at least the threshold of dealers qualified."""
    if section.tender.agency_id != agency.id:
        raise Forbidden("只有该项目的招标代理机构可以结束密钥生成")
    _, deployment = gateway.require()
    ceremony = load(session, deployment, section)
    _open_for_messages(ceremony, gateway.now())
    if ceremony.state() == "collecting_transport_keys":
        raise CeremonyStepRefused("还有见证机构未提交传输公钥，无法结束密钥生成")
    _finish(session, ceremony)
    session.commit()
    return ceremony


def _finish(session: Session, ceremony: Ceremony) -> None:
    section = ceremony.section
    try:
        outcome = dkg.finish(ceremony.params(), ceremony.deals(), ceremony.complaints())
    except dkg.DkgFailed as error:
        section.key_ceremony_error = str(error)[:500]
        return
    key = "0x" + outcome.opening_key.encode().hex()
    section.opening_key = key
    section.key_ceremony_outcome = json.dumps(_outcome_fields(outcome), sort_keys=True)
    outbox.enqueue(session, section.tender.agency_id, "set_opening_key", f"set_opening_key:{section.chain_id}",
                   {"section_id": section.chain_id, "opening_key": key})


def _outcome_fields(finished: dkg.DkgOutcome) -> dict[str, Any]:
    return {"qualified": list(finished.qualified),
            "disqualified": [{"witness": w, "reason": r} for w, r in finished.disqualified]}


def outcome_of(ceremony: Ceremony) -> dict[str, Any] | None:
    """Who qualified as a dealer, as `_finish` stored it: a status read must not redo the DKG (every
    deal's checks) on each request. A ceremony finished before the outcome was stored (an older
    database) is worked out from its transcript, which gives the same answer."""
    section = ceremony.section
    if ceremony.state() not in ("anchoring", "anchored"):
        return None
    if section.key_ceremony_outcome is not None:
        stored: dict[str, Any] = json.loads(section.key_ceremony_outcome)
        return stored
    return _outcome_fields(dkg.finish(ceremony.params(), ceremony.deals(), ceremony.complaints()))


def summary(ceremony: Ceremony) -> dict[str, Any]:
    section = ceremony.section
    outcome = outcome_of(ceremony)
    return {
        "section_id": section.id, "chain_id": section.chain_id, "threshold": ceremony.threshold,
        "state": ceremony.state(), "error": section.key_ceremony_error,
        "witnesses": [{"index": p.index, "organisation_id": p.organisation.id, "name": p.organisation.name,
                       "address": p.organisation.address} for p in ceremony.participants],
        "transport_keys": {str(i): ceremony.messages[(i, "transport_key")] for i in ceremony.posted("transport_key")},
        "deals": [ceremony.messages[(i, "deal")] for i in ceremony.posted("deal")],
        "complaints": [c for i in ceremony.posted("complaints") for c in ceremony.messages[(i, "complaints")]],
        "checked_by": ceremony.posted("complaints"),
        "opening_key": section.opening_key if section.opening_key not in ("", "0x") else None,
        "outcome": outcome, "chain_tx": section.opening_key_tx, "chain_block": section.opening_key_block,
    }


# ---------------------------------------------------------------- the outbox's side


def encode_call(deployment: Deployment, action: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    registry = deployment.tenders
    contract = deployment.chain.contract("TenderRegistry", registry.address)
    args = [bytes.fromhex(payload["section_id"][2:]), bytes.fromhex(payload["opening_key"][2:])]
    return registry.address, bytes(HexBytes(contract.encode_abi("setOpeningKey", args=args)))


def _section(session: Session, payload: dict[str, Any]) -> Section:
    return session.scalars(sa.select(Section).where(Section.chain_id == payload["section_id"])).one()


def apply_confirmed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    section = _section(session, payload)
    section.opening_key_tx, section.opening_key_block = entry.tx_hash, entry.block_number


def apply_failed(session: Session, entry: OutboxEntry, payload: dict[str, Any]) -> None:
    section = _section(session, payload)
    section.key_ceremony_error = f"开标公钥上链被拒绝：{entry.error_code}"

