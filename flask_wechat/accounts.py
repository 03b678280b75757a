"""Find, create and update WeChat accounts and their local users.

All database work of a login lives here and takes its SQLAlchemy session
explicitly; views never write SQL. A database failure leaves here as a typed
error that names its cause (a table, a column, a constraint) and never the
values that were sent, so no token reaches a log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, scoped_session

from . import protocol, serverapi
from .crypto import TokenCipher
from .errors import (
    AccountConflictError,
    IdentityTakenError,
    ServiceUnavailableError,
    StorageError,
    WeChatResponseError,
)
from .models import utcnow
from .store import store_table

__all__ = ["Accounts", "Contact", "Grant", "Identity", "LoginRecord"]

log = logging.getLogger(__name__)


#: What WeChat granted for a login: a web token, or a mini program's session.
Grant = protocol.Token | protocol.MiniProgramSession


@dataclass(frozen=True)
class Contact:
    """What a person agreed to share beyond a profile (WeCom's ``snsapi_privateinfo``); empty when unknown."""

    mobile: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    #: As the platform sends it: WeCom's ``"0"`` unknown, ``"1"`` male, ``"2"`` female.
    gender: str = ""


@dataclass(frozen=True)
class Identity:
    """Who WeChat says the visitor is; handed to the app's user factory."""

    appid: str
    openid: str
    unionid: str | None
    nickname: str
    avatar_url: str
    #: The profile as fetched, when the scope allowed fetching it.
    userinfo: protocol.UserInfo | None = None
    #: Whether they follow the Official Account, when ``/cgi-bin/user/info`` was asked (``WECHAT_FOLLOWER_UNIONID``).
    subscribed: bool | None = None
    #: What a WeCom member agreed to share, when they did.
    contact: Contact | None = None
    #: A WeCom member's departments, for ``@wechat.login_allowed`` checks.
    departments: tuple[int, ...] = ()


@dataclass(frozen=True)
class LoginRecord:
    """The outcome of a login: the account row, its user, and whether either is new."""

    account: Any
    user: Any
    new_account: bool
    new_user: bool


#: Tries of a login's transaction when it loses a race with a concurrent one.
_ATTEMPTS = 4
# What a driver says about a failed statement, in the words of SQLite, PostgreSQL and MySQL/MariaDB.
# Only names are taken from it: the rest of a driver's message may quote the row's values.
_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+)|unique constraint \"(\w+)\"|for key '([\w.]+)'", re.I)
_NOT_NULL = re.compile(
    r"NOT NULL constraint failed: ([\w.]+)|null value in column \"(\w+)\"|Column '(\w+)' cannot be null", re.I
)
_TOO_LONG = re.compile(r"for column '(\w+)'|character varying\((\d+)\)", re.I)
_RACE_WORDS = ("deadlock", "serializ", "lock wait timeout", "could not serialize")
#: The account columns sealed with ``WECHAT_TOKEN_KEYS``.
_SEALED_FIELDS = ("access_token", "refresh_token", "session_key", "phone_number", "pure_phone_number", "email")
#: WeChat's avatar hosts (``headimgurl``): they serve https, though older answers say ``http://``.
_AVATAR_HOSTS = frozenset({"thirdwx.qlogo.cn", "wx.qlogo.cn"})


