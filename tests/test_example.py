"""The demo app in examples/ is real code: log in through it, in fake mode and against a server."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from examples.app import User, WeChatAccount, create_app, db
from flask_wechat.testing.accounts import DEMO_APPID, DEMO_OPEN_APPID, DEMO_SECRET
from flask_wechat.testing.server import FakeWeChatServer

from .conftest import login


def example(tmp_path: Path, **config: object) -> Flask:
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", **config})


WECHAT_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 MicroMessenger/8.0.50(0x1800323c)"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def in_app_login(client: FlaskClient, user: str) -> str:
    """Log in through the fake WeChat mounted inside the demo app itself, as WeChat's browser."""
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    to_wechat = client.get("/profile")  # @login_required sends a stranger straight to WeChat
    authorize = urlsplit(to_wechat.location)
    assert authorize.path == "/_fake_wechat/connect/oauth2/authorize"
    page = client.get(f"{authorize.path}?{authorize.query}")
    assert page.status_code == 200 and 'name="action"' in page.get_data(as_text=True)
    fields = dict(parse_qsl(authorize.query))
    form = {k: fields[k] for k in ("appid", "redirect_uri", "scope", "state")}
    answer = client.post(authorize.path + "/confirm", data={**form, "user": user, "action": "allow"})
    callback = urlsplit(answer.location)
    done = client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 302 and done.location == "/profile"
    return client.get("/profile").get_data(as_text=True)


def test_demo_logs_in_against_its_built_in_fake(tmp_path: Path) -> None:
    app = example(tmp_path)
    fake = app.extensions["wechat_fake"]
    page = in_app_login(app.test_client(), "alice")
    assert fake.users["alice"].nickname in page
    assert fake.openid_for(DEMO_APPID, "alice") in page


def test_demo_keeps_one_user_per_wechat_user(tmp_path: Path) -> None:
    app = example(tmp_path)
    for _ in range(3):
        in_app_login(app.test_client(), "bob")
    in_app_login(app.test_client(), "alice")
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 2
        assert db.session.execute(select(func.count()).select_from(WeChatAccount)).scalar_one() == 2


def test_demo_against_a_wechat_on_loopback(tmp_path: Path, fake_wechat_server: FakeWeChatServer) -> None:
    app = example(
        tmp_path,
        WECHAT_APPID=DEMO_APPID,
        WECHAT_SECRET=DEMO_SECRET,
        WECHAT_OPEN_BASE_URL=fake_wechat_server.url,
        WECHAT_API_BASE_URL=fake_wechat_server.url,
    )
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    trip = login(client, user="carol")
    assert trip.authorize_url.startswith(fake_wechat_server.url + "/connect/oauth2/authorize?")
    page = client.get("/profile").get_data(as_text=True)
    assert "琦娅🍭" in page
    assert client.get("/").status_code == 200


# -- the demo speaks one language per page, the visitor's -------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
#: Words a Chinese page may show in Latin letters: WeChat's own terms and the project's name.
LATIN_TERMS = {
    "ID",
    "AppID",
    "openid",
    "unionid",
    "flask",
    "wechat",
    "Cookie",
    "JS",
    "SDK",
    "wx",
    "config",
    "jsapi",
    "ticket",
}


class _UIText(HTMLParser):
    """The words a page shows, leaving out data (``translate="no"``), styles and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.skipping: list[str] = []
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        skipped = self.skipping or tag in ("style", "script") or ("translate", "no") in attrs
        if skipped and tag not in ("br", "img", "input", "meta", "link"):  # void elements have no end tag
            self.skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.words.append(data)


def ui_text(page: str) -> str:
    parser = _UIText()
    parser.feed(page)
    return " ".join(" ".join(parser.words).split())


def assert_speaks(page: str, language: str) -> None:
    """The page is in ``language`` only: no Chinese on an English page, no English words on a Chinese one."""
    assert f'<html lang="{language}">' in page
    text = ui_text(page)
    if language == "en":
        assert not CJK.search(text), text
    else:
        assert CJK.search(text), text
        assert set(re.findall(r"[A-Za-z]{2,}", text)) <= LATIN_TERMS, text


@pytest.mark.parametrize(("accept", "language"), [("zh-CN,zh;q=0.9", "zh-CN"), ("en-US,en;q=0.9", "en")])
@pytest.mark.parametrize("user_agent", [WECHAT_UA, DESKTOP_UA])
def test_every_demo_page_speaks_the_visitors_language(
    tmp_path: Path, accept: str, language: str, user_agent: str
) -> None:
    app = example(tmp_path)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    pages = ("/", "/jssdk", "/wechat/choose?next=/profile", "/wechat/qr?next=/profile", "/wechat/callback?state=x")
    for path in pages:
        answer = client.get(path)
        if answer.status_code != 302:  # WeChat's browser is sent from the QR page to the in-WeChat login
            assert_speaks(answer.text, language)
    profile = in_app_login(client, "bob")
    assert_speaks(profile, language)
    assert "小明✨🚀" in profile  # a nickname is data, shown as it is


def test_the_demo_offers_qr_login_only_outside_wechat(tmp_path: Path) -> None:
    client = example(tmp_path).test_client()
    assert 'id="qr-link"' in client.get("/", headers={"User-Agent": DESKTOP_UA}).text
    in_wechat = client.get("/", headers={"User-Agent": WECHAT_UA}).text
    assert 'id="qr-link"' not in in_wechat and 'id="profile-link"' in in_wechat


def test_the_profile_names_each_wechat_app_used(tmp_path: Path) -> None:
    app = example(tmp_path)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = in_app_login(client, "alice")
    assert re.search(rf'data-appid="{DEMO_APPID}">\s*<span class="kind">Official Account</span>', page)
    assert 'id="avatar"' in page and 'id="logout"' in page and 'id="bind"' in page


def test_the_demos_requirements_are_the_packages_dependencies() -> None:
    """``make demo`` installs examples/requirements.txt and runs the package from the checkout: nothing more."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    with (root / "pyproject.toml").open("rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    lines = (root / "examples" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == dependencies


def test_a_followers_silent_login_and_their_qr_login_are_one_user(tmp_path: Path) -> None:
    """With WECHAT_FOLLOWER_UNIONID, user/info gives the silent login the unionid the QR login carries."""
    app = example(tmp_path, WECHAT_SCOPE="snsapi_base", WECHAT_FOLLOWER_UNIONID=True)
    fake = app.extensions["wechat_fake"]
    silent = app.test_client()
    profile = in_app_login(silent, "alice")
    assert fake.calls("user_info") and fake.users["alice"].unionid in profile
    desktop = app.test_client()
    desktop.environ_base["HTTP_USER_AGENT"] = DESKTOP_UA
    start = urlsplit(desktop.get("/wechat/login?flow=qr&next=/profile").location)
    state = dict(parse_qsl(start.query))["state"]
    code = fake.issue_code(DEMO_OPEN_APPID, "alice")
    assert desktop.get("/wechat/qr/callback", query_string={"code": code, "state": state}).location == "/profile"
    assert user_id_on(desktop.get("/profile").get_data(as_text=True)) == user_id_on(profile)


def user_id_on(profile: str) -> str:
    match = re.search(r'id="user-id"[^>]*>(\d+)<', profile)
    assert match is not None, profile
    return match.group(1)
