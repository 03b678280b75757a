"""Outages on the login path: a locked, refusing or vanished database, a stopped Redis, a pool held across WeChat.

Every test drives real logins through the fake WeChat on loopback: the login starts at
``/wechat/login?next=/profile``, the person consents on the fake's page, and the same
browser loads the callback. An outage is a short "try again" page (503 with ``Retry-After``)
that logs no code, token or secret, and logins heal by themselves once the service is back.

PostgreSQL runs when FLASK_WECHAT_TEST_POSTGRES_URL names it, in a schema and under an
``application_name`` of each test's own (other tests share that database); a private
``redis-server`` stands in for Redis. Locally the suite skips them when absent; in CI it fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user, login_required
from flask_sqlalchemy import SQLAlchemy
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from sqlalchemy import String, create_engine, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.test import TestResponse

from flask_wechat import WeChat, WeChatAccountMixin, WeChatUserMixin
from flask_wechat.store import SQLStore, store_table
from flask_wechat.testing.fake import DEMO_APPID, DEMO_OPEN_APPID, DEMO_OPEN_SECRET, DEMO_SECRET, FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import User, WeChatAccount, db, make_app
from .conftest import visit_wechat
from .private_databases import server_url
from .redis_server import RedisServer, running_redis

TOKEN_PATH = "/sns/oauth2/access_token"
USERINFO_PATH = "/sns/userinfo"
#: A ``next`` too long for the state (it goes to the shared store), well under the 1024 limit.
LONG_NEXT = "/profile?q=" + "n" * 300


# -- driving a login -----------------------------------------------------------------------


def begin(client: FlaskClient, path: str = "/wechat/login?next=/profile") -> str:
    """Start a login; return the WeChat authorize URL the app sent the browser to."""
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.location


def consent(authorize_url: str, user: str = "alice") -> str:
    """Consent on the fake WeChat's page; return the callback (path and query) it sends the browser to."""
    answer = visit_wechat(authorize_url, user)
    assert answer.status_code == 302, answer.text
    parts = urlsplit(answer.headers["Location"])
    return f"{parts.path}?{parts.query}"


def code_of(callback: str) -> str:
    found = re.search(r"[?&]code=([^&]+)", callback)
    assert found is not None, callback
    return found.group(1)


def fresh_login(app: Flask, user: str = "alice") -> FlaskClient:
    """A whole login in a new browser, which must succeed and land on a working ``/profile``."""
    client = app.test_client()
    done = client.get(consent(begin(client), user))
    assert done.status_code == 302 and done.location == "/profile", (done.status_code, done.get_data(as_text=True))
    profile = client.get("/profile")
    assert profile.status_code == 200, profile.get_data(as_text=True)
    return client


def assert_try_again(response: TestResponse) -> None:
    """The outage page: 503, a ``Retry-After`` in seconds, and a page for people."""
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True)[:500])
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) > 0, response.headers
    assert response.mimetype == "text/html"


def rows(app: Flask, model: Any = None, database: SQLAlchemy = db) -> int:
    with app.app_context():
        target = store_table if model is None else model
        return int(database.session.execute(select(func.count()).select_from(target)).scalar_one())


def dispose(app: Flask, database: SQLAlchemy = db) -> None:
    with app.app_context():
        database.session.remove()
        database.engine.dispose()


# -- watching the extension's WeChat calls and its logs ------------------------------------


class WireTap(HTTPAdapter):
    """The transport of the extension's WeChat calls (``WECHAT_HTTP_ADAPTERS``), watched.

    Records each call's path with the app's checked-out connections at the moment it was
    sent, and every token WeChat answered with (what must never reach a log).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int | None]] = []
        self.tokens: set[str] = set()
        self.checked_out: Callable[[], int] | None = None
        self.after_answer: Callable[[str], None] | None = None

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        path = urlsplit(request.url or "").path
        self.calls.append((path, self.checked_out() if self.checked_out else None))
        response = super().send(request, *args, **kwargs)
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            self.tokens.update(str(body[k]) for k in ("access_token", "refresh_token") if body.get(k))
        if self.after_answer is not None:
            self.after_answer(path)
        return response

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every record of every logger, down to DEBUG (restored after the test)."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)


def record_text(record: logging.LogRecord) -> str:
    """All a handler could write of a record: message, raw msg and args, exception and stack."""
    parts = [str(record.msg), repr(record.args)]
    with contextlib.suppress(TypeError, ValueError):
        parts.append(record.getMessage())
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    parts += [record.exc_text or "", record.stack_info or ""]
    return "\n".join(parts)


def assert_nothing_secret_logged(records: list[logging.LogRecord], secrets: set[str]) -> None:
    secrets = {s for s in secrets if s}
    leaks = [
        f"{record.name}:{record.levelname} {str(record.msg)[:80]!r} holds {secret[:8]}..."
        for record in records
        for secret in secrets
        if secret in record_text(record)
    ]
    assert not leaks, leaks


def assert_no_statement_logged(records: list[logging.LogRecord]) -> None:
    """Outside SQLAlchemy's own statement log, no record quotes a statement or its parameters."""
    quoting = [
        f"{record.name}:{record.levelname} {str(record.msg)[:80]!r}"
        for record in records
        if not record.name.startswith("sqlalchemy.")
        and any(marker in record_text(record) for marker in ("[parameters:", "[SQL:"))
    ]
    assert not quoting, quoting


