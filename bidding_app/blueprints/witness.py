"""The witness portal (见证门户): a block and record explorer over the consortium chain.

Who: witnesses, regulators and admins see blocks, seals and sections' on-chain histories (a history
names the bidders' accounts, which no bidder or agency may see before the opening). Proof pages
(`/witness/proofs/<tx>`) are open to every signed-in user: the opening hall links to them for every
anchored item, and a proof holds only what the consortium's chain holds (hashes, ids, accounts).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue

from bidding_app import explorer
from bidding_app.accounts import current_user, has_role, requires
from bidding_app.db import db, get_or_not_found
from bidding_app.errors import InvalidInput, NotFound
from bidding_app.models import Section, SectionWitness
from contracts.client import Deployment
from contracts.records import Role
from contracts.toolchain import PROJECT_ROOT, load_artifacts

bp = Blueprint("witness", __name__, url_prefix="/witness")

PORTAL_ROLES = (Role.WITNESS, Role.REGULATOR, Role.ADMIN)
ETHERS_BUNDLE = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"


def awaiting_attestation(deployment: Deployment, organisation_id: int, address: str | None,
                         chain_now: int) -> list[dict[str, Any]]:
    """The caller's witness sections whose opening record is anchored and that it has not attested yet.

    Only sections past their opening time are asked about on chain: no record exists before it."""
    rows = db.session.scalars(
        sa.select(Section).join(SectionWitness)
        .where(SectionWitness.organisation_id == organisation_id, Section.chain_tx.is_not(None),
               Section.opening_time <= chain_now)
        .order_by(Section.opening_time.desc())
    ).all()
    waiting = []
    for section in rows:
        chain_id = bytes.fromhex(section.chain_id[2:])
        state = deployment.tenders.section(chain_id)
        closed = state.opening_record_hash != b"\x00" * 32
        if closed and address and not deployment.tenders.has_attested(chain_id, address):
            waiting.append({"section": section, "state": state, "status": explorer.STATUS_LABELS[state.status]})
    return waiting


@bp.get("")
@requires(*PORTAL_ROLES)
def index() -> ResponseReturnValue:
    chain, deployment = explorer.chain_link()
    organisation = current_user().organisation
    return render_template(
        "witness/index.html",
        waiting=awaiting_attestation(deployment, organisation.id, organisation.address, chain.now()),
        blocks=explorer.latest_blocks(chain, count=10),
        has_seals=explorer.has_seals(chain),
    )


@bp.get("/blocks")
@requires(*PORTAL_ROLES)
def blocks() -> ResponseReturnValue:
    chain, _ = explorer.chain_link()
    before_text = request.args.get("before", "")
    before = None
    if before_text:
        if not before_text.isdigit() or len(before_text) > 18:
            raise InvalidInput("参数 before 须为区块号（非负整数）", field="before")
        before = int(before_text)
    listed = explorer.latest_blocks(chain, before)
    return render_template("witness/blocks.html", blocks=listed, has_seals=explorer.has_seals(chain))


@bp.get("/blocks/<int:number>")
@requires(*PORTAL_ROLES)
def block(number: int) -> ResponseReturnValue:
    chain, _ = explorer.chain_link()
    try:
        detail = explorer.block_detail(chain, number)
        available = True
    except explorer.SealsUnavailable:
        detail = explorer.block_detail(chain, number, with_seals=False)
        available = False
    return render_template("witness/block.html", block=detail, seals_available=available,
                           unavailable=explorer.SealsUnavailable.message)


@bp.get("/sections/<int:section_id>/history")
@requires(*PORTAL_ROLES)
def section_history(section_id: int) -> ResponseReturnValue:
    _, deployment = explorer.chain_link()
    section = get_or_not_found(db.session, Section, section_id, "未找到该标段")
    items = []
    if section.chain_tx:
        items = explorer.section_history(deployment, section.tender.chain_id, section.chain_id,
                                         section.tender.chain_block or 0)
    return render_template("witness/history.html", section=section, items=items)


def _bundle(tx_hash: str) -> dict[str, Any]:
    """The proof bundle, if the caller may see it.

    Witnesses, regulators and admins see any. Others (bidders, agencies … following the opening hall's
    links) see their own transactions, and others' only once every section the receipt names has passed
    its opening time: before it, a BidCommitted proof would tell a bidder who else bid. Refused proofs
    are "not found", as another bidder's bid is.
    """
    chain, _ = explorer.chain_link()
    bundle = explorer.proof_bundle(chain, tx_hash)
    user = current_user()
    if any(has_role(user, role) for role in PORTAL_ROLES):
        return bundle
    own = (user.organisation.address or "").lower() == explorer.transaction_sender(chain, tx_hash).lower()
    sections = explorer.named_section_ids(bundle)
    sealed = db.session.scalars(sa.select(Section.id).where(Section.chain_id.in_(sections),
                                                            Section.opening_time > chain.now())).first()
    if not own and sealed is not None:
        raise NotFound("未找到该交易的证明")
    return bundle


def _event_abis() -> list[dict[str, Any]]:
    artifacts = load_artifacts()
    return [item for name in ("TenderRegistry", "GuaranteeRegistry", "Consortium")
            for item in artifacts[name].abi if item.get("type") == "event"]


@bp.get("/proofs/<tx_hash>")
@requires()
def proof(tx_hash: str) -> ResponseReturnValue:
    bundle = _bundle(tx_hash)
    _, deployment = explorer.chain_link()
    contracts = {deployment.tenders.address.lower(): "TenderRegistry",
                 deployment.guarantees.address.lower(): "GuaranteeRegistry",
                 deployment.consortium.address.lower(): "Consortium"}
    return render_template("witness/proof.html", bundle=bundle, tx_hash=bundle["transactionHash"],
                           block_number=int(bundle["blockNumber"], 16), validators=explorer.validator_file(bundle),
                           events=_event_abis(), contracts=contracts)


def _download(payload: dict[str, Any], name: str) -> Response:
    response = Response(json.dumps(payload, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/proofs/<tx_hash>/bundle.json")
@requires()
def proof_download(tx_hash: str) -> ResponseReturnValue:
    """The bundle as `python -m chain_node verify bundle.json --validators validators.json` reads it."""
    bundle = _bundle(tx_hash)
    return _download(bundle, f"proof-{bundle['transactionHash'][:18]}.json")


@bp.get("/proofs/<tx_hash>/validators.json")
@requires()
def validators_download(tx_hash: str) -> ResponseReturnValue:
    bundle = _bundle(tx_hash)
    return _download(explorer.validator_file(bundle), f"validators-block-{int(bundle['blockNumber'], 16)}.json")


@bp.get("/ethers.js")
@requires()
def ethers_bundle() -> ResponseReturnValue:
    """The pinned `ethers` package's browser bundle (ES module) from node_modules: the proof page verifies
    with it in the browser, so no CDN and nothing from the server's own verifier."""
    if not ETHERS_BUNDLE.is_file():
        raise NotFound("ethers 浏览器模块未安装（node_modules/ethers）")
    response = Response(_ethers_source(), mimetype="text/javascript")
    response.cache_control.max_age = 3600
    return response


@functools.cache
def _ethers_source() -> bytes:
    return ETHERS_BUNDLE.read_bytes()
