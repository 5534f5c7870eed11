"""The platform serves the public guarantee verification page and API (no account needed)."""

from __future__ import annotations

import io

from tests.bidding_app.conftest import Clients


def test_anyone_can_check_a_guarantee_on_the_platform(clients: Clients) -> None:
    client = clients.app.test_client()  # not logged in
    page = client.get("/guarantees/verify")
    assert page.status_code == 200 and "保函" in page.get_data(as_text=True)
    unknown = client.get("/api/guarantees/JZBH-2026-000000-0000")
    assert unknown.status_code == 404 and unknown.json is not None and unknown.json["verdict"] == "unknown"
    not_a_pdf = client.post(
        "/api/guarantees/verify", data={"file": (io.BytesIO(b"plain text, not a letter"), "letter.pdf")}
    )
    assert not_a_pdf.status_code == 400 and not_a_pdf.json is not None
    assert not_a_pdf.json["code"] == "not_a_letter"
