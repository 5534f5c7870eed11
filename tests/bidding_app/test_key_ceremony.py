"""The witnesses' key ceremony through the platform: the platform relays a real DKG (one dealer cheats and
is caught), anchors the opening key for the agency, and learns no share on the way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bidding_app.db import db
from bidding_app.models import Section
from contracts.records import Role
from opening import dkg
from tests.bidding_app.conftest import Clients, api_draft, csrf_of
from tests.bidding_app.test_bids import api_client
from tests.helpers import Platform


def test_witnesses_generate_the_opening_key_through_the_platform(
    clients: Clients, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = clients.app.test_client()
    witness_ids = clients.org_ids(Role.WITNESS)[:3]
    draft = api_draft(clients, platform, opening_in=3600)
    draft["sections"][0].update(opening_key="", witness_ids=witness_ids, witness_quorum=2)
    published = client.post("/api/v1/tenders", json=draft, headers=api_client(clients, Role.AGENCY))
    assert published.status_code == 201 and published.json is not None
    section_id = published.json["sections"][0]["id"]
    clients.drain()
    url = f"/api/v1/sections/{section_id}/key-ceremony"
    witnesses = [api_client(clients, Role.WITNESS, i) for i in range(3)]

    def post(step: str, body: Any, who: int) -> Any:
        return client.post(f"{url}/{step}", json=body, headers=witnesses[who])

    transport = [dkg.new_transport_key() for _ in range(3)]
    assert post("deal", {"deal": {}}, 0).status_code == 409  # not every transport key is in yet
    assert post("transport-key", {"public_key": "0x05" + "11" * 32}, 0).status_code == 400  # not a point
    for index, (_, public) in enumerate(transport):
        assert post("transport-key", {"public_key": public.hex()}, index).status_code == 201
    assert post("transport-key", {"public_key": transport[0][1].hex()}, 0).status_code == 409  # once only
    assert client.post(f"{url}/transport-key", json={"public_key": transport[0][1].hex()},
                       headers=api_client(clients, Role.BIDDER)).status_code == 403
    assert client.get(url, headers=api_client(clients, Role.BIDDER)).status_code == 403

    state = client.get(url, headers=witnesses[0]).json
    assert state is not None and state["state"] == "dealing" and [w["index"] for w in state["witnesses"]] == [1, 2, 3]
    params = dkg.DkgParams(bytes.fromhex(state["chain_id"][2:]), 2,
                           tuple(bytes.fromhex(state["transport_keys"][str(i)]) for i in (1, 2, 3)))
    deals = [dkg.deal(params, 1), dkg.deal(params, 2), dkg.deal(params, 3, cheat_recipient=1)]
    assert post("deal", {"deal": dkg.deal_to_json(deals[1])}, 0).status_code == 400  # another dealer's index
    for index, deal in enumerate(deals):
        assert post("deal", {"deal": dkg.deal_to_json(deal)}, index).status_code == 201

    relayed = [dkg.deal_from_json(d) for d in client.get(url, headers=witnesses[1]).json["deals"]]  # type: ignore[index]
    for index in range(3):
        complaints = dkg.receive(params, relayed, index + 1, transport[index][0])
        assert len(complaints) == (1 if index == 0 else 0)
        answer = post("complaints", {"complaints": [dkg.complaint_to_json(c) for c in complaints]}, index)
        assert answer.status_code == 201, answer.json
    state = client.get(url, headers=witnesses[2]).json
    assert state is not None and state["state"] == "anchoring"
    assert state["outcome"]["qualified"] == [1, 2] and state["outcome"]["disqualified"][0]["witness"] == 3
    # Worked out once, when the last check came in, and kept with the section: reading the ceremony's
    # state (any worker process) does not run the DKG's end again.
    with clients.app.app_context():
        stored = db.session.get_one(Section, section_id).key_ceremony_outcome
    assert stored is not None and json.loads(stored) == state["outcome"]

    def not_again(*_args: Any) -> dkg.DkgOutcome:
        raise AssertionError("dkg.finish ran for a status read")

    monkeypatch.setattr(dkg, "finish", not_again)
    assert client.get(url, headers=witnesses[0]).json["outcome"] == state["outcome"]  # type: ignore[index]
    monkeypatch.undo()

    clients.drain()
    state = client.get(url, headers=api_client(clients, Role.REGULATOR)).json
    assert state is not None and state["state"] == "anchored" and state["chain_tx"]
    key = bytes.fromhex(state["opening_key"][2:])
    assert platform.deployment.tenders.opening_key(bytes.fromhex(state["chain_id"][2:])) == key
    # Anyone can redo the ceremony's end from the relayed transcript; each qualified witness derives its share.
    final = dkg.finish(params, relayed, [dkg.complaint_from_json(c) for c in state["complaints"]])
    assert final.opening_key.encode() == key and final.qualified == (1, 2)
    for index in (1, 2):
        dkg.secret_share(params, relayed, final, index, transport[index - 1][0])

    assert post("complaints", {"complaints": []}, 0).status_code == 409  # over
    bidder = clients.logged_in(Role.BIDDER)
    token = csrf_of(bidder, f"/sections/{section_id}/bid")
    assert bidder.post(f"/sections/{section_id}/register", data={"csrf_token": token}).status_code == 302
    assert state["opening_key"] in bidder.get(f"/sections/{section_id}/bid").get_data(as_text=True)
    page = clients.logged_in(Role.AGENCY).get(f"/sections/{section_id}/key-ceremony").get_data(as_text=True)
    assert "开标公钥已上链" in page and "wrong share to witness 1" in page
