"""What every view shares: who is asking, how errors are answered (HTML page or JSON), template helpers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Flask, current_app, g, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bidding_app.accounts import role_labels, user_for_token
from bidding_app.db import db
from bidding_app.errors import AppError, NotLoggedIn, TooLarge
from bidding_app.models import User
from contracts.records import Role

csrf = CSRFProtect()
CHINA = dt.timezone(dt.timedelta(hours=8))

HTTP_MESSAGES = {
    400: ("bad_request", "请求格式不正确"),
    404: ("not_found", "页面不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
}


def outbox_wake() -> None:
    """Tell the outbox sender that a new entry was committed, so it need not wait for its next poll."""
    current_app.extensions["jianzheng_outbox"].wake.set()


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(error: AppError) -> ResponseReturnValue:
    if wants_json():
        body: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.field:
            body["field"] = error.field
        return {"error": body}, error.status
    if isinstance(error, NotLoggedIn):
        from flask import redirect, url_for

        return redirect(url_for("auth.login", next=request.path))
    return render_template("error.html", error=error), error.status


def _load_user() -> None:
    g.user = None
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and len(header) < 200:
            g.user = user_for_token(db.session, header[7:].strip())
        return
    user_id = session.get("user_id")
    if isinstance(user_id, int):
        g.user = db.session.get(User, user_id)


def cst(timestamp: int | None) -> str:
    """Unix seconds as Beijing time, the time every tender notice uses."""
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d} 元"


def install_request_hooks(app: Flask) -> None:
    app.before_request(_load_user)

    @app.errorhandler(AppError)
    def _app_error(error: AppError) -> ResponseReturnValue:
        return error_response(error)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge) -> ResponseReturnValue:
        limit = app.config["MAX_BID_BYTES"] // (1024 * 1024)
        return error_response(TooLarge(f"上传内容过大：密封投标文件不能超过 {limit} MB"))

    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> ResponseReturnValue:
        failure = AppError("表单已过期或缺少安全令牌，请刷新页面后重试")
        failure.code = "csrf_failed"
        return error_response(failure)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> ResponseReturnValue:
        code, message = HTTP_MESSAGES.get(error.code or 500, ("http_error", error.name))
        failure = AppError(message)
        failure.code, failure.status = code, error.code or 500
        return error_response(failure)

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        user: User | None = g.get("user")

        def can(*roles: Role) -> bool:
            return user is not None and any(user.organisation.roles & role for role in roles)

        return {"current": user, "can": can, "Role": Role, "role_labels": role_labels,
                "new_submission_key": lambda: uuid.uuid4().hex}

    app.jinja_env.filters["cst"] = cst
    app.jinja_env.filters["yuan"] = yuan

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        )
        return response
