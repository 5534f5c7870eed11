"""Command line of the platform: `python -m bidding_app upgrade | seed | send-outbox`.

    upgrade                       apply the database migrations (also done at app start)
    seed --consortium FILE        create the consortium's organisations and users, keys encrypted
    send-outbox [--once]          run the outbox sender (the app also runs one in a thread)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path

from bidding_app import create_app, outbox_sender
from bidding_app.accounts import seed_consortium
from bidding_app.chain import gateway
from bidding_app.db import db
from contracts.deploy import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bidding_app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: DATABASE_URL or SQLite under build/platform")
    parser.add_argument("--rpc-url")
    parser.add_argument("--deployment", help="the deployment manifest (build/deployment.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade")
    seed = commands.add_parser("seed")
    seed.add_argument("--consortium", default="scripts/consortium.dev.json")
    seed.add_argument("--password", required=True, help="initial password of every seeded user")
    send = commands.add_parser("send-outbox")
    send.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config: dict[str, object] = {"OUTBOX_THREAD": False, "OUTBOX_POLL_INTERVAL": 0.2}
    if args.database_url:
        config["DATABASE_URL"] = args.database_url
    if args.rpc_url:
        config["RPC_URL"] = args.rpc_url
    if args.deployment:
        config["DEPLOYMENT"] = args.deployment
    app = create_app(config)
    if args.command == "upgrade":
        print("database at the latest migration")
    elif args.command == "seed":
        with app.app_context():
            users = seed_consortium(db.session, load_config(Path(args.consortium)), gateway().kek, args.password)
            for user in users:
                print(f"{user.username}\t{user.display_name}")
    else:
        sender = outbox_sender(app)
        if args.once:
            print(f"{sender.run_once()} entries done")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        sender.start(float(app.config["OUTBOX_POLL_INTERVAL"]))
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        sender.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