def _first_group(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return None if match is None else next(group for group in match.groups() if group)


def _database_failure(exc: DBAPIError, create_user_hint: bool) -> Exception:
    """The error a failed login transaction becomes (``None`` cases are races, handled by the caller)."""
    text = str(exc.orig)
    if isinstance(exc, IntegrityError):
        column = _first_group(_NOT_NULL, text)
        if column is not None:
            hint = " (a @wechat.user_creator must fill it)" if create_user_hint else ""
            log.error("WeChat login not stored: %s is NOT NULL and was left empty%s", column, hint)
            return StorageError(f"{column} is NOT NULL and was left empty{hint}")
        name = _first_group(_UNIQUE, text) or "a constraint"
        log.error("WeChat login not stored: IntegrityError on %s", name)
        return StorageError(f"the database refused the login's rows: {name}")
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.error("WeChat login not stored: the database is unavailable (%s)", type(exc.orig).__name__)
        return ServiceUnavailableError("database", type(exc.orig).__name__)
    where = _first_group(_TOO_LONG, text)
    log.error("WeChat login not stored: %s%s", type(exc.orig).__name__, f" ({where})" if where else "")
    return ServiceUnavailableError("database", type(exc.orig).__name__)


def _lost_a_race(exc: DBAPIError) -> bool:
    """A clash on the identity's or the person's unique key, a deadlock or a serialization failure."""
    text = str(exc.orig).lower()
    if isinstance(exc, IntegrityError):
        name = (_first_group(_UNIQUE, str(exc.orig)) or "").lower()
        return "openid" in name or "unionid" in name
    return any(word in text for word in _RACE_WORDS)


def _https_avatar(url: str) -> str:
    """``url`` with ``https://`` when it is on WeChat's avatar hosts, so an https page shows it (no mixed content).

    Only WeChat's hosts: another host (the fake WeChat's own http server, say) may serve no https.
    """
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].lower()
    if sep and scheme.lower() == "http" and host in _AVATAR_HOSTS:
        return "https://" + rest
    return url


