"""The outbox as operators and regulators see it: every chain write, its state, transaction and block."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from bidding_app.accounts import requires
from bidding_app.db import db
from bidding_app.models import OutboxEntry
from contracts.records import Role

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/outbox")
@requires(Role.ADMIN, Role.REGULATOR)
def outbox() -> ResponseReturnValue:
    entries = db.session.scalars(sa.select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(500)).all()
    return render_template("admin/outbox.html", entries=entries)
