"""``flask wechat ...`` commands: check a deployment's settings and manage linked accounts.

``check`` exists because a wrong callback host only shows up as WeChat's error page
10003 on a phone; it prints what WeChat will be sent and what the console must hold.
Other packages add commands to the group through the ``flask_wechat.commands`` entry
point (the fake WeChat's ``fake-server`` does).
"""

from __future__ import annotations

import ipaddress
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import click
from flask import Flask, current_app, url_for
from flask.cli import ScriptInfo, with_appcontext
from sqlalchemy import select

from . import config, serverapi, wecom
from .apptoken import SharedCredential
from .errors import ConfigurationError, WeChatError
from .ext import migrate_renders_plain_types

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["wechat_cli"]

#: SECRET_KEY values copied from examples and tutorials: anyone can forge sessions with them.
PLACEHOLDER_SECRET_KEYS: Final = frozenset(
    {
        "demo-only-change-me",
        "dev-only-change-me",
        "change-me",
        "changeme",
        "change-this",
        "dev",
        "development",
        "secret",
        "secret-key",
    }
)
#: Shorter keys can be guessed; Flask's docs suggest ``secrets.token_hex()`` (64 characters).
MIN_SECRET_KEY_LENGTH: Final = 16
#: A stand-in for the random state of each login in the previewed authorize link.
STATE_PLACEHOLDER: Final = "STATE"
#: Per browser flow: how ``check`` names it, and where its callback domain goes in WeChat's consoles.
#: Entry point group through which other packages add ``flask wechat`` commands.
COMMANDS_GROUP: Final = "flask_wechat.commands"


