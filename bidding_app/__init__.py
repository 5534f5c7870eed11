"""Jianzheng's remote bid-opening platform (不见面开标): the Flask application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from bidding_app import config as settings
from bidding_app import hall_driver
from bidding_app.chain import init_chain
from bidding_app.db import db
from bidding_app.keys import load_kek
from bidding_app.migrate import upgrade
from bidding_app.outbox import OutboxSender
from bidding_app.web import csrf, install_request_hooks


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, database (migrated), chain link, blueprints and the outbox sender."""
    app = Flask(__name__)
    app.config.update(settings.load(config))
    db.init_app(app)
    csrf.init_app(app)
    if app.config["MIGRATE_AT_START"]:
        with app.app_context():
            upgrade(db.engine, response_window=int(app.config["HALL_RESPONSE_WINDOW"]))
    kek = load_kek(app.config["KEY_ENCRYPTION_KEY"], Path(app.config["KEY_ENCRYPTION_KEY_FILE"]))
    gateway = init_chain(app, kek)

    from bidding_app.blueprints import (
        admin,
        api,
        auth,
        awards,
        bids,
        envelopes,
        guarantees,
        hall,
        key_ceremony,
        regulator,
        tenders,
        witness,
    )

    pages = (auth.bp, tenders.bp, bids.bp, admin.bp, awards.bp, key_ceremony.bp, witness.bp, regulator.bp,
             hall.bp)
    apis = (api.bp, envelopes.bp, awards.api_bp, key_ceremony.api_bp, hall.api_bp)  # token-only: no CSRF
    for blueprint in (*pages, *apis):
        app.register_blueprint(blueprint)
    for blueprint in apis:
        csrf.exempt(blueprint)
    guarantees.register(app, gateway)  # applications, guarantor desk, claims, supervision, guarantor API
    if gateway.deployment is not None:
        # Anyone holding a guarantee letter checks it here, without an account: the page its QR code
        # points to (`/guarantees/verify?number=`) and the JSON API (issue #5).
        from guarantees.web import verification_blueprint

        verification = verification_blueprint(gateway.deployment)
        app.register_blueprint(verification)
        csrf.exempt(verification)
    install_request_hooks(app)

    sender = OutboxSender(app, gateway)
    app.extensions["jianzheng_outbox"] = sender
    sender.after_round = hall_driver.driver_for(app, gateway)  # the opening hall's background work
    if app.config["OUTBOX_THREAD"] and gateway.chain is not None:
        sender.start(float(app.config["OUTBOX_POLL_INTERVAL"]))
    return app


def outbox_sender(app: Flask) -> OutboxSender:
    sender: OutboxSender = app.extensions["jianzheng_outbox"]
    return sender


__all__ = ["create_app", "outbox_sender"]