def messages(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


# -- services --------------------------------------------------------------------------------


def postgres_url() -> str:
    return server_url("postgresql")


class PrivateSchema:
    """A schema and an ``application_name`` of one test's own on the shared PostgreSQL database.

    Apps made here create their tables in the schema (``search_path``), and
    :meth:`terminate` kills only their connections.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"outages_{uuid.uuid4().hex[:12]}"
        self.admin = create_engine(url)
        self.apps: list[Flask] = []
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.name}"'))

    def app(self, base_url: str, wechat: WeChat | None = None, **config: Any) -> Flask:
        options = {"connect_args": {"application_name": self.name, "options": f"-c search_path={self.name}"}}
        app = make_app(base_url, self.url, wechat, SQLALCHEMY_ENGINE_OPTIONS=options, **config)
        self.apps.append(app)
        return app

    def terminate(self) -> int:
        """End every server connection of this schema's apps; return how many there were."""
        with self.admin.begin() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self.name},
                ).scalar_one()
            )

    def close(self) -> None:
        for app in self.apps:
            dispose(app)
        with self.admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin.dispose()


@pytest.fixture
def postgres() -> Iterator[PrivateSchema]:
    schema = PrivateSchema(postgres_url())
    try:
        yield schema
    finally:
        schema.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


@pytest.fixture
def tap() -> WireTap:
    return WireTap()


# -- 1. SQLite "database is locked" --------------------------------------------------------


