"""Several gunicorn workers behave as one: a login started on one worker finishes on another.

Needs PostgreSQL (FLASK_WECHAT_TEST_POSTGRES_URL, set by ``.ci/run``); the only secret the
workers share is SECRET_KEY.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import func, select

from examples.app import User, WeChatAccount, create_app, db
from flask_wechat.store import store_table
from flask_wechat.testing import DEMO_AGENTID, DEMO_CORPID, DEMO_WECOM_SECRET, WECOM_USER_AGENT, FakeWeChat
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_OPEN_APPID, DEMO_OPEN_SECRET, DEMO_SECRET
from flask_wechat.testing.server import FakeWeChatServer

from .conftest import visit_wechat
from .private_databases import server_url
from .test_store import redis_url
from .test_wecom import in_wecom, scan

ROOT = Path(__file__).resolve().parent.parent


def postgres_url() -> str:
    return server_url("postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


@contextmanager
def demo_on_four_workers(database: str, config: dict[str, str], *gunicorn_options: str) -> Iterator[tuple[str, Flask]]:
    """The demo app on four gunicorn workers sharing ``database`` (tables made afresh) and one SECRET_KEY.

    Yields the workers' base URL and an app of the same configuration, for looking at the rows after.
    """
    setup = create_app({"SQLALCHEMY_DATABASE_URI": database, **config})
    with setup.app_context():
        db.drop_all()
        store_table.drop(db.engine, checkfirst=True)
        db.create_all()
        db.session.remove()
        db.engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "FLASK_SECRET_KEY": "one-key-shared-by-every-worker",
        "FLASK_SQLALCHEMY_DATABASE_URI": database,
        **{f"FLASK_{key}": value for key, value in config.items()},
    }
    command = [sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}", *gunicorn_options]
    server = subprocess.Popen([*command, "examples.app:create_app()"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/", server)
        yield base, setup
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_logins_spread_over_four_workers_all_succeed(tmp_path: Path, fake_wechat_server: FakeWeChatServer) -> None:
    database = postgres_url()
    demo_apps = {
        "WECHAT_APPID": DEMO_APPID,
        "WECHAT_SECRET": DEMO_SECRET,
        "WECHAT_OPEN_APPID": DEMO_OPEN_APPID,
        "WECHAT_OPEN_SECRET": DEMO_OPEN_SECRET,
        "WECHAT_OPEN_BASE_URL": fake_wechat_server.url,
        "WECHAT_API_BASE_URL": fake_wechat_server.url,
    }
    access_log = tmp_path / "access.log"
    log_options = ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %({x-login-id}i)s %(U)s %(s)s"]
    with demo_on_four_workers(database, demo_apps, *log_options) as (base, setup):

        def one_login(n: int) -> int:
            with requests.Session() as browser:
                browser.headers["X-Login-Id"] = str(n)
                # Every other login comes from WeChat's browser (Official Account), the rest by QR.
                if n % 2:
                    browser.headers["User-Agent"] = "Mozilla/5.0 (iPhone) Mobile MicroMessenger/8.0.50"
                start = browser.get(f"{base}/wechat/login?next=/profile", allow_redirects=False, timeout=30)
                answer = visit_wechat(start.headers["Location"], ["alice", "bob", "carol"][n % 3])
                done = browser.get(answer.headers["Location"], timeout=30)
                return done.status_code if done.url == f"{base}/profile" else -done.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(one_login, range(40)))

    assert statuses == [200] * 40
    served_by: dict[str, dict[str, str]] = defaultdict(dict)
    for line in access_log.read_text().splitlines():
        pid, login_id, path, _status = line.split(" ")
        if login_id.isdigit():
            served_by[login_id][path] = pid
    assert len(served_by) == 40
    assert len({pid for paths in served_by.values() for pid in paths.values()}) >= 2
    callbacks = {"/wechat/callback", "/wechat/qr/callback"}
    assert all(len(callbacks & set(paths)) == 1 for paths in served_by.values())
    crossed = [
        n
        for n, paths in served_by.items()
        if paths["/wechat/login"] != next(pid for path, pid in paths.items() if path in callbacks)
    ]
    assert crossed, "no login started on one worker and finished on another"
    with setup.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 3
        # alice, bob and carol each came in through both apps: 3 people, 6 identities.
        assert db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one() == 6
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    ("store", "token_endpoint"), [("sqlite", "stable_token"), ("postgresql", "token"), ("redis", "token")]
)
def test_four_workers_hammering_jssdk_config_fetch_one_token_and_one_ticket(
    tmp_path: Path, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, store: str, token_endpoint: str
) -> None:
    database = postgres_url() if store == "postgresql" else f"sqlite:///{tmp_path / 'demo.db'}"
    config = {
        "WECHAT_APPID": DEMO_APPID,
        "WECHAT_SECRET": DEMO_SECRET,
        "WECHAT_OPEN_BASE_URL": fake_wechat_server.url,
        "WECHAT_API_BASE_URL": fake_wechat_server.url,
        "WECHAT_APP_TOKEN_ENDPOINT": token_endpoint,
    }
    if store == "redis":
        config["WECHAT_STORE_URL"] = redis_url()
        redis.Redis.from_url(redis_url()).flushdb()
    with demo_on_four_workers(database, config) as (base, _):
        page = f"{base}/shop?id=7"

        def config_of(n: int) -> dict[str, Any]:
            with requests.Session() as browser:
                answer = browser.get(f"{base}/wechat/jssdk-config", params={"url": page}, timeout=60)
                assert answer.status_code == 200, answer.text
                data: dict[str, Any] = answer.json()
                return data

        with ThreadPoolExecutor(max_workers=16) as pool:
            configs = list(pool.map(config_of, range(200)))

    token_path = "stable_token" if token_endpoint == "stable_token" else "app_token"
    assert len(fake_wechat.calls(token_path)) == 1
    assert len(fake_wechat.calls("jsapi_ticket")) == 1
    assert all(
        fake_wechat.verify_jssdk(DEMO_APPID, c["timestamp"], c["nonceStr"], c["signature"], page) for c in configs
    )


def test_members_logging_in_on_four_workers_at_once_cause_one_gettoken(
    tmp_path: Path, fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer
) -> None:
    """The corp token is fetched by one worker for all, however many members log in at the same moment."""
    database = postgres_url()
    corp = {
        "WECHAT_WECOM_CORPID": DEMO_CORPID,
        "WECHAT_WECOM_AGENTID": str(DEMO_AGENTID),
        "WECHAT_WECOM_SECRET": DEMO_WECOM_SECRET,
        "WECHAT_WECOM_LOGIN_BASE_URL": fake_wechat_server.url,
        "WECHAT_WECOM_API_BASE_URL": fake_wechat_server.url,
        "WECHAT_OPEN_BASE_URL": fake_wechat_server.url,
    }
    with demo_on_four_workers(database, corp) as (base, setup):
        assert fake_wechat.calls("wecom_gettoken") == []  # nobody logged in yet
        ready = threading.Barrier(40)

        def one_login(n: int) -> str:
            who = ("zhangsan", "lisi")[n % 2]
            with requests.Session() as browser:
                # Half inside the WeCom client, half on a desktop through the web login page.
                if n % 4 < 2:
                    browser.headers["User-Agent"] = WECOM_USER_AGENT
                start = browser.get(f"{base}/wechat/login?next=/profile", allow_redirects=False, timeout=30)
                url = start.headers["Location"]
                callback = scan(url, who) if "/wwlogin/sso/login" in url else in_wecom(url, who)
                ready.wait(timeout=60)  # every member comes back at the same moment
                done = browser.get(base + callback, timeout=60)
                found = re.search(r'id="openid"[^>]*>([^<]*)<', done.text)
                return found.group(1) if done.url == f"{base}/profile" and found else f"HTTP {done.status_code}"

        with ThreadPoolExecutor(max_workers=40) as pool:
            landed = list(pool.map(one_login, range(40)))

    assert landed == [("zhangsan", "lisi")[n % 2] for n in range(40)]
    assert len(fake_wechat.calls("wecom_getuserinfo")) == 40
    assert len(fake_wechat.calls("wecom_gettoken")) == 1
    assert fake_wechat.wecom_tokens_issued(DEMO_CORPID, DEMO_AGENTID) == 1
    with setup.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 2
        db.session.remove()
        db.engine.dispose()
