"""Fault scenarios against a real 4-validator chain_node network; ends with one JSON line of what survived.

Scenarios, in order, on one network:
1. kill -9 one validator: blocks keep finalizing;
2. kill -9 a second one: no block finalizes and the survivors agree on every block (no fork);
3. bring one back (same data folder): finalization resumes; the time it took is measured;
4. restart the remaining one with an EMPTY data folder: it catches up from its peers and signs again;
5. garbage on the P2P port and malformed JSON-RPC: nodes keep serving and finalizing.

    python scripts/chaos_chain.py
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain_node.network import block_hash_at, head_number, lay_out, start_validator, wait_for_blocks


def agree(urls: list[str], upto: int) -> bool:
    return all(len({block_hash_at(url, n) for url in urls}) == 1 for n in range(1, upto + 1))


def main() -> int:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="jz-chaos-") as name:
        folder = Path(name)
        layouts = lay_out(folder, 4, block_period_ms=200)
        urls = [layout.rpc_url for layout in layouts]
        running = [start_validator(layout, folder / "logs") for layout in layouts]
        try:
            wait_for_blocks(urls[0], 3, timeout=60)

            running[3].stop(kill=True)
            before = head_number(urls[0])
            try:
                wait_for_blocks(urls[0], before + 5, timeout=30)
                results["one_of_four_down_finalizes"] = True
            except TimeoutError:
                results["one_of_four_down_finalizes"] = False

            running[2].stop(kill=True)
            time.sleep(1.0)
            halted = head_number(urls[0])
            time.sleep(5.0)
            after = head_number(urls[0])
            results["two_of_four_down_halts"] = after <= halted + 1
            results["two_of_four_down_no_fork"] = agree(urls[:2], min(after, head_number(urls[1])))

            running[2] = start_validator(layouts[2], folder / "logs")
            started = time.monotonic()
            try:
                wait_for_blocks(urls[0], after + 3, timeout=60)
                results["resume_seconds_after_one_back"] = round(time.monotonic() - started, 2)
            except TimeoutError:
                results["resume_seconds_after_one_back"] = None

            shutil.rmtree(folder / "data-3")
            running[3] = start_validator(layouts[3], folder / "logs")
            started = time.monotonic()
            target = head_number(urls[0])
            try:
                wait_for_blocks(urls[3], target, timeout=90)
                results["empty_folder_catch_up_seconds"] = round(time.monotonic() - started, 2)
                results["empty_folder_same_chain"] = agree([urls[0], urls[3]], target)
            except TimeoutError:
                results["empty_folder_catch_up_seconds"] = None
            running[0].stop(kill=True)  # now blocks need validator 3's votes
            try:
                wait_for_blocks(urls[1], head_number(urls[1]) + 3, timeout=60)
                results["rejoined_validator_signs"] = True
            except TimeoutError:
                results["rejoined_validator_signs"] = False
            running[0] = start_validator(layouts[0], folder / "logs")

            for _ in range(20):
                with socket.create_connection(("127.0.0.1", layouts[1].p2p_port), timeout=2) as sock:
                    sock.sendall(b"\x00\x00\x10\x00\x02" + b"\xff" * 64)
            for body in (b"{", b"[]", b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x12"]}'):
                request = urllib.request.Request(urls[1], data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    json.loads(response.read())
            before = head_number(urls[1])
            try:
                wait_for_blocks(urls[1], before + 3, timeout=30)
                results["garbage_input_survived"] = True
            except TimeoutError:
                results["garbage_input_survived"] = False
            final = min(head_number(url) for url in urls[1:])
            results["final_height"] = final
            results["all_agree_at_end"] = agree(urls[1:], final)
        finally:
            for validator in running:
                validator.stop(kill=True)
    results["survived"] = all(v not in (False, None) for v in results.values())
    print(json.dumps(results, sort_keys=True))
    return 0 if results["survived"] else 1


if __name__ == "__main__":
    sys.exit(main())
