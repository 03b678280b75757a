"""``flask wechat check`` and ``flask wechat accounts``, run through Flask's CLI runner."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from examples.app import User as DemoUser
from examples.app import create_app
from examples.app import db as demo_db
from flask_wechat import protocol
from flask_wechat.cli import _width, wechat_cli
from flask_wechat.config import UnknownSettingWarning
from flask_wechat.testing.fake import DEMO_APPID
from flask_wechat.testing.login import login_as
from flask_wechat.testing.pytest_plugin import WeChatLogin

from .apps import User, WeChatAccount, db, make_app

STRONG_KEY = "k3y-for-tests-only-0123456789abcdef"  # long and not a known placeholder


@pytest.fixture
def apps(database_uri: str) -> Iterator[Callable[..., Flask]]:
    """Build apps from tests/apps.py on this test's SQLite file; their engines are closed afterwards."""
    made: list[Flask] = []

    def build(**config: Any) -> Flask:
        app = make_app(None, database_uri, **{"SECRET_KEY": STRONG_KEY, **config})
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            db.engine.dispose()


def run(app: Flask, *args: str, **kwargs: Any) -> Result:
    return app.test_cli_runner().invoke(wechat_cli, list(args), **kwargs)


def fact(output: str, label: str) -> str | None:
    """The value ``check`` printed for ``label``, or ``None``."""
    lines = (line.strip() for line in output.splitlines())
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{label}:")), None)


def lines_of(kind: str, output: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(f"{kind}: ")]


# -- check ------------------------------------------------------------------------------------


def test_check_prints_the_exact_urls_for_a_production_config(apps: Callable[..., Flask]) -> None:
    app = apps(SERVER_NAME="login.example.com", PREFERRED_URL_SCHEME="https")
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    callback = "https://login.example.com/wechat/callback"
    authorize = protocol.build_authorize_url(
        protocol.DEFAULT_OPEN_BASE_URL,
        DEMO_APPID,
        callback,
        protocol.SCOPE_USERINFO,
        "STATE",
        extra=(("connect_redirect", "1"),),
    )
    assert fact(result.output, "Callback URL") == callback
    assert fact(result.output, "Authorize URL") == authorize
    assert fact(result.output, "Console domain").startswith("login.example.com   (公众号后台")
    assert lines_of("warning", result.output) == []
    assert lines_of("error", result.output) == []
    assert "0 error(s), 0 warning(s)" in result.output


def test_check_honours_the_url_prefix_and_scope(apps: Callable[..., Flask]) -> None:
    app = apps(SERVER_NAME="login.example.com", WECHAT_URL_PREFIX="/auth/wx", WECHAT_SCOPE="snsapi_base")
    result = run(app, "check")
    assert fact(result.output, "Callback URL") == "http://login.example.com/auth/wx/callback"
    assert "redirect_uri=http%3A%2F%2Flogin.example.com%2Fauth%2Fwx%2Fcallback&response_type=code" in result.output
    assert "&scope=snsapi_base&state=STATE&connect_redirect=1#wechat_redirect" in result.output


def test_check_warns_about_what_breaks_logins_in_production(apps: Callable[..., Flask]) -> None:
    app = apps(SERVER_NAME="192.168.1.20:8080", SECRET_KEY="change-me", SESSION_COOKIE_SAMESITE="Strict", TESTING=False)
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    warnings = "\n".join(lines_of("warning", result.output))
    assert "placeholder 'change-me'" in warnings
    assert "SESSION_COOKIE_SAMESITE is 'Strict'" in warnings
    assert "carries port 8080" in warnings
    assert "host 192.168.1.20 is not a domain" in warnings
    assert "the callback URL is http" in warnings
    assert "0 error(s), 5 warning(s)" in result.output