def sqlite_lock(path: Path, mode: str) -> sqlite3.Connection:
    """Another process's transaction on the file: IMMEDIATE blocks writers, EXCLUSIVE readers too."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=1.0)
    holder.execute(f"BEGIN {mode}")
    return holder


#: How the file is locked while the callback runs: when, how, and for whom.
LOCKS = {
    "exclusive_before_the_callback": ("before_the_callback", "EXCLUSIVE", False),
    "exclusive_during_the_code_exchange": ("during_the_code_exchange", "EXCLUSIVE", False),
    "immediate_during_the_code_exchange": ("during_the_code_exchange", "IMMEDIATE", False),
    # The failing statement is the UPDATE carrying the new tokens. They are sealed here, so that
    # SQLAlchemy's own statement log (on at DEBUG) shows ciphertext, and a plaintext token in any
    # record can only come from the login path.
    "immediate_during_the_code_exchange_returning_user": ("during_the_code_exchange", "IMMEDIATE", True),
}


class LockedCallback:
    """An app on a SQLite file whose callback runs while another connection locks the file."""

    def __init__(self, base_url: str, path: Path, tap: WireTap, case: str) -> None:
        self.when, self.mode, returning = LOCKS[case]
        self.path = path
        self.tap = tap
        config: dict[str, Any] = {}
        if returning:
            from cryptography.fernet import Fernet

            config["WECHAT_TOKEN_KEYS"] = [Fernet.generate_key().decode()]
        self.app = make_app(
            base_url,
            f"sqlite:///{path}",
            SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 0.2}},
            WECHAT_HTTP_ADAPTERS={base_url: tap},
            **config,
        )
        if returning:
            fresh_login(self.app)
        self.client = self.app.test_client()
        self.callback = consent(begin(self.client))

    def run(self, caplog: pytest.LogCaptureFixture) -> tuple[TestResponse, list[logging.LogRecord], float]:
        """Load the callback under the lock; return the answer, every record logged meanwhile, and the time taken."""
        log_everything(caplog)
        caplog.clear()
        holders: list[sqlite3.Connection] = []
        refused: list[str] = []

        def lock_after_exchange(path_called: str) -> None:
            if path_called == TOKEN_PATH and not holders:
                try:
                    holders.append(sqlite_lock(self.path, self.mode))
                except sqlite3.OperationalError as exc:  # the app itself holds the file during the call
                    refused.append(str(exc))

        if self.when == "before_the_callback":
            holders.append(sqlite_lock(self.path, self.mode))
        else:
            self.tap.after_answer = lock_after_exchange
        try:
            started = time.monotonic()
            response = self.client.get(self.callback)
            elapsed = time.monotonic() - started
        finally:
            self.tap.after_answer = None
            for holder in holders:
                holder.rollback()
                holder.close()
        assert not refused, f"the app held the SQLite file during the WeChat call: {refused}"
        assert holders, "the lock was never taken"
        return response, list(caplog.records), elapsed

    def close(self) -> None:
        dispose(self.app)


@pytest.fixture(params=list(LOCKS))
def locked(
    request: pytest.FixtureRequest, fake_wechat_server: FakeWeChatServer, tmp_path: Path
) -> Iterator[LockedCallback]:
    case = LockedCallback(fake_wechat_server.url, tmp_path / "app.db", WireTap(), request.param)
    yield case
    case.close()


def test_locked_sqlite_is_a_try_again_page_and_logins_heal_without_a_restart(
    locked: LockedCallback, caplog: pytest.LogCaptureFixture
) -> None:
    response, records, elapsed = locked.run(caplog)

    assert_try_again(response)
    assert elapsed < 5, f"the locked database took {elapsed:.1f} s to answer"
    if locked.when != "before_the_callback":
        assert locked.tap.tokens, "WeChat issued no token: the leak check below would be vacuous"
    assert_nothing_secret_logged(records, {*locked.tap.tokens, code_of(locked.callback), DEMO_SECRET})
    assert_no_statement_logged(records)

    users = rows(locked.app, User)
    fresh_login(locked.app, "bob")
    assert rows(locked.app, User) == users + 1


def test_locked_sqlite_on_the_callback_is_logged_by_the_failing_type(
    locked: LockedCallback, caplog: pytest.LogCaptureFixture
) -> None:
    _, records, _ = locked.run(caplog)
    said = [record.getMessage() for record in records if record.levelno >= logging.WARNING]
    # sqlite3.OperationalError: "database is locked" (SQLAlchemy's wrapper has the same name).
    assert any("OperationalError" in message for message in said), said


# -- 2. PostgreSQL refuses the row (DataError) ---------------------------------------------


def test_postgres_data_error_is_a_try_again_page_logged_by_type_and_replayed_on_reload(
    postgres: PrivateSchema,
    fake_wechat: FakeWeChat,
    fake_wechat_server: FakeWeChatServer,
    tap: WireTap,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wechat = WeChat(user_model=User, account_model=WeChatAccount)

    @wechat.user_creator
    def create_user(identity: Any) -> User:
        return User(display_name="x" * 300)  # the column is String(255): PostgreSQL refuses it

    app = postgres.app(fake_wechat_server.url, wechat, WECHAT_HTTP_ADAPTERS={fake_wechat_server.url: tap})
    client = app.test_client()
    callback = consent(begin(client))
    log_everything(caplog)
    caplog.clear()

    response = client.get(callback)
    records = list(caplog.records)

    assert_try_again(response)
    assert tap.tokens, "WeChat issued no token: the leak check below would be vacuous"
    assert_nothing_secret_logged(records, {*tap.tokens, code_of(callback), DEMO_SECRET})
    assert_no_statement_logged(records)
    named = [
        message
        for record, message in zip(records, messages(records), strict=True)
        if record.levelno >= logging.WARNING and ("DataError" in message or "StringDataRightTruncation" in message)
    ]
    assert named, f"no log record names the DataError: {messages(records)}"
    assert rows(app, User) == 0 and rows(app, WeChatAccount) == 0

    started = time.monotonic()
    reload = client.get(callback)
    elapsed = time.monotonic() - started
    assert_try_again(reload)
    assert elapsed < 2, f"the reload waited {elapsed:.1f} s instead of answering with the recorded outcome"
    assert len(fake_wechat.calls("access_token")) == 1


# -- 3. NOT NULL on the app's own user model -----------------------------------------------


class StrictBase(DeclarativeBase):
    pass


strict_db = SQLAlchemy(model_class=StrictBase)


class StrictUser(WeChatUserMixin, strict_db.Model):  # type: ignore[name-defined,misc]
    """An app's user whose ``username`` must be given: no default, NOT NULL."""

    __tablename__ = "strict_users"
    username: Mapped[str] = mapped_column(String(50))


