"""The login path as a maintainer sees it: few modules, no core import of the fake, prefixes kept, tokens revoked."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

import flask_wechat
from flask_wechat.testing import FakeWeChat
from flask_wechat.testing.accounts import (
    DEMO_APPID,
    DEMO_MINIPROGRAM_APPID,
    DEMO_MINIPROGRAM_SECRET,
)
from flask_wechat.testing.server import FakeWeChatServer

from .apps import make_app
from .conftest import login, logout, visit_wechat

PACKAGE = Path(flask_wechat.__file__).parent


def package_modules_run_by(call: Any) -> set[str]:
    """The flask_wechat modules (outside testing/) whose code runs during ``call()``."""
    seen: set[str] = set()
    root, testing = str(PACKAGE), str(PACKAGE / "testing")

    def profile(frame: FrameType, event: str, arg: object) -> None:
        filename = frame.f_code.co_filename
        if event == "call" and filename.startswith(root) and not filename.startswith(testing):
            seen.add(Path(filename).relative_to(PACKAGE).as_posix())

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen


#: What a callback may run: the view, the login's steps, its flow (the one seam of a login kind), this
#: browser's part, the store, the rows, and WeChat's dialect. A ninth module on the path is a design change.
CALLBACK_MODULES = {
    "views.py",
    "login.py",
    "flows.py",
    "loginstate.py",
    "store.py",
    "accounts.py",
    "models.py",
    "compliance.py",
    "protocol.py",
}


def test_a_callback_runs_code_in_nine_modules_at_most(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    first = client.get("/wechat/login?next=/profile")
    callback = visit_wechat(first.location, "alice").headers["Location"]
    parts = urlsplit(callback)
    modules = package_modules_run_by(lambda: client.get(f"{parts.path}?{parts.query}"))
    assert client.get("/profile").status_code == 200
    assert modules <= CALLBACK_MODULES, " ".join(sorted(modules - CALLBACK_MODULES))

    # Logged in already (the user loader runs) and a bearer header (the request loader looks at it).
    again = client.get("/wechat/login?flow=oa&next=/profile")
    assert again.status_code == 302 and again.location == "/profile"
    with client.session_transaction() as sess:
        sess.pop("_user_id")
    second = visit_wechat(client.get("/wechat/login?next=/profile").location, "bob").headers["Location"]
    parts = urlsplit(second)
    modules = package_modules_run_by(
        lambda: client.get(f"{parts.path}?{parts.query}", headers={"Authorization": "Bearer x"})
    )
    assert modules <= CALLBACK_MODULES, sorted(modules - CALLBACK_MODULES)


def test_no_module_outside_testing_imports_the_fake() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [module] + [f"{module}.{alias.name}" for alias in node.names]
                if node.level:
                    names += [alias.name for alias in node.names] + [module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            assert not any(name.split(".")[-1] == "testing" or ".testing" in name for name in names), (
                f"{path.name} imports the fake: {names}"
            )


# -- served under a path prefix --------------------------------------------------------------


@pytest.fixture
def prefixed(fake_wechat_server: FakeWeChatServer, database_uri: str) -> Flask:
    app = make_app(fake_wechat_server.url, database_uri)
    app.wsgi_app = DispatcherMiddleware(Response("not here", 404), {"/app": app.wsgi_app})  # type: ignore[method-assign]
    return app


def test_prefix_is_kept_in_redirect_uri_next_and_landing(prefixed: Flask) -> None:
    client = prefixed.test_client()
    to_wechat = client.get("/app/profile")
    query = dict(parse_qsl(urlsplit(to_wechat.location).query))
    assert query["redirect_uri"] == "http://localhost/app/wechat/callback"
    callback = urlsplit(visit_wechat(to_wechat.location, "alice").headers["Location"])
    assert callback.path == "/app/wechat/callback"
    landing = client.get(f"{callback.path}?{callback.query}")
    assert landing.status_code == 302 and landing.location == "/app/profile"
    assert client.get("/app/profile").status_code == 200


def test_prefix_is_kept_in_the_error_pages_retry_link(prefixed: Flask) -> None:
    client = prefixed.test_client()
    page = client.get("/app/wechat/callback?state=nonsense&code=x")
    assert page.status_code == 400
    assert 'href="/app/wechat/login?next=/app/"' in page.get_data(as_text=True)


def test_prefix_is_kept_by_the_logout_form(prefixed: Flask) -> None:
    client = prefixed.test_client()
    page = client.get("/app/wechat/logout").get_data(as_text=True)
    assert 'action="/app/wechat/logout"' in page and 'name="next" value="/app/"' in page


# -- mini program bearer tokens --------------------------------------------------------------

MINI = {"WECHAT_MINIPROGRAM_APPID": DEMO_MINIPROGRAM_APPID, "WECHAT_MINIPROGRAM_SECRET": DEMO_MINIPROGRAM_SECRET}


def bearer_app(url: str, database_uri: str, **config: Any) -> Flask:
    app = make_app(url, database_uri, WECHAT_MINIPROGRAM_AUTH="token", **MINI, **config)
    app.add_url_rule("/me", "me", lambda: "me" if flask_login_user() else ("nobody", 401))
    return app


def flask_login_user() -> bool:
    from flask_login import current_user

    return bool(current_user.is_authenticated)


def bearer_login(app: Flask, fake_wechat: FakeWeChat, user: str = "carol") -> str:
    answer = app.test_client().post(
        "/wechat/miniprogram/login", json={"code": fake_wechat.issue_js_code(DEMO_MINIPROGRAM_APPID, user)}
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token: str = answer.get_json()["token"]
    return token


def me(client: FlaskClient, token: str) -> int:
    return client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_logout_revokes_the_users_bearer_tokens(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = bearer_app(fake_wechat_server.url, database_uri)
    client = app.test_client()
    first, second = bearer_login(app, fake_wechat), bearer_login(app, fake_wechat)
    assert me(client, first) == me(client, second) == 200
    out = client.post("/wechat/logout", headers={"Authorization": f"Bearer {first}"})
    assert out.status_code == 200 and out.get_json() == {"logged_out": True}
    assert me(client, first) == me(client, second) == 401
    assert me(client, bearer_login(app, fake_wechat)) == 200


def test_a_browser_logout_revokes_the_same_users_bearer_tokens(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    app = bearer_app(fake_wechat_server.url, database_uri)
    token = bearer_login(app, fake_wechat, "alice")
    browser = app.test_client()
    login(browser, user="alice")  # the Official Account login of the same person: the same user
    logout(browser)
    assert me(app.test_client(), token) == 401


def test_bearer_tokens_follow_secret_key_fallbacks(
    fake_wechat: FakeWeChat, fake_wechat_server: FakeWeChatServer, database_uri: str
) -> None:
    old = bearer_app(fake_wechat_server.url, database_uri, SECRET_KEY="old-key-0123456789")
    token = bearer_login(old, fake_wechat)
    rotated = bearer_app(
        fake_wechat_server.url,
        database_uri,
        SECRET_KEY="new-key-0123456789",
        SECRET_KEY_FALLBACKS=["old-key-0123456789"],
    )
    assert me(rotated.test_client(), token) == 200
    rotated_out = bearer_app(fake_wechat_server.url, database_uri, SECRET_KEY="new-key-0123456789")
    assert me(rotated_out.test_client(), token) == 401


# -- odd answers from WeChat -----------------------------------------------------------------

ODD_TOKENS = [
    b'{"access_token":"AT","refresh_token":"RT","openid":"oOdd1","scope":"snsapi_base","expires_in":1e400}',
    b'{"access_token":"AT","refresh_token":"RT","openid":"oOdd2","scope":"snsapi_base","expires_in":-1000000000000}',
    b'{"errcode":1e400,"errmsg":"what"}',
    b'{"errcode":"NaN"}',
]


@pytest.mark.parametrize("body", ODD_TOKENS)
def test_odd_token_answers_never_reach_a_500(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat, body: bytes
) -> None:
    fake_wechat.break_next("access_token", body)
    trip = login(client)
    expected = 302 if b"access_token" in body else 502
    assert trip.response.status_code == expected, trip.response.get_data(as_text=True)


def test_lone_surrogate_and_overlong_nickname_are_stored_safely(
    app: Flask, client: FlaskClient, fake_wechat: FakeWeChat
) -> None:
    openid = fake_wechat.openid_for(DEMO_APPID, "alice")
    fake_wechat.break_next(
        "userinfo",
        json.dumps({"openid": openid, "nickname": "\ud800bad" + "长" * 400, "headimgurl": ""}).encode(),
    )
    trip = login(client)
    assert trip.response.status_code == 302
    page = client.get("/profile").get_data(as_text=True)
    assert "\ufffdbad" in page


def test_security_doc_names_only_tests_that_exist() -> None:
    """docs/security.md maps each attack to its tests; a renamed or deleted test must show up here."""
    root = PACKAGE.parent
    text = (root / "docs" / "security.md").read_text(encoding="utf-8")
    named: list[tuple[str, str]] = []
    for cell in text.split("|"):
        module = None
        for ref in cell.replace("`", "").split(","):
            ref = ref.strip()
            if "::" not in ref:
                continue
            path, name = ref.split("::")
            module = path or module
            assert module, ref
            named.append((module, name))
    assert len(named) > 40
    for module, name in named:
        source = (root / module).read_text(encoding="utf-8")
        assert f"def {name}(" in source, f"docs/security.md names {module}::{name}, which does not exist"


@pytest.mark.parametrize("returning", [False, True])
@pytest.mark.parametrize("scope", ["snsapi_userinfo", "snsapi_base"])
def test_a_login_looks_its_account_up_once(
    fake_wechat_server: FakeWeChatServer, database_uri: str, returning: bool, scope: str
) -> None:
    from sqlalchemy import event

    from .apps import db

    app = make_app(fake_wechat_server.url, database_uri, WECHAT_SCOPE=scope)
    if returning:
        login(app.test_client(), user="bob")
    client = app.test_client()
    callback = urlsplit(visit_wechat(client.get("/wechat/login?next=/profile").location, "bob").headers["Location"])
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    account_reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM wechat_accounts" in s]
    assert len(account_reads) == 1, statements
