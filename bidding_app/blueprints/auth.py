"""Logging in and out, and the home page of each organisation."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from bidding_app.accounts import LoginPolicy, authenticate, current_user, requires
from bidding_app.db import db
from bidding_app.errors import AppError
from bidding_app.models import Tender

bp = Blueprint("auth", __name__)


def login_policy() -> LoginPolicy:
    config = current_app.config
    return LoginPolicy(int(config["LOGIN_MAX_FAILURES"]), int(config["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
                       int(config["LOGIN_WINDOW_SECONDS"]))


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("auth.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        if not username or not password:
            raise AppError("请输入用户名和密码")
        user = authenticate(db.session, username, password, request.remote_addr or "", login_policy())
    except AppError as error:
        return render_template("login.html", error=error, username=username[:64],
                               next=request.form.get("next", "")), error.status
    session.clear()
    session["user_id"] = user.id
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
@requires()
def home() -> ResponseReturnValue:
    user = current_user()
    recent = db.session.scalars(sa.select(Tender).order_by(Tender.id.desc()).limit(10)).all()
    return render_template("home.html", user=user, recent=recent)
