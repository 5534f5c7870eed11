"""Start the platform as `make run` serves it (scripts/run_platform.py, gunicorn) in a subprocess and
stop it again: for the browser tests and the web benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from contracts.toolchain import PROJECT_ROOT

RUN_PLATFORM = PROJECT_ROOT / "scripts" / "run_platform.py"


@dataclass
class RunningPlatform:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    log_file: BinaryIO

    def stop(self, graceful: bool = False) -> None:
        """Stop it by our own pid: gunicorn's quick shutdown (SIGINT), or with `graceful` its graceful one
        (SIGTERM: requests under way finish, idle keep-alive connections wait out their 2 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if graceful else signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def start_platform(
    port: int, arguments: Sequence[str], environment: dict[str, str], log_path: Path, timeout: float = 60
) -> RunningPlatform:
    """Run `run_platform.py --port PORT *arguments` and wait until it answers; its output goes to `log_path`."""
    log_file = open(log_path, "wb")  # noqa: SIM115 (closed by RunningPlatform.stop)
    process = subprocess.Popen([sys.executable, str(RUN_PLATFORM), "--port", str(port), *arguments],
                               env=dict(os.environ) | environment, stdout=log_file, stderr=subprocess.STDOUT,
                               cwd=PROJECT_ROOT)
    running = RunningPlatform(process, f"http://127.0.0.1:{port}", log_path, log_file)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(running.url + "/login", timeout=2).close()
            return running
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                running.stop()
                raise RuntimeError(f"the platform did not start:\n{log_path.read_text()}") from None
            time.sleep(0.2)