class _WeChatGroup(click.Group):
    """The command group, with the commands other packages register under :data:`COMMANDS_GROUP`."""

    def _plugins(self) -> dict[str, Any]:
        return {point.name: point for point in entry_points(group=COMMANDS_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in (plugins := self._plugins()):
            loaded: click.Command = plugins[cmd_name].load()
            return loaded
        return command


@click.group("wechat", cls=_WeChatGroup, help="flask-wechat tools.")
def wechat_cli() -> None:
    """The ``flask wechat`` command group (registered through the ``flask.commands`` entry point)."""


# -- check ------------------------------------------------------------------------------------


@dataclass
class _Report:
    """What ``check`` found: facts to show, then warnings and errors."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def echo(self) -> None:
        # Several flows share one host: say each thing once.
        self.warnings = list(dict.fromkeys(self.warnings))
        width = max((len(label) for label, _ in self.facts), default=0)
        for label, value in self.facts:
            click.echo(f"{label + ':' if label else '':<{width + 1}} {value}")
        for text in self.warnings:
            click.echo(f"{click.style('warning', fg='yellow')}: {text}")
        for text in self.errors:
            click.echo(f"{click.style('error', fg='red')}: {text}")
        summary = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        click.echo(click.style(summary, fg="red" if self.errors else "green"))


def _check_secret_key(app: Flask, report: _Report) -> None:
    key = app.config.get("SECRET_KEY")
    if not key:
        # Without it Flask has no session, and a login cannot even start.
        report.errors.append("SECRET_KEY is not set: every login fails. Set one random key shared by all workers.")
    elif str(key) in PLACEHOLDER_SECRET_KEYS:
        report.warnings.append(f"SECRET_KEY is the placeholder {str(key)!r}: anyone can forge sessions.")
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        report.warnings.append(f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters: use a random one.")


def _external_url(app: Flask, endpoint: str, host: str | None) -> str:
    """``url_for(endpoint, _external=True)`` as a request to ``host`` (or to SERVER_NAME) would build it."""
    if app.config.get("SERVER_NAME"):
        with app.app_context():
            return url_for(endpoint, _external=True)
    scheme = app.config.get("PREFERRED_URL_SCHEME") or "http"
    with app.test_request_context(base_url=f"{scheme}://{host or 'localhost'}"):
        return url_for(endpoint, _external=True)


def _host_is_known(app: Flask, host: str | None, report: _Report) -> bool:
    """Whether callback URLs can be shown exactly; says why not when they cannot."""
    if app.config.get("SERVER_NAME"):
        return True
    if host:
        report.facts.append(("SERVER_NAME", f"not set; previewing host {host} (--host)"))
        return True
    report.facts.append(("SERVER_NAME", "not set: the callback host comes from each request's Host header"))
    report.warnings.append(
        "SERVER_NAME is not set, so the exact callback URL depends on the request; "
        "pass --host www.example.com to preview it (behind a proxy, use ProxyFix)."
    )
    return False


def _check_callback(callback: str, app: Flask, report: _Report) -> None:
    """Warn about callback URLs the real WeChat refuses (authorize page error 10003)."""
    parts = urlsplit(callback)
    hostname = parts.hostname or ""
    if parts.port is not None:
        report.warnings.append(
            f"the callback URL carries port {parts.port}: WeChat redirects only to the default port of the "
            "console domain (error 10003). Serve it on 443 behind a reverse proxy."
        )
    try:
        ipaddress.ip_address(hostname)
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip or hostname == "localhost":
        report.warnings.append(
            f"the callback host {hostname} is not a domain: the WeChat console accepts only a registered domain."
        )
    if parts.scheme == "http" and not (app.debug or app.testing):
        report.warnings.append(
            "the callback URL is http: the code travels in clear text. Use https "
            "(PREFERRED_URL_SCHEME='https', or ProxyFix behind a TLS proxy)."
        )


def _check_flow(app: Flask, runtime: Runtime, name: str, host_known: bool, host: str | None, report: _Report) -> None:
    """Facts and warnings of one browser flow: its callback, authorize link and console setting."""
    web = runtime.web[name]
    scope = getattr(web, "scope", None)
    kind = "CorpID" if web.family == "wecom" else "AppID"
    report.facts.append((web.label, f"{kind} {web.appid}" + (f", scope {scope}" if scope else "")))
    callback = _external_url(app, web.callback_endpoint, host)
    if not host_known:
        scheme = app.config.get("PREFERRED_URL_SCHEME") or "http"
        report.facts.append(("  Callback URL", f"{scheme}://<request host>{urlsplit(callback).path}"))
        return
    authorize = web.authorize_url(callback, STATE_PLACEHOLDER)
    report.facts += [
        ("  Callback URL", callback),
        ("  Authorize URL", authorize),
        ("", f"({STATE_PLACEHOLDER} stands for each login's random state)"),
    ]
    if not runtime.settings.fake:
        report.facts.append(("  Console domain", f"{urlsplit(callback).hostname}   ({web.console})"))
        _check_callback(callback, app, report)


def _check(app: Flask, host: str | None) -> _Report:
    report = _Report()
    if "wechat" not in app.extensions:
        report.errors.append("WeChat is not initialised on this app: call wechat.init_app(app).")
        return report
    with app.app_context():
        runtime: Runtime = app.extensions["wechat"].runtime
    try:
        config.load_settings(app.config)
    except ConfigurationError as exc:
        report.errors.append(f"configuration changed after init_app and is now invalid: {exc}")
    settings = runtime.settings
    report.facts.append(("App", app.import_name))
    report.warnings += [config.unknown_key_message(*item) for item in config.unknown_keys(app.config).items()]
    if migrate_renders_plain_types(app) is False:
        report.warnings.append(
            "Flask-Migrate was set up after wechat.init_app: its autogenerated revisions would name "
            "flask_wechat.models.UTCDateTime and fail to run. Set it up first, or pass "
            "render_item=flask_wechat.models.render_item to Migrate()."
        )
    _check_secret_key(app, report)
    if str(app.config.get("SESSION_COOKIE_SAMESITE") or "").lower() == "strict":
        report.warnings.append(
            "SESSION_COOKIE_SAMESITE is 'Strict': browsers withhold the session cookie on the way back from "
            "WeChat, so every login starts over once and then asks the visitor to allow cookies. Use 'Lax'."
        )
    if settings.fake:
        report.facts.append(("Fake WeChat", f"on, mounted at {settings.open_base_url}"))
        report.warnings.append("WECHAT_FAKE is on: anyone can log in as any test user. Never run it in production.")
    elif (settings.open_base_url, settings.api_base_url) != (
        config.DEFAULTS["WECHAT_OPEN_BASE_URL"],
        config.DEFAULTS["WECHAT_API_BASE_URL"],
    ):
        report.warnings.append(
            f"WeChat is replaced by {settings.open_base_url} and {settings.api_base_url}: fine for tests, "
            "not for production."
        )
    host_known = _host_is_known(app, host, report) if runtime.web else False
    for name in runtime.web:
        _check_flow(app, runtime, name, host_known, host, report)
    if settings.miniprogram is not None:
        report.facts.append(("Mini program", f"AppID {settings.miniprogram.appid} (no redirect: wx.login codes)"))
    for name, api in runtime.apps.items():
        path = serverapi.APP_TOKEN_ENDPOINTS[api.token_endpoint]
        report.facts.append(
            (f"App token ({name})", f"{path}; calls from this server's outbound IP need the app's IP whitelist")
        )
    if runtime.wecom is not None:
        report.facts.append(
            (
                "WeCom corp token",
                f"{wecom.GETTOKEN_PATH}; apps created since 2022-06-20 need 企业可信IP for this server",
            )
        )
    if settings.follower_unionid and "oa" not in runtime.apps:
        report.warnings.append("WECHAT_FOLLOWER_UNIONID needs an Official Account (WECHAT_APPID): it does nothing.")
    return report


@wechat_cli.command("check")
@click.option("--host", help="Public host to preview the callback URL with when SERVER_NAME is not set.")
@click.pass_context
def check(ctx: click.Context, host: str | None) -> None:
    """Check the app's WeChat settings and show the URLs WeChat will see.

    Prints the authorize link, the callback URL and the domain to enter in the
    WeChat console, and warns about settings that break logins in production.
    Exits with status 1 when there are errors (warnings alone exit 0).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", config.UnknownSettingWarning)
        try:
            # Loaded here rather than by @with_appcontext: a bad WECHAT_* key fails in the
            # app factory, and that is precisely what this command must report.
            app = ctx.ensure_object(ScriptInfo).load_app()
        except ConfigurationError as exc:
            # The app is gone, its config with it: what init_app warned about is all there is.
            unknown = [str(w.message) for w in caught if issubclass(w.category, config.UnknownSettingWarning)]
            report = _Report(warnings=unknown, errors=[f"the app does not start: {exc}"])
        else:
            report = _check(app, host)
    for warning in caught:
        if not issubclass(warning.category, config.UnknownSettingWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    report.echo()
    if report.errors:
        ctx.exit(1)


# -- app tokens -------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    return sign + (f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s")


@wechat_cli.command("tokens")
@click.option("--fetch", is_flag=True, help="Fetch what is missing or due first, as the next API call would.")
@with_appcontext
def tokens(fetch: bool) -> None:
    """Show each app access token's and JS-SDK ticket's age and expiry (never the value itself).

    They live in the shared store (WECHAT_STORE_URL, else the app's database), one per app
    for every worker.
    """
    runtime = _runtime()
    held: list[tuple[str, str, str, SharedCredential, str]] = []
    for name, api in runtime.apps.items():
        held.append((name, api.appid, "app token", api.tokens, serverapi.APP_TOKEN_ENDPOINTS[api.token_endpoint]))
        if name == "oa":
            held.append((name, api.appid, "JS-SDK ticket", api.tickets, serverapi.JSAPI_TICKET_PATH))
    if runtime.wecom is not None:
        held.append(("wecom", runtime.wecom.corpid, "corp token", runtime.wecom.tokens, wecom.GETTOKEN_PATH))
    if not held:
        click.echo("No app uses an access token (configure WECHAT_APPID, WECHAT_MINIPROGRAM_APPID or WeCom).")
        return
    now = runtime.settings.clock()
    rows = []
    for name, appid, label, credential, path in held:
        try:
            if fetch:
                credential.get()
            stored = credential.stored()
        except WeChatError as exc:
            raise click.ClickException(f"{name} {label}: {exc}") from None
        age = _duration(now - stored.fetched_at) if stored else "-"
        left = "not fetched" if stored is None else _duration(stored.expires_at - now)
        rows.append([name, appid, label, path, age, left])
    _table(["app", "appid", "kind", "from", "age", "expires in"], rows)


# -- accounts ---------------------------------------------------------------------------------


def _runtime() -> Runtime:
    wechat = current_app.extensions.get("wechat")
    if wechat is None:
        raise click.ClickException("WeChat is not initialised on this app: call wechat.init_app(app).")
    runtime: Runtime = wechat.runtime
    return runtime


def _printable(text: str) -> str:
    """Nicknames may hold raw control characters; never let them drive the terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: CJK and emoji take two."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip())


@wechat_cli.group("accounts")
def accounts() -> None:
    """List and unlink stored WeChat accounts (tokens are never shown)."""


@accounts.command("list")
@click.option("--user", "user_id", type=int, help="Only the accounts of this local user id.")
@with_appcontext
def list_accounts(user_id: int | None) -> None:
    """List WeChat accounts: id, user id, appid, openid, unionid, nickname, last update."""
    runtime = _runtime()
    model = runtime.account_model
    query = select(model).order_by(model.id)
    if user_id is not None:
        query = query.filter_by(user_id=user_id)
    rows = [
        [
            str(account.id),
            str(account.user_id),
            account.appid,
            account.openid,
            account.unionid or "-",
            _printable(account.nickname or "") or "-",
            account.updated_at.isoformat(timespec="seconds") if account.updated_at else "-",
        ]
        for account in runtime.db.session.execute(query).unique().scalars()
    ]
    if not rows:
        click.echo("No WeChat accounts." if user_id is None else f"User {user_id} has no WeChat accounts.")
        return
    _table(["id", "user", "appid", "openid", "unionid", "nickname", "updated"], rows)


@accounts.command("unlink")
@click.argument("account_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def unlink_account(account_id: int, yes: bool) -> None:
    """Delete the WeChat account ACCOUNT_ID; its local user is kept.

    The next WeChat login of that person creates a new account row, linked to a user
    of another account with the same unionid if there is one, else to a new user.
    """
    runtime = _runtime()
    account: Any = runtime.db.session.get(runtime.account_model, account_id)
    if account is None:
        raise click.ClickException(f"No WeChat account with id {account_id}.")
    label = f"account {account.id} ({_printable(account.nickname or '') or 'no nickname'}, openid {account.openid})"
    if not yes:
        click.confirm(f"Unlink WeChat {label} from user {account.user_id}?", abort=True)
    user = account.user
    runtime.db.session.delete(account)
    runtime.db.session.flush()
    # The user's unionid is part of the link: left behind, it would tie the person to this user
    # (and collide with the new user their next login creates).
    if account.unionid and getattr(user, "wechat_unionid", None) == account.unionid:
        still_linked = any(other.unionid == account.unionid for other in runtime.accounts().accounts_of(user))
        if not still_linked:
            user.wechat_unionid = None
    runtime.db.session.commit()
    click.echo(f"Unlinked WeChat {label}. User {user.id} is kept.")