def test_check_accepts_http_while_debugging_or_testing(
    apps: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    testing = apps(SERVER_NAME="login.example.com", TESTING=True)
    assert lines_of("warning", run(testing, "check").output) == []
    debugging = apps(SERVER_NAME="login.example.com")
    monkeypatch.setenv("FLASK_DEBUG", "1")  # what `flask --debug wechat check` sets
    assert lines_of("warning", run(debugging, "check").output) == []


def test_check_without_server_name_says_so_and_previews_a_host(apps: Callable[..., Flask]) -> None:
    app = apps(PREFERRED_URL_SCHEME="https")
    unknown = run(app, "check")
    assert unknown.exit_code == 0
    assert fact(unknown.output, "Callback URL") == "https://<request host>/wechat/callback"
    assert "Authorize URL" not in unknown.output
    assert any("SERVER_NAME is not set" in text for text in lines_of("warning", unknown.output))
    preview = run(app, "check", "--host", "wx.example.org")
    assert fact(preview.output, "Callback URL") == "https://wx.example.org/wechat/callback"
    assert fact(preview.output, "Console domain").startswith("wx.example.org ")
    assert lines_of("warning", preview.output) == []


def test_check_warns_when_wechat_is_replaced(apps: Callable[..., Flask]) -> None:
    app = make_app("http://127.0.0.1:9", "sqlite://", SECRET_KEY=STRONG_KEY, SERVER_NAME="login.example.com")
    result = run(app, "check")
    assert fact(result.output, "Authorize URL").startswith("http://127.0.0.1:9/connect/oauth2/authorize?")
    assert any("WeChat is replaced by http://127.0.0.1:9" in text for text in lines_of("warning", result.output))


def test_check_errors_exit_1(apps: Callable[..., Flask]) -> None:
    app = apps(SERVER_NAME="login.example.com")
    app.config["SECRET_KEY"] = ""  # init_app refuses an app without one; a later override still counts
    result = run(app, "check")
    assert result.exit_code == 1
    assert lines_of("error", result.output) == [
        "SECRET_KEY is not set: every login fails. Set one random key shared by all workers."
    ]


def test_check_reports_a_config_error_at_start_up_without_a_traceback(database_uri: str) -> None:
    def factory() -> Flask:
        return make_app(None, database_uri, WECHAT_APPID=None)

    result = CliRunner().invoke(wechat_cli, ["check"], obj=ScriptInfo(create_app=factory))
    assert result.exit_code == 1
    assert "error: the app does not start: WECHAT_APPID must be set to a non-empty string" in result.output
    assert "Traceback" not in result.output


def test_check_on_the_demo_reports_a_missing_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_WECHAT_APPID", "wx1234567890abcdef")  # a real AppID, but no FLASK_WECHAT_SECRET

    def factory() -> Flask:
        return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}"})

    result = CliRunner().invoke(wechat_cli, ["check"], obj=ScriptInfo(create_app=factory))
    assert result.exit_code == 1
    [error] = lines_of("error", result.output)
    assert error.startswith("the app does not start: WECHAT_SECRET must be set to a non-empty string")


def test_check_reports_a_malformed_appid_as_an_error(database_uri: str) -> None:
    def factory() -> Flask:
        return make_app(None, database_uri, WECHAT_APPID="wx123")

    result = CliRunner().invoke(wechat_cli, ["check"], obj=ScriptInfo(create_app=factory))
    assert result.exit_code == 1
    [error] = lines_of("error", result.output)
    assert error.startswith("the app does not start: WECHAT_APPID must be 'wx' followed by 16 lowercase hex")
    assert "1 error(s)" in result.output


def test_check_reports_a_misspelt_key_as_a_warning(apps: Callable[..., Flask]) -> None:
    with pytest.warns(UnknownSettingWarning):
        app = apps(SERVER_NAME="login.example.com", PREFERRED_URL_SCHEME="https", WECHAT_APP_ID="wx0123456789abcdef")
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    assert lines_of("warning", result.output) == [
        "WECHAT_APP_ID is not a flask-wechat setting; did you mean WECHAT_APPID?"
    ]


