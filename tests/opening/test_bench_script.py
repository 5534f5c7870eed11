"""scripts/bench_opening.py runs end to end (on a few small bids) and ends with one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from contracts.toolchain import PROJECT_ROOT


def test_bench_opening_ends_with_one_json_line() -> None:
    script = PROJECT_ROOT / "scripts" / "bench_opening.py"
    done = subprocess.run(
        [sys.executable, str(script), "--bids", "12", "--size", "4096", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["bids"] == 12 and summary["all_opened"] is True
    assert (summary["k"], summary["n"], summary["chain"]) == (3, 5, "anvil")
    assert set(summary["phases"]) == {
        "shares_and_proofs",
        "shares_anchored",
        "public_data_read",
        "verify_combine_decrypt_record",
        "outcomes_record_anchored_attested",
    }
    assert summary["peak_rss_mb"] > 0
