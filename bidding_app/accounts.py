"""Organisations, users, logins and who may do what.

Passwords are hashed with scrypt (werkzeug). Failed logins are kept in the database and limit further
attempts per user name and per address. API tokens are random and stored only as their SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import g
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bidding_app.errors import Forbidden, LoginFailed, NotLoggedIn, TooManyLoginAttempts
from bidding_app.keys import encrypt_key
from bidding_app.models import LoginAttempt, Organisation, User, now
from contracts.deploy import ConsortiumConfig
from contracts.records import Role

ROLE_LABELS = {
    Role.ADMIN: "平台管理",
    Role.TENDERER: "招标人",
    Role.AGENCY: "招标代理机构",
    Role.BIDDER: "投标人",
    Role.GUARANTOR: "担保机构",
    Role.WITNESS: "见证机构",
    Role.REGULATOR: "监管部门",
}


# werkzeug's scrypt at its own cost (n=2**15, r=8, p=1): about 0.1 s per hash or check, by design. The
# method is written into each hash, so a check always uses the cost the hash was made with.
PASSWORD_HASH_METHOD = "scrypt"


def hash_password(password: str, method: str = PASSWORD_HASH_METHOD) -> str:
    return generate_password_hash(password, method=method)


def role_labels(roles: int) -> list[str]:
    return [label for role, label in ROLE_LABELS.items() if roles & role]


def has_role(user: User, role: Role) -> bool:
    return bool(user.organisation.roles & role)


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int  # per user name
    max_failures_per_address: int  # per client address (higher: several people may share one)
    window_seconds: int


def authenticate(session: Session, username: str, password: str, remote_addr: str, policy: LoginPolicy) -> User:
    """The user if the password is right and the rate limit not reached; failures are recorded.

    The attempt is recorded as a failure *before* the limit is counted and the password checked, and
    taken back when the limit refuses it or the password is right. Counting first and recording after
    the (slow) password check would let attempts running at the same time, in several workers, all
    pass the count; this way each one counts the others, and at most the limit are ever checked.
    """
    attempt = LoginAttempt(username=username[:64], remote_addr=remote_addr[:64], at=now())
    session.add(attempt)
    session.commit()
    since = attempt.at - policy.window_seconds
    recent = sa.select(sa.func.count(LoginAttempt.id)).where(LoginAttempt.at >= since)
    by_name = session.scalar(recent.where(LoginAttempt.username == attempt.username)) or 0
    by_address = session.scalar(recent.where(LoginAttempt.remote_addr == attempt.remote_addr)) or 0
    if by_name > policy.max_failures or by_address > policy.max_failures_per_address:  # this one included
        _take_back(session, attempt)
        raise TooManyLoginAttempts()
    user = session.scalars(sa.select(User).where(User.username == username)).first()
    if user is None or not check_password_hash(user.password_hash, password):
        raise LoginFailed()
    _take_back(session, attempt)
    return user


def _take_back(session: Session, attempt: LoginAttempt) -> None:
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
    session.commit()


def issue_api_token(session: Session, user: User) -> str:
    token = secrets.token_urlsafe(32)
    user.api_token_hash = hashlib.sha256(token.encode()).hexdigest()
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return session.scalars(sa.select(User).where(User.api_token_hash == digest)).first()


def current_user() -> User:
    user: User | None = g.get("user")
    if user is None:
        raise NotLoggedIn()
    return user


F = TypeVar("F", bound=Callable[..., Any])


def requires(*roles: Role) -> Callable[[F], F]:
    """A view for logged-in users of an organisation holding one of `roles` (any role if none given)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if roles and not any(has_role(user, role) for role in roles):
                raise Forbidden()
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def seed_consortium(session: Session, config: ConsortiumConfig, kek: bytes, password: str,
                    hash_method: str = PASSWORD_HASH_METHOD) -> list[User]:
    """Create (or update) one organisation and one user per consortium member, with its key encrypted.

    The user name is the organisation's identifier (统一社会信用代码). Existing rows are kept and their
    roles and keys brought up to date, so the command can be run again after the config changes.
    `hash_method` is for the tests, whose hundreds of throwaway databases and logins would spend
    minutes on the full scrypt cost.
    """
    users = []
    # One salted hash for the batch: they share the initial password.
    password_hash = hash_password(password, hash_method)
    for member in config.members:
        organisation = session.scalars(
            sa.select(Organisation).where(Organisation.identifier == member.identifier)
        ).first()
        if organisation is None:
            organisation = Organisation(identifier=member.identifier)
            session.add(organisation)
        organisation.name = member.name
        organisation.roles = int(member.roles)
        organisation.address = member.signer.address
        organisation.encrypted_key = encrypt_key(kek, member.identifier, bytes(member.signer.account.key))
        session.flush()
        user = session.scalars(sa.select(User).where(User.username == member.identifier)).first()
        if user is None:
            user = User(username=member.identifier, organisation_id=organisation.id, display_name=member.name,
                        password_hash=password_hash)
            session.add(user)
        users.append(user)
    session.commit()
    return users