def test_check_reports_a_misspelt_key_even_when_the_app_does_not_start(database_uri: str) -> None:
    def factory() -> Flask:
        return make_app(None, database_uri, WECHAT_APPID=None, WECHAT_APP_ID="wx0123456789abcdef")

    result = CliRunner().invoke(wechat_cli, ["check"], obj=ScriptInfo(create_app=factory))
    assert result.exit_code == 1
    assert lines_of("warning", result.output) == [
        "WECHAT_APP_ID is not a flask-wechat setting; did you mean WECHAT_APPID?"
    ]
    [error] = lines_of("error", result.output)
    assert "WECHAT_APPID must be set" in error


def test_check_reports_config_broken_after_init_app(apps: Callable[..., Flask]) -> None:
    app = apps(SERVER_NAME="login.example.com")
    app.config["WECHAT_SCOPE"] = "snsapi_login"
    result = run(app, "check")
    assert result.exit_code == 1
    assert "WECHAT_SCOPE must be one of" in lines_of("error", result.output)[0]


def test_check_on_an_app_without_wechat(apps: Callable[..., Flask]) -> None:
    result = run(Flask(__name__), "check")
    assert result.exit_code == 1
    assert "WeChat is not initialised on this app" in result.output


def test_check_on_the_demo_in_fake_mode(tmp_path: Path) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", "SERVER_NAME": "localhost:5000"})
    try:
        result = run(app, "check")
    finally:
        with app.app_context():
            demo_db.engine.dispose()
    assert result.exit_code == 0, result.output
    assert fact(result.output, "Fake WeChat") == "on, mounted at /_fake_wechat"
    assert fact(result.output, "Authorize URL").startswith("/_fake_wechat/connect/oauth2/authorize?appid=")
    warnings = "\n".join(lines_of("warning", result.output))
    assert "WECHAT_FAKE is on" in warnings
    assert "placeholder 'demo-only-change-me'" in warnings
    # Console checks are about the real WeChat; the fake has no console.
    assert "Console domain" not in result.output and "port" not in warnings


# -- accounts ---------------------------------------------------------------------------------


def test_accounts_list_shows_accounts_and_never_tokens(apps: Callable[..., Flask], wechat_login: WeChatLogin) -> None:
    app = apps()
    alice = wechat_login(app.test_client(), "alice")
    carol = wechat_login(app.test_client(), "carol")
    result = run(app, "accounts", "list")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["id", "user", "appid", "openid", "unionid", "nickname", "updated"]
    assert len(rows) == 2
    assert rows[0].split()[:5] == ["1", str(alice.user_id), DEMO_APPID, alice.openid, alice.unionid]
    assert "Alice 🐼" in rows[0]
    # carol's nickname starts with a raw control character: shown escaped, never sent to the terminal.
    assert "\\x14琦娅🍭" in rows[1] and "\x14" not in result.output
    for account in (alice, carol):
        assert account.access_token not in result.output
        assert account.refresh_token not in result.output
    # Wide characters are measured, so the last column lines up on screen.
    starts = {_width(line[: line.rindex(line.split()[-1])]) for line in rows}
    assert starts == {_width(header[: header.index("updated")])}


def test_accounts_list_filters_by_user(apps: Callable[..., Flask], wechat_login: WeChatLogin) -> None:
    app = apps()
    wechat_login(app.test_client(), "alice")
    bob = wechat_login(app.test_client(), "bob")
    result = run(app, "accounts", "list", "--user", str(bob.user_id))
    assert [line.split()[3] for line in result.output.splitlines()[1:]] == [bob.openid]
    assert run(app, "accounts", "list", "--user", "999").output == "User 999 has no WeChat accounts.\n"