def _timestamp(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _refresh_deadline() -> datetime:
    return utcnow() + timedelta(seconds=protocol.REFRESH_TOKEN_LIFETIME)


class Accounts:
    """Account persistence for one app's user and account models, on one database session."""

    def __init__(
        self,
        session: Session | scoped_session[Session],
        user_model: type[Any],
        account_model: type[Any],
        cipher: TokenCipher | None = None,
    ) -> None:
        self.session = session
        self.user_model = user_model
        self.account_model = account_model
        self.cipher = cipher
        # Accounts already looked up in this transaction (a login looks once, then writes).
        self._found: dict[tuple[str, str], Any] = {}

    def find(self, appid: str, openid: str) -> Any | None:
        """The account of ``openid`` in ``appid``, or ``None``."""
        if (appid, openid) not in self._found:
            query = select(self.account_model).filter_by(appid=appid, openid=openid)
            try:
                self._found[appid, openid] = self.session.execute(query).unique().scalar_one_or_none()
            except (OperationalError, InterfaceError) as exc:
                self.session.rollback()
                raise ServiceUnavailableError("database", type(exc.orig).__name__) from None
        return self._found[appid, openid]

    def find_by_unionid(self, unionid: str) -> Any | None:
        """Any account of the person with this unionid (their accounts share one user)."""
        query = select(self.account_model).filter_by(unionid=unionid).order_by(self.account_model.id).limit(1)
        return self.session.execute(query).unique().scalar_one_or_none()

    def user_of_unionid(self, unionid: str) -> Any | None:
        """The local user of the person with this unionid: by the user's own column, else by an account.

        The user's column still knows the person after their accounts were deleted.
        """
        if hasattr(self.user_model, "wechat_unionid"):
            # Every account's user gets the person's unionid (see _claim_unionid): the column is enough.
            query = select(self.user_model).filter_by(wechat_unionid=unionid)
            return self.session.execute(query).scalar_one_or_none()
        account = self.find_by_unionid(unionid)
        return None if account is None else account.user

    def load_user(self, user_id: str | None, token_version: int | None = None) -> Any | None:
        """The user for Flask-Login (one primary-key load); ``None`` if unknown or due for re-authorization.

        ``token_version`` (from a mini program's bearer token) must match the user's: logout
        bumps it, which revokes every bearer token issued before.
        """
        try:
            key = int(user_id or "")
        except ValueError:
            return None
        try:
            user = self.session.get(self.user_model, key)
        except (OperationalError, InterfaceError) as exc:
            self.session.rollback()
            raise ServiceUnavailableError("database", type(exc.orig).__name__) from None
        if user is None or getattr(user, "wechat_reauthorization_required", False):
            return None
        if token_version is not None and token_version != (getattr(user, "wechat_token_version", 0) or 0):
            return None
        return user

    def revoke_bearer_tokens(self, user: Any) -> None:
        """Invalidate every mini program bearer token issued to ``user`` so far."""
        user.wechat_token_version = (getattr(user, "wechat_token_version", 0) or 0) + 1
        self.session.commit()

    def accounts_of(self, user: Any, appid: str | None = None) -> list[Any]:
        """The user's WeChat accounts, oldest first, optionally in one app."""
        query = select(self.account_model).filter_by(user_id=user.id).order_by(self.account_model.id)
        if appid is not None:
            query = query.filter_by(appid=appid)
        try:
            return list(self.session.execute(query).unique().scalars())
        except (OperationalError, InterfaceError) as exc:
            self.session.rollback()
            raise ServiceUnavailableError("database", type(exc.orig).__name__) from None

    def release(self) -> None:
        """End the read transaction (before a WeChat call), so no pooled connection waits on WeChat.

        What was looked up stays known: a found account reloads itself when next read, and one
        that was missing, if another login creates it meanwhile, makes this one's insert collide
        and retry (see :meth:`record`).
        """
        if self._session().in_transaction():
            self.session.rollback()

    def record(
        self,
        identity: Identity,
        grant: Grant | None,
        create_user: Callable[[Identity], Any],
        *,
        bind_to: Any = None,
        outcome_row: Mapping[str, Any] | None = None,
    ) -> LoginRecord:
        """Create or update the account of a completed login, creating its user if needed.

        With ``bind_to`` the identity joins that (logged-in) user instead, unless it
        already belongs to someone else (:class:`IdentityTakenError`, nothing changed).
        ``outcome_row`` (a ``wechat_store`` row without its value) is inserted in the same
        transaction, holding the user's id: the login's outcome, for a second callback.
        Two first logins of one person may race; the unique ``(appid, openid)`` and the
        user's unique ``wechat_unionid`` make the loser fail, and its retry finds the winner.
        Any other database failure is a :class:`ServiceUnavailableError` or a
        :class:`StorageError` that names its cause.
        """
        self._check_fits(identity)
        for attempt in range(_ATTEMPTS):
            try:
                record = self._record(identity, grant, create_user, bind_to)
                if outcome_row is not None:
                    self.session.execute(insert(store_table).values(**outcome_row, value=str(record.user.id)))
                self._commit_keeping_objects()
                return record
            except (IdentityTakenError, ServiceUnavailableError):
                self.session.rollback()
                raise
            except DBAPIError as exc:
                self.session.rollback()
                self._found.clear()  # another transaction won: look again
                if not _lost_a_race(exc):
                    raise _database_failure(exc, create_user_hint=bind_to is None) from None
                if attempt == _ATTEMPTS - 1:
                    raise AccountConflictError() from None
                log.info("concurrent login of one WeChat user (%s); retrying", type(exc.orig).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_keeping_objects(self) -> None:
        """Commit without expiring the objects just written.

        Reading ``record.user.id`` after a normal commit would reload it and hold a
        pooled connection for the rest of the request, while the login still needs
        one for the shared store: under load that starves the pool.
        """
        session = self._session()
        expire = session.expire_on_commit
        session.expire_on_commit = False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire

    def _session(self) -> Session:
        """The request's own session behind Flask-SQLAlchemy's scoped proxy."""
        return self.session() if isinstance(self.session, scoped_session) else self.session

    def _column_length(self, name: str) -> int | None:
        column = self.account_model.__table__.c.get(name)
        return getattr(column.type, "length", None) if column is not None else None

    def _check_fits(self, identity: Identity) -> None:
        """An identity too long for its column is a malformed answer, not something to cut."""
        for name in ("appid", "openid", "unionid"):
            value = getattr(identity, name)
            limit = self._column_length(name)
            if value and limit is not None and len(value) > limit:
                raise WeChatResponseError(f"WeChat sent a {name} longer than the {limit} characters it is stored in")

    def _fit(self, name: str, value: str) -> str:
        """``value`` cut to the length of the account column ``name``."""
        limit = self._column_length(name)
        return value[:limit] if limit is not None else value

    def _record(
        self, identity: Identity, grant: Grant | None, create_user: Callable[[Identity], Any], bind_to: Any
    ) -> LoginRecord:
        account = self.find(identity.appid, identity.openid)
        known = self.user_of_unionid(identity.unionid) if identity.unionid and account is None else None
        if bind_to is not None:
            self._check_bindable(identity, account, known, bind_to)
        new_account = account is None
        new_user = False
        if account is None:
            if bind_to is not None:
                user = bind_to
            elif known is not None:
                user = known
            else:
                user = create_user(identity)
                self.session.add(user)
                new_user = True
            account = self.account_model(appid=identity.appid, openid=identity.openid, user=user)
            self.session.add(account)
        if identity.unionid:
            account.unionid = identity.unionid
            self._claim_unionid(account.user, identity.unionid, new_user=new_user)
        if getattr(account.user, "wechat_reauthorization_required", False):
            # The person proved who they are: a dead token no longer forces another WeChat trip.
            account.user.wechat_reauthorization_required = False
        if identity.userinfo is not None:
            self._apply_profile(account, identity.userinfo)
        elif identity.nickname or identity.avatar_url or identity.contact:
            # A profile from elsewhere (WeCom): what is empty now never replaces what was stored.
            self._apply_known(account, identity)
        if isinstance(grant, protocol.Token):
            if new_account or grant.refresh_token != self._open(account.refresh_token):
                # A new authorization starts a new 30-day refresh window.
                account.refresh_token_expires_at = _refresh_deadline()
            self._apply_token(account, grant)
        elif isinstance(grant, protocol.MiniProgramSession):
            account.session_key = self._seal(grant.session_key)
        self.session.flush()
        return LoginRecord(account=account, user=account.user, new_account=new_account, new_user=new_user)

    def _claim_unionid(self, user: Any, unionid: str, *, new_user: bool) -> None:
        """Give ``user`` the person's unionid unless another, older local user already has it.

        A new user always claims it: the unique column then makes two racing first logins of
        one person collide, and the loser's retry finds the winner. An older user that lacks it
        while another has it is one person with two users (made before the apps were bound),
        which is the site's to merge.
        """
        if not hasattr(user, "wechat_unionid") or user.wechat_unionid is not None:
            return
        if new_user:
            user.wechat_unionid = unionid
            return
        holder = self.session.execute(select(self.user_model).filter_by(wechat_unionid=unionid)).scalar_one_or_none()
        if holder is None:
            user.wechat_unionid = unionid
        elif holder is not user:
            log.warning("one WeChat person has two local users (ids %s and %s); merge them", holder.id, user.id)

    @staticmethod
    def _check_bindable(identity: Identity, account: Any, known: Any, user: Any) -> None:
        """Refuse to move a WeChat identity that belongs to another local user."""
        owner = account.user if account is not None else known
        if owner is not None and owner.id != user.id:
            raise IdentityTakenError()
        own_unionid = getattr(user, "wechat_unionid", None)
        if identity.unionid and own_unionid and own_unionid != identity.unionid:
            raise IdentityTakenError()

    def _apply_profile(self, account: Any, info: protocol.UserInfo) -> None:
        account.nickname = self._fit("nickname", info.nickname)
        account.avatar_url = self._fit("avatar_url", _https_avatar(info.headimgurl))
        if info.unionid:
            account.unionid = info.unionid
        account.profile_updated_at = utcnow()

    def _apply_known(self, account: Any, identity: Identity) -> None:
        if identity.nickname:
            account.nickname = self._fit("nickname", identity.nickname)
        if identity.avatar_url:
            account.avatar_url = self._fit("avatar_url", _https_avatar(identity.avatar_url))
        contact = identity.contact
        if contact is not None and contact.mobile:
            account.phone_number = self._seal(contact.mobile)
            account.pure_phone_number = self._seal(contact.mobile)
            account.phone_updated_at = utcnow()
        if contact is not None and contact.email:
            account.email = self._seal(contact.email)
        if contact is not None and contact.gender not in ("", "0"):
            account.gender = contact.gender
        account.profile_updated_at = utcnow()

    def session_key(self, account: Any) -> str | None:
        """A mini program account's ``session_key`` (to decrypt the user's encrypted data)."""
        return self._open(account.session_key)

    def save_phone(self, account: Any, phone: serverapi.PhoneNumber) -> None:
        """Keep the phone number a mini program user shared, the two numbers sealed like the tokens.

        A database outage is a :class:`ServiceUnavailableError`; no error or log line holds the number.
        """
        limit = self._column_length("phone_country_code")
        if limit is not None and len(phone.country_code) > limit:
            raise WeChatResponseError(f"WeChat sent a countryCode longer than the {limit} characters it is stored in")
        account.phone_number = self._seal(phone.phone_number)
        account.pure_phone_number = self._seal(phone.pure_phone_number)
        account.phone_country_code = phone.country_code
        account.phone_updated_at = utcnow()
        try:
            self.session.commit()
        except DBAPIError as exc:
            self.session.rollback()
            # The driver's message may quote the values: only its type is told.
            log.error("phone number not stored: %s", type(exc.orig).__name__)
            raise ServiceUnavailableError("database", type(exc.orig).__name__) from None

    def phone_of(self, account: Any) -> serverapi.PhoneNumber | None:
        """The phone number stored on ``account``; ``None`` when none was shared (or no key opens it)."""
        number, pure = self._open(account.phone_number), self._open(account.pure_phone_number)
        if not number or not pure or not account.phone_country_code:
            return None
        return serverapi.PhoneNumber(number, pure, account.phone_country_code)

    def _seal(self, value: str) -> str:
        return self.cipher.seal(value) if self.cipher else value

    def _open(self, stored: str | None) -> str | None:
        if not stored:
            return None
        return self.cipher.open(stored) if self.cipher else stored

    def _apply_token(self, account: Any, token: protocol.Token) -> None:
        account.access_token = self._seal(token.access_token)
        if token.refresh_token:
            account.refresh_token = self._seal(token.refresh_token)
        account.access_token_expires_at = _timestamp(token.expires_at)
        if token.scope:
            account.scope = self._fit("scope", token.scope)

    def save_token(self, account: Any, token: protocol.Token) -> None:
        """Persist a refreshed token (refresh keeps the refresh window; it never extends it)."""
        self._apply_token(account, token)
        self.session.commit()

    def save_profile(self, account: Any, info: protocol.UserInfo) -> None:
        """Persist a freshly fetched profile."""
        self._apply_profile(account, info)
        self.session.commit()

    def forget_tokens(self, account: Any) -> None:
        """Drop dead tokens: the next use of this account needs a new WeChat authorization."""
        account.access_token = None
        account.refresh_token = None
        account.access_token_expires_at = None
        account.refresh_token_expires_at = None
        if hasattr(account.user, "wechat_reauthorization_required"):
            account.user.wechat_reauthorization_required = True
        self.session.commit()

    def authlib_token(self, account: Any) -> dict[str, Any] | None:
        """The stored token in Authlib's shape, or ``None`` when there is none (or no key opens it)."""
        access_token = self._open(account.access_token)
        if not access_token:
            return None
        expires = account.access_token_expires_at
        token: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "bearer",
            "refresh_token": self._open(account.refresh_token) or "",
            "openid": account.openid,
            "scope": account.scope,
            "expires_at": int(expires.timestamp()) if expires else 0,
        }
        if account.unionid:
            token["unionid"] = account.unionid
        return token

    def rotate_token_keys(self, batch: int = 500) -> int:
        """Re-seal every stored token (and phone number, email) with the first key; return how many accounts changed."""
        if self.cipher is None:
            return 0
        changed, last_id = 0, 0
        while True:
            query = (
                select(self.account_model)
                .where(
                    self.account_model.id > last_id,
                    self.account_model.access_token.is_not(None)
                    | self.account_model.session_key.is_not(None)
                    | self.account_model.phone_number.is_not(None)
                    | self.account_model.email.is_not(None),
                )
                .order_by(self.account_model.id)
                .limit(batch)
            )
            accounts = list(self.session.execute(query).unique().scalars())
            if not accounts:
                return changed
            for account in accounts:
                for name in _SEALED_FIELDS:
                    if getattr(account, name):
                        setattr(account, name, self.cipher.rotate(getattr(account, name)))
                last_id = account.id
            changed += len(accounts)
            self.session.commit()

    @staticmethod
    def refresh_window_open(account: Any, now: datetime | None = None) -> bool:
        """Whether the account's refresh token is still inside WeChat's 30 days."""
        deadline = account.refresh_token_expires_at
        return bool(account.refresh_token) and (deadline is None or deadline > (now or utcnow()))
