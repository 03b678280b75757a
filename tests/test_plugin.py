"""The pytest plugin, used the way the docs tell users to: their own app and tests, run by pytest.

The app, conftest.py and tests are copied verbatim from docs/testing.md and run in a
separate pytest process, where the plugin is active only through its ``pytest11``
entry point. So the docs' example is tested code, and a broken plugin fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from flask_wechat.testing.fake import DEMO_APPID, FakeUser, FakeWeChat
from flask_wechat.testing.login import login_as
from flask_wechat.testing.pytest_plugin import WeChatLogin

from .apps import db, make_app

pytest_plugins = ("pytester",)

DOCS_PAGE = Path(__file__).parent.parent / "docs" / "testing.md"
_TITLED_BLOCK = re.compile(r'^```python title="([\w.]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)


def docs_files() -> dict[str, str]:
    """The example files of the testing page, by file name."""
    return dict(_TITLED_BLOCK.findall(DOCS_PAGE.read_text(encoding="utf-8")))


def test_docs_example_passes_with_the_installed_plugin(pytester: pytest.Pytester) -> None:
    files = docs_files()
    assert sorted(files) == ["conftest.py", "myapp.py", "test_myapp.py"]
    for name, source in files.items():
        pytester.path.joinpath(name).write_text(source, encoding="utf-8")
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=source_tests(files["test_myapp.py"]))


def source_tests(source: str) -> int:
    return len(re.findall(r"^def test_", source, re.MULTILINE))


def test_the_plugin_fails_the_docs_example_when_the_nickname_is_wrong(pytester: pytest.Pytester) -> None:
    """The example is not vacuous: a wrong expectation in it fails."""
    files = docs_files()
    files["test_myapp.py"] = files["test_myapp.py"].replace('== "Hello 小明✨🚀"', '== "Hello nobody"')
    for name, source in files.items():
        pytester.path.joinpath(name).write_text(source, encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "greets")
    result.assert_outcomes(failed=1, deselected=source_tests(files["test_myapp.py"]) - 1)


@pytest.fixture
def app(database_uri: str) -> Flask:
    app = make_app(None, database_uri)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_wechat_login_uses_this_tests_fake(app: Flask, fake_wechat: FakeWeChat, wechat_login: WeChatLogin) -> None:
    fake_wechat.users["alice"].nickname = "改过的名字"
    client = app.test_client()
    account = wechat_login(client)
    assert account.nickname == "改过的名字"
    assert account.openid == fake_wechat.openid_for(DEMO_APPID, "alice")
    assert account.unionid == fake_wechat.users["alice"].unionid
    assert (
        client.get("/profile").get_data(as_text=True)
        == f"user={account.user_id} openid={account.openid} nickname=改过的名字"
    )


def test_wechat_login_sends_no_request(app: Flask, fake_wechat: FakeWeChat, wechat_login: WeChatLogin) -> None:
    wechat_login(app.test_client(), "bob")
    assert fake_wechat.requests == [] and fake_wechat.connections == 0


def test_login_as_the_same_person_twice_is_one_user(app: Flask) -> None:
    first = login_as(app.test_client(), "carol")
    second = login_as(app.test_client(), "carol")
    assert (second.id, second.user_id) == (first.id, first.user_id)
    assert second.user.id == first.user_id  # the returned row is usable after its session closed


def test_login_as_follows_the_apps_scope_and_user_creator(database_uri: str) -> None:
    from flask_wechat import WeChat

    from .apps import User, WeChatAccount

    wechat = WeChat(user_model=User, account_model=WeChatAccount)
    wechat.user_creator(lambda identity: User(display_name=f"made for {identity.openid}"))
    app = make_app(None, database_uri, wechat=wechat, WECHAT_SCOPE="snsapi_base")
    try:
        account = login_as(app.test_client(), "bob")
        # snsapi_base gets no profile and no unionid, exactly like a real base-scope login.
        assert (account.nickname, account.unionid, account.scope) == ("", None, "snsapi_base")
        assert account.user.display_name == f"made for {account.openid}"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_login_as_unbound_app_has_no_unionid(app: Flask) -> None:
    from flask_wechat.testing.fake import DEMO_SECRET, FakeApp

    fake = FakeWeChat(apps=[FakeApp(DEMO_APPID, DEMO_SECRET, bound=False)])
    assert login_as(app.test_client(), "alice", fake=fake).unionid is None


def test_login_as_refuses_snapshot_and_unknown_users(app: Flask) -> None:
    with pytest.raises(ValueError, match="snapshot"):
        login_as(app.test_client(), "dave")
    with pytest.raises(ValueError, match="unknown fake WeChat user 'zoe'"):
        login_as(app.test_client(), "zoe")


def test_login_as_works_with_strong_session_protection(app: Flask) -> None:
    """Flask-Login's "strong" mode logs out a session whose _id does not match the browser."""
    app.login_manager.session_protection = "strong"  # type: ignore[attr-defined]
    client = app.test_client()
    login_as(client, "alice")
    assert client.get("/profile").status_code == 200
    assert client.get("/profile").status_code == 200


def test_login_as_uses_the_in_app_fake_in_fake_mode(tmp_path: Path) -> None:
    from examples.app import create_app
    from examples.app import db as demo_db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", "WECHAT_APPID": None})
    fake = app.extensions["wechat_fake"]
    fake.add_user(FakeUser("erin", "Erin 🌸", unionid="oErinUnionid0000000000000000"))
    try:
        client = app.test_client()
        account = login_as(client, "erin")
        assert account.openid == fake.openid_for(DEMO_APPID, "erin")
        assert "Erin 🌸" in client.get("/profile").get_data(as_text=True)
    finally:
        with app.app_context():
            demo_db.engine.dispose()


def test_login_as_through_the_website_app_joins_the_same_person(tmp_path: Path) -> None:
    from examples.app import create_app
    from examples.app import db as demo_db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", "WECHAT_APPID": None})
    with app.app_context():
        settings = app.extensions["wechat"].runtime.settings
    try:
        official = login_as(app.test_client(), "bob")
        website = login_as(app.test_client(), "bob", flow="qr")
        assert (official.appid, website.appid) == (settings.official_account.appid, settings.website.appid)
        assert website.openid != official.openid and website.unionid == official.unionid
        assert website.user_id == official.user_id
        assert (website.scope, website.nickname) == ("snsapi_login", "小明✨🚀")
        with pytest.raises(ValueError, match="flow 'mp' is not configured"):
            login_as(app.test_client(), "bob", flow="mp")
    finally:
        with app.app_context():
            demo_db.engine.dispose()


def test_login_as_stores_an_avatar_url_browsers_can_load(tmp_path: Path) -> None:
    from examples.app import create_app
    from examples.app import db as demo_db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", "WECHAT_APPID": None})
    try:
        client = app.test_client()
        account = login_as(client, "alice")
        assert account.avatar_url.startswith("/_fake_wechat/mmopen/")
        assert client.get(account.avatar_url).status_code == 200
    finally:
        with app.app_context():
            demo_db.engine.dispose()