def test_accounts_list_when_empty(apps: Callable[..., Flask]) -> None:
    assert run(apps(), "accounts", "list").output == "No WeChat accounts.\n"


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_accounts_unlink_asks_first_and_keeps_the_user(apps: Callable[..., Flask], wechat_login: WeChatLogin) -> None:
    app = apps()
    account = wechat_login(app.test_client(), "bob")
    refused = run(app, "accounts", "unlink", str(account.id), input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert count(app, WeChatAccount) == 1
    done = run(app, "accounts", "unlink", str(account.id), input="y\n")
    assert done.exit_code == 0, done.output
    assert f"from user {account.user_id}?" in done.output
    assert f"Unlinked WeChat account {account.id} (小明✨🚀, openid {account.openid}). User" in done.output
    assert (count(app, WeChatAccount), count(app, User)) == (0, 1)


def test_accounts_unlink_yes_skips_the_question(apps: Callable[..., Flask], wechat_login: WeChatLogin) -> None:
    app = apps()
    account = wechat_login(app.test_client(), "alice")
    result = run(app, "accounts", "unlink", str(account.id), "--yes")
    assert result.exit_code == 0 and "?" not in result.output
    assert count(app, WeChatAccount) == 0


def test_accounts_unlink_unknown_id_fails(apps: Callable[..., Flask]) -> None:
    result = run(apps(), "accounts", "unlink", "42", "--yes")
    assert result.exit_code == 1
    assert "No WeChat account with id 42." in result.output


def test_unlinked_wechat_user_gets_a_new_account_on_next_login(
    apps: Callable[..., Flask], wechat_login: WeChatLogin
) -> None:
    app = apps()
    first = wechat_login(app.test_client(), "bob")
    run(app, "accounts", "unlink", str(first.id), "--yes")
    again = wechat_login(app.test_client(), "bob")
    assert again.openid == first.openid
    assert again.user_id != first.user_id  # no other account shared the unionid: a new user
    assert (count(app, WeChatAccount), count(app, User)) == (1, 2)
    with app.app_context():
        unionids = dict(db.session.execute(select(User.id, User.wechat_unionid)).all())
    # The unionid went with the link: the old user no longer claims the person.
    assert unionids == {first.user_id: None, again.user_id: first.unionid}


def test_accounts_commands_on_an_app_without_wechat() -> None:
    result = run(Flask(__name__), "accounts", "list")
    assert result.exit_code == 1
    assert "WeChat is not initialised on this app" in result.output


def test_wechat_group_is_registered_with_the_flask_command() -> None:
    from importlib.metadata import entry_points

    [entry] = [ep for ep in entry_points(group="flask.commands") if ep.name == "wechat"]
    assert entry.load() is wechat_cli
    assert re.search(r"accounts\s+List and unlink", CliRunner().invoke(wechat_cli, ["--help"]).output)


def test_unlinking_one_of_two_linked_accounts_keeps_the_person_on_the_user(tmp_path: Path) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}", "WECHAT_APPID": None})
    try:
        official = login_as(app.test_client(), "bob", flow="oa")
        website = login_as(app.test_client(), "bob", flow="qr")
        assert website.user_id == official.user_id  # one person, joined by unionid
        assert run(app, "accounts", "unlink", str(website.id), "--yes").exit_code == 0
        with app.app_context():
            user = demo_db.session.get(DemoUser, official.user_id)
            assert user.wechat_unionid == official.unionid
        assert login_as(app.test_client(), "bob", flow="qr").user_id == official.user_id
    finally:
        with app.app_context():
            demo_db.engine.dispose()


def test_check_on_the_existing_app_example_warns_about_its_placeholder_key(tmp_path: Path) -> None:
    from examples.existing_app.v2 import app as example

    app = example.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}", "WECHAT_FAKE": True})
    result = run(app, "check")
    assert "SECRET_KEY is the placeholder 'dev-only-change-me'" in "\n".join(lines_of("warning", result.output))


def test_check_warns_when_flask_migrate_would_write_revisions_that_do_not_run(apps: Callable[..., Flask]) -> None:
    from flask_migrate import Migrate

    app = apps(SERVER_NAME="login.example.com", PREFERRED_URL_SCHEME="https")
    Migrate(app, db)  # after wechat.init_app: autogenerate would write flask_wechat.models.UTCDateTime()
    [warning] = lines_of("warning", run(app, "check").output)
    assert "Flask-Migrate" in warning and "render_item=flask_wechat.models.render_item" in warning


def test_check_is_content_with_flask_migrate_set_up_first(tmp_path: Path) -> None:
    from examples.existing_app.v2 import app as example

    app = example.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}", "WECHAT_FAKE": True})
    assert "Flask-Migrate" not in run(app, "check").output
