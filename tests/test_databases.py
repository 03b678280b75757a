"""The storage layer on real servers: SQLite, PostgreSQL and MariaDB, under concurrency.

PostgreSQL and MariaDB run when FLASK_WECHAT_TEST_POSTGRES_URL / FLASK_WECHAT_TEST_MARIADB_URL
name them (``.ci/run`` sets both); locally the suite skips them when the variable is absent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from flask_wechat.store import store_table
from flask_wechat.testing.fake import FakeUser, FakeWeChat
from flask_wechat.testing.server import FakeWeChatServer

from .apps import User, WeChatAccount, db, make_app
from .conftest import login, visit_wechat
from .private_databases import server_url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}" if request.param == "sqlite" else server_url(request.param)


@pytest.fixture(params=["postgresql", "mariadb"])
def server_database(request: pytest.FixtureRequest) -> str:
    return server_url(request.param)


def fresh_app(base_url: str, database_uri: str, **config: object) -> Flask:
    """An app on ``database_uri`` with empty tables (server databases are shared between tests)."""
    app = make_app(base_url, database_uri, **config)
    with app.app_context():
        db.drop_all()
        store_table.drop(db.engine, checkfirst=True)
        db.create_all()
    return app


@pytest.fixture
def cleanup() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        users = db.session.execute(select(func.count()).select_from(User)).scalar_one()
        accounts = db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one()
    return users, accounts


@pytest.mark.parametrize("nickname", ["TKA💤🙏™ 归零😀", "\x14琦娅🍭", "用户已经注销"])
def test_nickname_round_trips_byte_exact(
    any_database: str,
    fake_wechat: FakeWeChat,
    fake_wechat_server: FakeWeChatServer,
    cleanup: list[Flask],
    nickname: str,
) -> None:
    app = fresh_app(fake_wechat_server.url, any_database)
    cleanup.append(app)
    fake_wechat.users["carol"].nickname = nickname
    trip = login(app.test_client(), user="carol")
    assert trip.response.status_code == 302
    with app.app_context():
        db.session.expire_all()
        stored = db.session.execute(select(WeChatAccount.nickname)).scalar_one()
    assert stored.encode("utf-8") == nickname.encode("utf-8")
    assert counts(app) == (1, 1)


def test_double_callback_behaves_as_one_on_every_database(
    any_database: str, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, cleanup: list[Flask]
) -> None:
    app = fresh_app(fake_wechat_server.url, any_database)
    cleanup.append(app)
    client = app.test_client()
    trip = login(client)
    parts = urlsplit(trip.callback_url)
    assert client.get(f"{parts.path}?{parts.query}").location == "/profile"
    assert len(fake_wechat.calls("access_token")) == 1
    assert counts(app) == (1, 1)


class LiveApp:
    """The app on a real threaded HTTP server, so each login has its own connections."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


def race_logins(app: Flask, users: list[str]) -> list[int]:
    """Take every user to the callback, then fire all callbacks at once; return their statuses."""
    live = LiveApp(app)
    try:
        barrier = threading.Barrier(len(users))

        def one(user: str) -> int:
            with requests.Session() as browser:
                start = browser.get(f"{live.url}/wechat/login?next=/profile", allow_redirects=False, timeout=30)
                answer = visit_wechat(start.headers["Location"], user)
                callback = answer.headers["Location"].replace("http://localhost", live.url)
                barrier.wait(timeout=60)
                done = browser.get(callback, allow_redirects=False, timeout=60)
                if done.status_code == 302:
                    assert browser.get(f"{live.url}/profile", timeout=30).status_code == 200
                return done.status_code

        with ThreadPoolExecutor(max_workers=len(users)) as pool:
            return list(pool.map(one, users))
    finally:
        live.close()


def test_fifty_simultaneous_first_logins_make_one_user(
    server_database: str, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, cleanup: list[Flask]
) -> None:
    app = fresh_app(fake_wechat_server.url, server_database, SERVER_NAME=None)
    cleanup.append(app)
    statuses = race_logins(app, ["alice"] * 50)
    assert statuses == [302] * 50
    assert counts(app) == (1, 1)


def test_two_hundred_simultaneous_logins_of_fifty_users_make_fifty(
    server_database: str, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, cleanup: list[Flask]
) -> None:
    for n in range(50):
        fake_wechat.add_user(FakeUser(f"u{n}", f"用户{n}🎈", f"oUnion{n:023d}"))
    app = fresh_app(fake_wechat_server.url, server_database)
    cleanup.append(app)
    statuses = race_logins(app, [f"u{n % 50}" for n in range(200)])
    assert statuses == [302] * 200
    assert counts(app) == (50, 50)


def test_one_new_person_racing_through_two_apps_is_one_user(
    server_database: str, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, cleanup: list[Flask]
) -> None:
    from flask_wechat.testing.fake import DEMO_MINIPROGRAM_APPID, DEMO_MINIPROGRAM_SECRET

    app = fresh_app(
        fake_wechat_server.url,
        server_database,
        WECHAT_MINIPROGRAM_APPID=DEMO_MINIPROGRAM_APPID,
        WECHAT_MINIPROGRAM_SECRET=DEMO_MINIPROGRAM_SECRET,
    )
    cleanup.append(app)
    live = LiveApp(app)
    try:
        barrier = threading.Barrier(20)

        def web() -> int:
            with requests.Session() as browser:
                start = browser.get(f"{live.url}/wechat/login", allow_redirects=False, timeout=30)
                callback = visit_wechat(start.headers["Location"], "alice").headers["Location"]
                barrier.wait(timeout=60)
                return browser.get(callback.replace("http://localhost", live.url), allow_redirects=False).status_code

        def mini() -> int:
            code = fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, "alice")
            barrier.wait(timeout=60)
            return requests.post(f"{live.url}/wechat/miniprogram/login", json={"code": code}, timeout=60).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            futures = [pool.submit(web if n % 2 else mini) for n in range(20)]
            statuses = sorted(future.result() for future in futures)
    finally:
        live.close()
    assert statuses == [200] * 10 + [302] * 10
    assert counts(app) == (1, 2)
