"""Serve the bidding platform with gunicorn (gevent workers) on 127.0.0.1, for `make run`.

    .venv/bin/python scripts/run_platform.py --rpc-url http://127.0.0.1:8545 --deployment build/deployment.json

Applies the migrations, seeds the dev consortium's organisations and users when asked (--seed), and
serves until Ctrl-C. Each gevent worker holds thousands of concurrent connections (the opening hall's
live viewers); two workers (the default) use both cores for bid uploads. Whatever the workers must
agree on is in the database (the hall's events and presence, login failures, guarantor API nonces) or
made once here before they start (schema, secret key, key-encryption key). The outbox sender runs
beside them as `python -m bidding_app send-outbox`.
"""

from __future__ import annotations

# gevent must patch the standard library before anything imports sockets, ssl or threading.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import FrameType  # noqa: E402
from typing import Any  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import gevent  # noqa: E402
from gunicorn.app.base import BaseApplication  # noqa: E402
from gunicorn.workers.ggevent import GeventWorker  # noqa: E402


class PlatformServer(BaseApplication):
    """gunicorn configured in code; the app is built in the worker, after gevent has patched it."""

    def __init__(self, options: dict[str, Any], app_config: dict[str, Any]) -> None:
        self.options = options
        self.app_config = app_config
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from bidding_app import create_app

        return create_app(self.app_config)


class PlatformWorker(GeventWorker):
    """gunicorn's gevent worker whose graceful stop (SIGTERM: a restart, a service manager) also ends the
    opening hall's event streams. The worker waits for every open response before it exits, and a stream
    never ends by itself: it would wait out graceful_timeout and be killed."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        from flask import Flask

        from bidding_app.hall_stream import close_streams

        app = getattr(self, "wsgi", None)  # none yet while the worker is still loading the app
        if isinstance(app, Flask):
            # Out of the signal handler, in a greenlet of its own (as gunicorn does for SIGQUIT): ending a
            # stream takes the hub's lock, which the interrupted greenlet may hold.
            gevent.spawn(close_streams, app)


def profiling_hooks(folder: Path) -> dict[str, Any]:
    """gunicorn hooks that profile the worker (cProfile) and write `platform-<pid>.prof` when it exits."""
    import cProfile

    profiler = cProfile.Profile()

    def started(_worker: Any) -> None:
        profiler.enable()

    def exiting(_server: Any, worker: Any) -> None:
        profiler.disable()
        folder.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(folder / f"platform-{worker.pid}.prof"))

    return {"post_worker_init": started, "worker_exit": exiting}


def prepare(app_config: dict[str, Any], seed: str | None, password: str) -> None:
    """Everything the workers and the sender share and would otherwise race to make, done once before
    they start: the schema (migrations), the secret key and key-encryption key files, and the dev
    consortium's users when asked."""
    from bidding_app import create_app
    from bidding_app.accounts import seed_consortium
    from bidding_app.chain import gateway
    from bidding_app.db import db
    from contracts.deploy import load_config

    prepared = create_app(app_config)
    if seed:
        with prepared.app_context():
            for user in seed_consortium(db.session, load_config(Path(seed)), gateway().kek, password):
                print(f"user {user.username}  {user.display_name}")
    prepared.extensions["jianzheng_db"].engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc-url", default=os.environ.get("JIANZHENG_RPC_URL"))
    parser.add_argument("--deployment", default=str(PROJECT_ROOT / "build" / "deployment.json"))
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or build/platform/jianzheng.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2,
                        help="gevent worker processes (default 2: one per core of the target machine)")
    parser.add_argument("--chain-time-max-age", type=float, default=0.5,
                        help="seconds the upload's deadline check keeps chain time (0: ask the node per upload)")
    parser.add_argument("--seed", metavar="CONSORTIUM_JSON", help="seed these organisations first (dev only)")
    parser.add_argument("--password", default=os.environ.get("JIANZHENG_DEV_PASSWORD", "jianzheng-dev"),
                        help="initial password of seeded users")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the platform listens on the loopback address only here")
    # The outbox sender runs in a process of its own (below), not in the web worker: its signing and
    # JSON-RPC work then takes no time from requests, and it keeps running across worker restarts.
    app_config: dict[str, Any] = {"DEPLOYMENT": args.deployment if args.rpc_url else None, "RPC_URL": args.rpc_url,
                                  "OUTBOX_THREAD": False, "CHAIN_TIME_MAX_AGE": args.chain_time_max_age}
    if args.database_url:
        app_config["DATABASE_URL"] = args.database_url
    prepare(app_config, args.seed, args.password)
    # Migrated once above: workers starting side by side must not run the migrations against each other.
    app_config["MIGRATE_AT_START"] = False
    print(f"platform on http://{args.host}:{args.port}/", flush=True)
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": PlatformWorker,
        "worker_connections": 2000,
        "timeout": 120,
        "graceful_timeout": 5,
        "accesslog": "-",
        "control_socket_disable": True,  # several platforms (tests, make run) may run side by side
    }
    profile_dir = os.environ.get("JIANZHENG_PROFILE_DIR")
    if profile_dir:
        options |= profiling_hooks(Path(profile_dir))
    sender = None
    if args.rpc_url:
        command = [sys.executable, "-m", "bidding_app", "--rpc-url", args.rpc_url, "--deployment", args.deployment]
        if args.database_url:
            command += ["--database-url", args.database_url]
        sender = subprocess.Popen([*command, "send-outbox"], cwd=PROJECT_ROOT)
    master = os.getpid()
    try:
        PlatformServer(options, app_config).run()
    finally:
        # gunicorn forks its workers inside run(), and a worker leaves by SystemExit, which unwinds through
        # this frame in the worker too. Only the master may stop the sender: a worker would stop it under a
        # replacement worker, and wait for a process that is not its child until the master killed it
        # after graceful_timeout.
        if sender is not None and os.getpid() == master:
            sender.terminate()
            sender.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
