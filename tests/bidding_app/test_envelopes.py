"""Sealed envelopes for the opening: nobody gets them before the opening time, and every try is
anchored on chain for the regulator; from the opening time on the agency and the witnesses do."""

from __future__ import annotations

import hashlib

from contracts.records import Role
from tests.bidding_app.conftest import Clients
from tests.bidding_app.test_bids import api_client, open_section, register, upload
from tests.helpers import Platform

ENVELOPE = b"JZSEAL test envelope: opaque bytes the platform must hand out unchanged"


def test_envelopes_are_refused_and_anchored_before_the_opening(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=600)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    upload(bidder, section, ENVELOPE)
    clients.drain()
    client = clients.app.test_client()
    agency, regulator = api_client(clients, Role.AGENCY), api_client(clients, Role.REGULATOR)

    early = client.get(f"/api/v1/sections/{section.id}/envelopes", headers=agency)
    assert early.status_code == 409 and early.json is not None
    assert early.json["error"]["code"] == "sealed_before_opening" and "已作为提前访问记录上链存证" in early.json[
        "error"]["message"]
    assert client.get(f"/api/v1/sections/{section.id}/envelopes/1", headers=agency).status_code == 409

    seen = client.get(f"/api/v1/sections/{section.id}/early-access", headers=regulator).json
    assert seen is not None and [a["count"] for a in seen["attempts"]] == [1, 2]
    agency_address = platform.agency.address.lower()
    assert all(a["reporter"].lower() == agency_address for a in seen["attempts"])
    assert platform.deployment.tenders.early_access_attempts(bytes.fromhex(section.chain_id[2:])) == 2

    # A witness organisation that is not this section's witness, and the bidder itself: refused, nothing anchored.
    other_witness = api_client(clients, Role.WITNESS, 2)
    assert client.get(f"/api/v1/sections/{section.id}/envelopes", headers=other_witness).status_code == 403
    assert client.get(f"/api/v1/sections/{section.id}/envelopes",
                      headers=api_client(clients, Role.BIDDER)).status_code == 403
    assert platform.deployment.tenders.early_access_attempts(bytes.fromhex(section.chain_id[2:])) == 2


def test_from_the_opening_time_the_witnesses_get_the_committed_envelopes(clients: Clients, platform: Platform) -> None:
    section = open_section(clients, platform, opening_in=120)
    bidder = clients.logged_in(Role.BIDDER)
    register(bidder, section)
    upload(bidder, section, ENVELOPE)
    clients.drain()
    platform.backend.advance_to(section.opening_time)
    client = clients.app.test_client()
    witness = api_client(clients, Role.WITNESS, 1)
    listing = client.get(f"/api/v1/sections/{section.id}/envelopes", headers=witness)
    assert listing.status_code == 200 and listing.json is not None
    (entry,) = listing.json["envelopes"]
    assert entry["commitment"] == "0x" + hashlib.sha256(ENVELOPE).hexdigest() and entry["size"] == len(ENVELOPE)
    assert entry["bidder"].lower() == (clients.organisation(Role.BIDDER).address or "").lower()
    with client.get(entry["url"], headers=witness) as body:
        assert body.status_code == 200 and body.data == ENVELOPE
    assert client.get(f"/api/v1/sections/{section.id}/envelopes/999999", headers=witness).status_code == 404
    assert platform.deployment.tenders.early_access_attempts(bytes.fromhex(section.chain_id[2:])) == 0
