"""Browser and Python sealing interoperate: headless Chromium seals with WebCrypto (sealing.js), Python opens."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opening.ec import base_mul
from opening.envelope import open_as_bidder
from opening.opener import open_section
from tests.opening.builders import KeyedSection, SealedBids, bidder, public_data, share_batch

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[2] / "opening" / "static"
PAGE = b"""<!doctype html><meta charset="utf-8"><title>sealing</title>
<script type="module">import * as sealing from "/sealing.js"; window.sealing = sealing;</script>"""

SEAL = """async ([sectionId, openingKey, bidder, bidderKey, announced]) => {
  const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (p) => parseInt(p, 16));
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const { sealBid, commitmentOf } = await import("/sealing.js");
  try {
    const envelope = await sealBid({
      sectionId: fromHex(sectionId), openingKey: fromHex(openingKey), bidder, announced,
      document: new TextEncoder().encode("%PDF-1.7 浏览器投标文件"), documentName: "投标文件.pdf",
      bidderPublicKey: bidderKey ? fromHex(bidderKey) : null,
    });
    return { envelope: toHex(envelope), commitment: toHex(await commitmentOf(envelope)) };
  } catch (error) {
    return { error: error.name + ": " + error.message };
  }
}"""


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(STATIC)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_page(page_url: str) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page()
        page.goto(page_url)
        page.wait_for_function("() => window.sealing !== undefined")
        yield page
        browser.close()


def test_browser_seals_and_python_opens(browser_page: Any, keyed: KeyedSection, tmp_path: Path) -> None:
    own_secret = 0xC0FFEE
    own_key = base_mul(own_secret).encode(compressed=False)
    announced = {"price_fen": 1_234_567_00, "duration_days": 365, "quality": "优良"}
    sealed = browser_page.evaluate(
        SEAL, [keyed.section_id.hex(), keyed.opening_key.hex(), bidder(0), own_key.hex(), announced]
    )
    assert "error" not in sealed, sealed
    envelope = bytes.fromhex(sealed["envelope"])
    assert bytes.fromhex(sealed["commitment"]) == hashlib.sha256(envelope).digest()
    path = tmp_path / f"{bidder(0)}.jzb"
    path.write_bytes(envelope)
    bids = SealedBids({bidder(0): path}, {bidder(0): bytes.fromhex(sealed["commitment"])})

    batches = [share_batch(keyed, i, bids) for i in (1, 3, 4)]
    result = open_section(public_data(keyed, bids, batches), batches, bids.envelopes, 1)
    (outcome,) = result.outcomes
    assert outcome.kind == "opened", outcome
    assert outcome.announced == announced
    assert outcome.document == {
        "name": "投标文件.pdf",
        "sha256": hashlib.sha256("%PDF-1.7 浏览器投标文件".encode()).hexdigest(),
        "size": len("%PDF-1.7 浏览器投标文件".encode()),
    }
    # The bidder opens its own browser-sealed bid with its own key.
    assert open_as_bidder(envelope, own_secret).announced == announced


def test_browser_refuses_bad_input_by_name(browser_page: Any, keyed: KeyedSection) -> None:
    bad_price = browser_page.evaluate(
        SEAL, [keyed.section_id.hex(), keyed.opening_key.hex(), bidder(0), "", {"price_fen": -5}]
    )
    assert bad_price["error"].startswith("SealingError: announced.price_fen")
    bad_key = browser_page.evaluate(SEAL, [keyed.section_id.hex(), "02" * 40, bidder(0), "", {"price_fen": 1}])
    assert bad_key["error"].startswith("SealingError:") and "opening key" in bad_key["error"]