class StrictAccount(WeChatAccountMixin, strict_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "strict_wechat_accounts"
    wechat_user_table = "strict_users"
    wechat_user_class = "StrictUser"


def make_strict_app(base_url: str, database_uri: str, **config: Any) -> Flask:
    """An app on :class:`StrictUser`, with no ``@wechat.user_creator``."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=database_uri,
        WECHAT_APPID=DEMO_APPID,
        WECHAT_SECRET=DEMO_SECRET,
        WECHAT_RETRIES=1,
        WECHAT_OPEN_BASE_URL=base_url,
        WECHAT_API_BASE_URL=base_url,
        **config,
    )
    strict_db.init_app(app)
    WeChat(app, user_model=StrictUser, account_model=StrictAccount)
    with app.app_context():
        strict_db.create_all()

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return f"user={current_user.id}"

    return app


def test_not_null_column_of_the_apps_user_names_the_column_and_is_not_retried_as_a_race(
    fake_wechat_server: FakeWeChatServer, database_uri: str, tap: WireTap, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_strict_app(fake_wechat_server.url, database_uri, WECHAT_HTTP_ADAPTERS={fake_wechat_server.url: tap})
    inserts: list[str] = []

    def count_user_inserts(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.match(r"\s*INSERT INTO \"?strict_users\"?", statement, re.I):
            inserts.append(statement)

    try:
        with app.app_context():
            event.listen(strict_db.engine, "before_cursor_execute", count_user_inserts)
        client = app.test_client()
        callback = consent(begin(client))
        log_everything(caplog)
        caplog.clear()

        response = client.get(callback)
        records = list(caplog.records)

        assert_try_again(response)
        said = messages(records)
        assert any(
            re.search(r"\b(strict_users\.)?username\b", message) and "@wechat.user_creator" in message
            for message in said
        ), f"no log record says username must be filled by a @wechat.user_creator: {said}"
        assert not [message for message in said if "concurrent login" in message]
        assert len(inserts) == 1, inserts
        assert_nothing_secret_logged(records, {*tap.tokens, code_of(callback), DEMO_SECRET})
        assert_no_statement_logged(records)
        assert rows(app, StrictUser, strict_db) == 0
    finally:
        dispose(app, strict_db)


# -- 4. Redis goes down and comes back -----------------------------------------------------


def test_stopped_redis_is_a_try_again_page_and_logins_heal_when_it_is_back(
    redis_server: RedisServer, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = make_app(fake_wechat_server.url, database_uri, WECHAT_STORE_URL=redis_server.url)
    try:
        fresh_login(app)
        waiting = app.test_client()
        callback = consent(begin(waiting))

        redis_server.stop()
        started = time.monotonic()
        assert_try_again(app.test_client().get(f"/wechat/login?next={quote(LONG_NEXT)}"))
        short_start = app.test_client().get("/wechat/login?next=/profile")
        assert short_start.status_code in (302, 503), short_start.status_code  # needs no store: either is fine
        assert_try_again(waiting.get(callback))
        assert time.monotonic() - started < 10

        redis_server.start()  # the same port, empty
        fresh_login(app, "bob")
        long_next = app.test_client()
        done = long_next.get(consent(begin(long_next, f"/wechat/login?next={quote(LONG_NEXT)}")))
        assert done.status_code == 302 and done.location == LONG_NEXT
    finally:
        dispose(app)


# -- 5. PostgreSQL ends the app's connections ----------------------------------------------


def test_terminated_postgres_connections_cost_at_most_one_try_again_page(
    postgres: PrivateSchema, fake_wechat_server: FakeWeChatServer
) -> None:
    app = postgres.app(fake_wechat_server.url)
    alice = fresh_login(app)

    assert postgres.terminate() >= 1
    first = alice.get("/profile")  # the user loader meets the dead connection
    if first.status_code != 200:
        assert_try_again(first)
    assert alice.get("/profile").status_code == 200

    assert postgres.terminate() >= 1
    bob = app.test_client()
    callback = consent(begin(bob), "bob")
    landed = bob.get(callback)  # the callback meets the dead connection
    if landed.status_code != 302:
        assert_try_again(landed)
    else:
        assert landed.location == "/profile"
    fresh_login(app, "carol")


# -- 6. No pooled connection waits on WeChat -----------------------------------------------


class CheckedOutConnections:
    """How many connections of an engine's pool are checked out right now (pool events)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, *args: Any) -> None:
        self.count += 1

    def _checkin(self, *args: Any) -> None:
        self.count -= 1


def qr_widget_callback(client: FlaskClient, base_url: str, user: str) -> str:
    """Open the site's embedded-QR page, scan it as ``user``; return the callback."""
    page = client.get("/wechat/qr?next=/profile").get_data(as_text=True)
    found = re.search(r"new WxLogin\((.*?)\);", page, re.S)
    assert found is not None, page
    options = json.loads(found.group(1))
    authorize_url = (
        f"{base_url}/connect/qrconnect?appid={options['appid']}&redirect_uri={options['redirect_uri']}"
        f"&response_type=code&scope=snsapi_login&state={options['state']}#wechat_redirect"
    )
    return consent(authorize_url, user)


def profile_user(client: FlaskClient) -> str:
    page = client.get("/profile").get_data(as_text=True)
    found = re.match(r"user=(\d+) ", page)
    assert found is not None, page
    return found.group(1)


@pytest.mark.parametrize("scenario", ["first_login", "returning_login", "binding", "logged_in_login_of_another"])
def test_no_pooled_connection_is_checked_out_during_a_wechat_call(
    postgres: PrivateSchema, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, tap: WireTap, scenario: str
) -> None:
    base = fake_wechat_server.url
    app = postgres.app(
        base,
        WECHAT_OPEN_APPID=DEMO_OPEN_APPID,
        WECHAT_OPEN_SECRET=DEMO_OPEN_SECRET,
        WECHAT_PROFILE_MAX_AGE=0,
        WECHAT_HTTP_ADAPTERS={base: tap},
    )

    @app.before_request
    def load_user_first() -> None:
        # Like many apps (g.user, a nav bar): the user loader runs before any view.
        _ = current_user.is_authenticated

    with app.app_context():
        checked_out = CheckedOutConnections(db.engine)
    tap.checked_out = lambda: checked_out.count

    if scenario in ("first_login", "returning_login"):
        if scenario == "returning_login":
            fresh_login(app)
        tap.calls.clear()
        client = app.test_client()
        done = client.get(consent(begin(client)))
        expected_accounts = 1
    elif scenario == "binding":
        client = fresh_login(app)  # through the website (QR) app
        tap.calls.clear()
        done = client.get(consent(begin(client, "/wechat/bind?flow=oa&next=/profile")))
        expected_accounts = 2
    else:
        client = fresh_login(app)
        alice = profile_user(client)
        tap.calls.clear()
        done = client.get(qr_widget_callback(client, base, "bob"))
        expected_accounts = 2

    assert done.status_code == 302 and done.location == "/profile", (done.status_code, done.get_data(as_text=True))
    assert tap.paths() == [TOKEN_PATH, USERINFO_PATH], tap.calls
    held = [(path, count) for path, count in tap.calls if count != 0]
    assert not held, f"pooled connections checked out while calling WeChat: {held}"
    assert rows(app, WeChatAccount) == expected_accounts
    if scenario == "logged_in_login_of_another":
        assert profile_user(client) != alice
    assert checked_out.count == 0


# -- 7. The SQL store stays bounded --------------------------------------------------------


def test_sql_store_holds_only_live_logins_after_ten_thousand_anonymous_starts(
    fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = make_app(fake_wechat_server.url, database_uri)
    try:
        with app.app_context():

            @event.listens_for(db.engine, "connect")
            def fast_writes(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.execute("PRAGMA synchronous=OFF")

            db.engine.dispose()
            store = app.extensions["wechat"].runtime.store
        assert isinstance(store, SQLStore)
        bot = app.test_client(use_cookies=False)
        start = f"/wechat/login?next={quote(LONG_NEXT)}"

        for _ in range(10_000):
            response = bot.get(start)
            assert response.status_code == 302, response.status_code
        assert rows(app) == 10_000  # every start is alive: each next must be kept

        now = time.time
        with app.app_context():
            store._clock = lambda: now() + 3600
        assert bot.get(start).status_code == 302
        assert rows(app) == 1  # only the last start is still alive
    finally:
        dispose(app)
