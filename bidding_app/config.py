"""Settings: defaults here, overridden by JIANZHENG_* / DATABASE_URL environment variables, then by the
dict given to `create_app`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.toolchain import PROJECT_ROOT

DATA = PROJECT_ROOT / "build" / "platform"


def defaults() -> dict[str, Any]:
    return {
        "DATABASE_URL": f"sqlite:///{DATA / 'jianzheng.db'}",
        "UPLOAD_FOLDER": str(DATA / "uploads"),
        "SECRET_KEY_FILE": str(DATA / "secret.key"),
        "KEY_ENCRYPTION_KEY": None,  # 64 hex digits; else KEY_ENCRYPTION_KEY_FILE (made once)
        "KEY_ENCRYPTION_KEY_FILE": str(DATA / "kek.key"),
        "RPC_URL": None,
        "DEPLOYMENT": None,  # a manifest dict or the path of build/deployment.json
        "CHAIN_TIMEOUT": 60.0,
        "CHAIN_TIME_MAX_AGE": 0.0,  # s the upload's deadline check keeps chain time (bidding_app/chain.py)
        "OUTBOX_THREAD": True,
        "OUTBOX_POLL_INTERVAL": 0.5,
        "HALL_RESPONSE_WINDOW": 30 * 60,  # seconds of chain time for bidders to confirm or object to the record
        "HALL_POLL_INTERVAL": 0.2,  # how often the web worker looks for new hall events of a watched section
        # How often a web worker marks its hall connections as alive; three missed refreshes = a dead worker's.
        "HALL_PRESENCE_REFRESH": 15.0,
        "MIGRATE_AT_START": True,
        "MAX_BID_BYTES": 50 * 1024 * 1024,
        "MAX_ATTACHMENT_BYTES": 20 * 1024 * 1024,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
        "LOGIN_WINDOW_SECONDS": 300,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
    }


ENVIRONMENT = {
    "DATABASE_URL": "DATABASE_URL",
    "JIANZHENG_UPLOAD_FOLDER": "UPLOAD_FOLDER",
    "JIANZHENG_SECRET_KEY": "SECRET_KEY",
    "JIANZHENG_KEY_ENCRYPTION_KEY": "KEY_ENCRYPTION_KEY",
    "JIANZHENG_RPC_URL": "RPC_URL",
    "JIANZHENG_DEPLOYMENT": "DEPLOYMENT",
}


def load(overrides: dict[str, Any] | None) -> dict[str, Any]:
    settings = defaults()
    for variable, name in ENVIRONMENT.items():
        if os.environ.get(variable):
            settings[name] = os.environ[variable]
    settings.update(overrides or {})
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = file_secret(Path(settings["SECRET_KEY_FILE"]), lambda: os.urandom(32).hex())
    # Flask refuses a body over this before reading it; the bid limit plus room for the form fields.
    settings["MAX_CONTENT_LENGTH"] = max(settings["MAX_BID_BYTES"], settings["MAX_ATTACHMENT_BYTES"]) + 64 * 1024
    return settings


def file_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, made with `make` (mode 600) the first time.

    Several processes may start at once on a fresh folder (gunicorn workers, the outbox sender): the
    secret is written under a temporary name and linked into place, so they all end up with the one
    that was linked first and none reads a half-written file.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = make()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(temporary)
    return secret
