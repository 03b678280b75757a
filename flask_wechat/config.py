"""Every ``WECHAT_*`` setting, its default and its check, in one place.

``init_app`` applies :data:`DEFAULTS` with ``setdefault`` and turns the result into
a frozen :class:`Settings`, so a bad value fails at start-up with the key's name,
not at the first login.
"""

from __future__ import annotations

import difflib
import re
import time
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from . import protocol, serverapi, wecom
from .errors import ConfigurationError
from .i18n import LANGUAGES

__all__ = [
    "DEFAULTS",
    "OPTIONS",
    "Credentials",
    "Option",
    "Settings",
    "UnknownSettingWarning",
    "WeComSettings",
    "apply_defaults",
    "load_settings",
    "unknown_key_message",
    "unknown_keys",
    "warn_about_unknown_keys",
]


@dataclass(frozen=True)
class Option:
    """One setting: its key, default and what it is for (the docs' reference is built from these)."""

    key: str
    default: Any
    help: str


#: Every setting, in the order the docs list them. ``None`` means "no default".
OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "WECHAT_APPID",
        None,
        "Official Account AppID, 'wx' + 16 lowercase hex digits (mp.weixin.qq.com, 开发 → 基本配置): web "
        "authorization inside WeChat. "
        "At least one of the three apps must be configured (all three in WECHAT_FAKE mode).",
    ),
    Option(
        "WECHAT_SECRET",
        None,
        "Its AppSecret (开发者密码), 32 lowercase hex digits. Never logged, shown or put in a URL sent to a browser.",
    ),
    Option(
        "WECHAT_OPEN_APPID",
        None,
        "Open Platform website app AppID (open.weixin.qq.com, 网站应用): QR login on desktop browsers.",
    ),
    Option("WECHAT_OPEN_SECRET", None, "Its AppSecret."),
    Option("WECHAT_MINIPROGRAM_APPID", None, "Mini program AppID: the JSON login endpoint for wx.login() codes."),
    Option("WECHAT_MINIPROGRAM_SECRET", None, "Its AppSecret."),
    Option(
        "WECHAT_WECOM_CORPID",
        None,
        "WeCom (企业微信) CorpID, 'ww' + 16 lowercase hex digits (work.weixin.qq.com, 我的企业 → 企业信息): "
        "log in a company's members, inside the WeCom client and by QR code on a desktop.",
    ),
    Option("WECHAT_WECOM_AGENTID", None, "The WeCom self-built app's AgentId (a number; 应用管理 → the app)."),
    Option(
        "WECHAT_WECOM_SECRET",
        None,
        "That app's Secret (43 characters). Its access token is shared by every worker, like WeChat's.",
    ),
    Option(
        "WECHAT_WECOM_SCOPE",
        "snsapi_base",
        "snsapi_base: silent, the member's userid; snsapi_privateinfo: a consent page, then the mobile, email, "
        "avatar and gender the member agreed to share (inside the WeCom client only).",
    ),
    Option(
        "WECHAT_WECOM_ADMIT_NON_MEMBERS",
        False,
        "Log in people who are not members of the company (WeCom gives their openid): refused by default.",
    ),
    Option("WECHAT_WECOM_LOGIN_BASE_URL", wecom.DEFAULT_LOGIN_BASE_URL, "Where WeCom's web login page is."),
    Option("WECHAT_WECOM_API_BASE_URL", wecom.DEFAULT_API_BASE_URL, "Where the server calls WeCom's API."),
    Option(
        "WECHAT_WECOM_PANEL_SCRIPT_URL",
        None,
        "A script defining ww.createWWLoginPanel (@wecom/jssdk >= 2.3.2) for wechat_wecom_login(); unset: the "
        "page loads it itself, or the stand-in's when the login base URL points elsewhere (the fake).",
    ),
    Option(
        "WECHAT_SCOPE",
        protocol.SCOPE_USERINFO,
        "snsapi_userinfo asks for consent and yields the profile; snsapi_base is silent and yields the openid only.",
    ),
    Option("WECHAT_LANG", "zh_CN", "Language of /sns/userinfo answers: zh_CN, zh_TW or en."),
    Option("WECHAT_OPEN_BASE_URL", protocol.DEFAULT_OPEN_BASE_URL, "Where the browser is sent (authorize page)."),
    Option("WECHAT_API_BASE_URL", protocol.DEFAULT_API_BASE_URL, "Where the server calls the sns API."),
    Option("WECHAT_CONNECT_TIMEOUT", 3.05, "Seconds to wait for a connection to WeChat."),
    Option("WECHAT_READ_TIMEOUT", 10.0, "Seconds to wait for WeChat's answer."),
    Option(
        "WECHAT_RETRIES",
        2,
        "Extra attempts, with backoff and jitter, for idempotent calls (refresh, userinfo, auth) after errcode -1 "
        "or a network fault. A code exchange is single-use: tried once more after errcode -1 only.",
    ),
    Option("WECHAT_STATE_LIFETIME", 600, "Seconds a started login may take to come back (QR codes live 600 s)."),
    Option(
        "WECHAT_MAX_PENDING_LOGINS",
        8,
        "Started but unfinished logins kept per session; the newest win, so several tabs can each finish.",
    ),
    Option(
        "WECHAT_PROFILE_MAX_AGE",
        86400,
        "Seconds a stored profile counts as fresh: a returning user's login then skips /sns/userinfo. "
        "0 fetches the profile on every login.",
    ),
    Option(
        "WECHAT_STORE_URL",
        None,
        "Where workers share login markers and callback outcomes: unset = the app's SQL database "
        "(table wechat_store), or a redis:// URL (needs the redis package).",
    ),
    Option(
        "WECHAT_APP_TOKEN_ENDPOINT",
        "stable_token",
        "How the app access token (phone numbers, follower unionids, JS-SDK) is fetched: 'stable_token' "
        "(POST /cgi-bin/stable_token: the same token for every caller) or 'token' (GET /cgi-bin/token: each call "
        "issues a new one and retires the last after five minutes). Either way one worker refreshes it for all.",
    ),
    Option(
        "WECHAT_TOKEN_LOCK_TIMEOUT",
        15,
        "Seconds the worker refreshing an app token or JS-SDK ticket holds the shared lock at most: if it dies, "
        "another takes over after this long. Keep it above WECHAT_CONNECT_TIMEOUT + WECHAT_READ_TIMEOUT.",
    ),
    Option(
        "WECHAT_FOLLOWER_UNIONID",
        False,
        "On a silent snsapi_base login, ask /cgi-bin/user/info (app token) for a follower's unionid, so that "
        "they land on the same user as their QR or mini-program login. Non-followers log in as before.",
    ),
    Option(
        "WECHAT_CLOCK",
        None,
        "A function returning the Unix time in which app token and ticket lifetimes are measured. Unset: "
        "time.time. flask_wechat.testing.install points it at the fake WeChat's clock, which tests can move.",
    ),
    Option(
        "WECHAT_RENEW_SESSION",
        True,
        "Clear the session when a login completes, so no one can plant a session before it (fixation).",
    ),
    Option(
        "WECHAT_TOKEN_KEYS",
        None,
        "Fernet keys (a list, or one comma-separated string) to encrypt stored tokens; the first encrypts, "
        "all decrypt, so a new key goes first. Unset: tokens are stored as they come. Needs cryptography.",
    ),
    Option("WECHAT_REMEMBER", False, "Passed to Flask-Login's login_user(remember=...)."),
    Option("WECHAT_URL_PREFIX", "/wechat", "Where the blueprint's login, callback and logout views live."),
    Option("WECHAT_DEFAULT_NEXT", "/", "Where to go after login when no safe next was given, and after logout."),
    Option(
        "WECHAT_QR_SCRIPT_URL",
        None,
        "wxLogin.js for the embedded QR code; unset: WeChat's own, or the stand-in's when the open base URL "
        "points elsewhere.",
    ),
    Option(
        "WECHAT_MINIPROGRAM_AUTH",
        "cookie",
        "How a mini program stays logged in: 'cookie' (the Flask-Login session cookie) or 'token' "
        "(a signed bearer token in the JSON answer, sent back as 'Authorization: Bearer ...').",
    ),
    Option("WECHAT_MINIPROGRAM_TOKEN_MAX_AGE", 7 * 24 * 3600, "Seconds a mini-program bearer token stays valid."),
    Option(
        "WECHAT_DEFAULT_LANGUAGE",
        "en",
        "Language of the extension's pages when the browser asks for neither Chinese nor English: 'zh-CN' or 'en'.",
    ),
    Option(
        "WECHAT_FAKE",
        False,
        "True while the built-in fake WeChat serves this app's logins. Set by flask_wechat.testing.install(app), "
        "which refuses real credentials and, outside debug or testing mode, needs this key set to True first.",
    ),
    Option(
        "WECHAT_HTTP_ADAPTERS",
        None,
        "requests transport adapters by URL prefix ({prefix: adapter}) for the server's WeChat calls, e.g. an "
        "in-process stand-in for WeChat (flask_wechat.testing.install sets it). Unset: the network.",
    ),
)

#: ``{key: default}`` of :data:`OPTIONS`.
DEFAULTS: Final[Mapping[str, Any]] = {option.key: option.default for option in OPTIONS}

#: wxLogin.js as WeChat serves it.
DEFAULT_QR_SCRIPT_URL: Final = "https://res.wx.qq.com/connect/zh_CN/htmledition/js/wxLogin.js"
QR_SCRIPT_PATH: Final = "/connect/zh_CN/htmledition/js/wxLogin.js"
MINIPROGRAM_AUTH_MODES: Final = frozenset({"cookie", "token"})

#: Settings that take True or False only: a string such as "false" is a mistake, not a value.
BOOLEAN_KEYS: Final = (
    "WECHAT_RENEW_SESSION",
    "WECHAT_REMEMBER",
    "WECHAT_FAKE",
    "WECHAT_FOLLOWER_UNIONID",
    "WECHAT_WECOM_ADMIT_NON_MEMBERS",
)

# WeChat publishes no grammar for these; the rules below are what it issues. Every AppID, of an
# Official Account (公众号), an Open Platform website app (网站应用) or a mini program (小程序),
# sandbox test accounts (测试号) included, is "wx" + 16 lowercase hex digits: 18 characters, as
# the authorize documentation's "wx…" AppIDs and every AppID quoted on developers.weixin.qq.com
# (e.g. the SDK sample wxd930ea5d5a258f4f) show. Case matters: global return code 40013 reads
# "不合法的 AppID，请开发者检查 AppID 的正确性，避免异常字符，注意大小写". The AppSecret (开发者密码)
# the consoles generate is 32 lowercase hex digits, as every one quoted there shows; a wrong one
# is errcode 40125. Either mistake would only show at the first login, as an error page on
# someone's phone: refuse it at start-up instead.
_APPID_PATTERN: Final = re.compile(r"wx[0-9a-f]{16}")
# WeCom: CorpIDs are "ww" + 16 lowercase hex digits (企业信息 → 企业ID); an app's Secret is 43 characters of
# URL-safe base64, as the admin console shows it; AgentIds are numbers (1000002 for a company's first app).
_CORPID_PATTERN: Final = re.compile(r"ww[0-9a-f]{16}")
_WECOM_SECRET_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_SECRET_PATTERN: Final = re.compile(r"[0-9a-f]{32}")
#: How close a misspelt key must be to a real one for "did you mean" (difflib's ratio).
_SUGGESTION_CUTOFF: Final = 0.75
#: Left to test suites, never a setting: flask-wechat's own reads ``FLASK_WECHAT_TEST_*`` environment
#: variables, which ``app.config.from_prefixed_env()`` copies into the config as ``WECHAT_TEST_*``.
TEST_KEY_PREFIX: Final = "WECHAT_TEST_"


class UnknownSettingWarning(UserWarning):
    """A ``WECHAT_*`` config key that flask-wechat does not know: most likely a misspelt setting.

    ``WECHAT_TEST_*`` keys are left to test suites. Another package's ``WECHAT_*`` keys warn
    too; silence them with ``warnings.filterwarnings("ignore", category=UnknownSettingWarning)``.
    """


@dataclass(frozen=True)
class Credentials:
    """One WeChat app's AppID and AppSecret."""

    appid: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class WeComSettings:
    """A WeCom self-built app: the company, the app and how its members log in."""

    corpid: str
    agentid: int
    secret: str = field(repr=False)
    scope: str = protocol.SCOPE_BASE
    admit_non_members: bool = False
    login_base_url: str = wecom.DEFAULT_LOGIN_BASE_URL
    api_base_url: str = wecom.DEFAULT_API_BASE_URL
    #: ``None``: the page loads ``@wecom/jssdk`` itself.
    panel_script_url: str | None = None


@dataclass(frozen=True)
class Settings:
    """The validated ``WECHAT_*`` settings of one Flask app."""

    official_account: Credentials | None
    website: Credentials | None
    miniprogram: Credentials | None
    scope: str
    lang: str
    open_base_url: str
    api_base_url: str
    connect_timeout: float
    read_timeout: float
    retries: int
    state_lifetime: int
    max_pending_logins: int
    profile_max_age: int
    store_url: str | None
    token_keys: tuple[str, ...]
    renew_session: bool
    remember: bool
    url_prefix: str
    default_next: str
    fake: bool
    http_adapters: Mapping[str, Any]
    qr_script_url: str
    default_language: str
    miniprogram_auth: str
    miniprogram_token_max_age: int
    app_token_endpoint: str
    token_lock_timeout: float
    wecom: WeComSettings | None
    follower_unionid: bool
    clock: Callable[[], float]

    def __repr__(self) -> str:
        # Secrets stay out: reprs end up in logs and tracebacks.
        apps = [c.appid for c in (self.official_account, self.website, self.miniprogram) if c]
        if self.wecom:
            apps.append(self.wecom.corpid)
        return f"Settings(apps={apps!r}, scope={self.scope!r}, api={self.api_base_url!r}, fake={self.fake})"

    @property
    def appid(self) -> str:
        """The AppID of the web flow used by default: the Official Account's, else the website app's."""
        web = self.official_account or self.website
        return web.appid if web else ""


def unknown_keys(config: Mapping[str, Any]) -> dict[str, str | None]:
    """``{key: closest known key or None}`` for every ``WECHAT_*`` key that is not a setting."""
    known = list(DEFAULTS)
    return {
        key: next(iter(difflib.get_close_matches(key, known, n=1, cutoff=_SUGGESTION_CUTOFF)), None)
        for key in config
        if isinstance(key, str)
        and key.startswith("WECHAT_")
        and key not in DEFAULTS
        and not key.startswith(TEST_KEY_PREFIX)
    }


def unknown_key_message(key: str, suggestion: str | None) -> str:
    """What to say about the unknown key ``key``."""
    return f"{key} is not a flask-wechat setting" + (f"; did you mean {suggestion}?" if suggestion else "")


def warn_about_unknown_keys(config: Mapping[str, Any], stacklevel: int = 2) -> None:
    """Warn (:class:`UnknownSettingWarning`) about each ``WECHAT_*`` key that is not a setting."""
    for key, suggestion in unknown_keys(config).items():
        warnings.warn(unknown_key_message(key, suggestion), UnknownSettingWarning, stacklevel=stacklevel + 1)


def apply_defaults(config: MutableMapping[str, Any]) -> None:
    """Fill in every unset ``WECHAT_*`` key with its documented default."""
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)


def _string(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{key} must be set to a non-empty string")
    return value.strip()


def _base_url(config: Mapping[str, Any], key: str) -> str:
    value = _string(config, key)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(f"{key} must be an http(s) URL without query or fragment, got {value!r}")
    return value.rstrip("/")


def _number(config: Mapping[str, Any], key: str, kind: type[int] | type[float], minimum: float) -> Any:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigurationError(f"{key} must be a number >= {minimum}, got {value!r}")
    return kind(value)


def _path(config: Mapping[str, Any], key: str) -> str:
    value = _string(config, key)
    if not value.startswith("/") or value.startswith("//"):
        raise ConfigurationError(f"{key} must be a path starting with a single '/', got {value!r}")
    return value.rstrip("/") or "/"


def _store_url(config: Mapping[str, Any]) -> str | None:
    value = config.get("WECHAT_STORE_URL")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"WECHAT_STORE_URL must be a redis://, rediss:// or unix:// URL, got {value!r}")
    return value


def _token_keys(config: Mapping[str, Any]) -> tuple[str, ...]:
    value = config.get("WECHAT_TOKEN_KEYS")
    if value in (None, "", [], ()):
        return ()
    keys = value.split(",") if isinstance(value, str) else value
    if not isinstance(keys, (list, tuple)) or not all(isinstance(key, (str, bytes)) and key for key in keys):
        raise ConfigurationError("WECHAT_TOKEN_KEYS must be a list of Fernet keys or one comma-separated string")
    return tuple(key.decode() if isinstance(key, bytes) else key.strip() for key in keys)


def _boolean(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False, got {value!r}")
    return value


def _http_adapters(config: Mapping[str, Any]) -> Mapping[str, Any]:
    value = config.get("WECHAT_HTTP_ADAPTERS")
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(prefix, str) and urlsplit(prefix).scheme in ("http", "https") and hasattr(adapter, "send")
        for prefix, adapter in value.items()
    ):
        raise ConfigurationError("WECHAT_HTTP_ADAPTERS must map http(s) URL prefixes to requests transport adapters")
    return dict(value)


def _choice(config: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = config.get(key)
    if value not in choices:
        raise ConfigurationError(f"{key} must be one of {list(choices)}, got {value!r}")
    return str(value)


def _credentials(config: Mapping[str, Any], prefix: str) -> Credentials | None:
    appid, secret = config.get(f"{prefix}_APPID"), config.get(f"{prefix}_SECRET")
    if appid in (None, "") and secret in (None, ""):
        return None
    if appid in (None, ""):
        raise ConfigurationError(f"{prefix}_APPID must be set to a non-empty string when {prefix}_SECRET is set")
    if not isinstance(appid, str) or not _APPID_PATTERN.fullmatch(appid):
        raise ConfigurationError(
            f"{prefix}_APPID must be 'wx' followed by 16 lowercase hex digits, like wx0123456789abcdef "
            f"(the console's 开发者ID(AppID)), got {appid!r}"
        )
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError(f"{prefix}_SECRET must be set to a non-empty string when {prefix}_APPID is set")
    secret = secret.strip()
    if not _SECRET_PATTERN.fullmatch(secret):
        # Never the value itself: it is a secret, and this message ends up in logs.
        raise ConfigurationError(
            f"{prefix}_SECRET must be the 32 lowercase hex digits of the AppSecret (开发者密码); "
            f"the value set has {len(secret)} characters"
            + ("" if re.fullmatch(r"[0-9a-fA-F]*", secret) else ", not all of them hex digits")
        )
    return Credentials(appid, secret)


def _qr_script_url(config: Mapping[str, Any], open_base_url: str) -> str:
    explicit = config.get("WECHAT_QR_SCRIPT_URL")
    if explicit:
        if not isinstance(explicit, str) or urlsplit(explicit).scheme not in ("http", "https", ""):
            raise ConfigurationError(f"WECHAT_QR_SCRIPT_URL must be an http(s) URL or a path, got {explicit!r}")
        return explicit
    if open_base_url == protocol.DEFAULT_OPEN_BASE_URL:
        return DEFAULT_QR_SCRIPT_URL
    return open_base_url + QR_SCRIPT_PATH


def _clock(config: Mapping[str, Any]) -> Callable[[], float]:
    value = config.get("WECHAT_CLOCK")
    if value is None:
        return time.time
    if not callable(value):
        raise ConfigurationError(f"WECHAT_CLOCK must be a function returning the Unix time, got {value!r}")
    return value  # type: ignore[no-any-return]


def _wecom(config: Mapping[str, Any], admit_non_members: bool) -> WeComSettings | None:
    corpid, agentid, secret = (config.get(f"WECHAT_WECOM_{part}") for part in ("CORPID", "AGENTID", "SECRET"))
    if all(value in (None, "") for value in (corpid, agentid, secret)):
        return None
    if not isinstance(corpid, str) or not _CORPID_PATTERN.fullmatch(corpid.strip()):
        raise ConfigurationError(
            f"WECHAT_WECOM_CORPID must be 'ww' followed by 16 lowercase hex digits (我的企业 → 企业ID), got {corpid!r}"
        )
    if isinstance(agentid, str) and agentid.strip().isdecimal():
        agentid = int(agentid.strip())
    if isinstance(agentid, bool) or not isinstance(agentid, int) or agentid < 1:
        raise ConfigurationError(f"WECHAT_WECOM_AGENTID must be the app's numeric AgentId, got {agentid!r}")
    if not isinstance(secret, str) or not _WECOM_SECRET_PATTERN.fullmatch(secret.strip()):
        length = len(secret) if isinstance(secret, str) else 0
        # Never the value itself: it is a secret, and this message ends up in logs.
        raise ConfigurationError(
            "WECHAT_WECOM_SECRET must be the app's Secret: 43 characters of letters, digits, '-' and '_'; "
            f"the value set has {length} characters"
        )
    scope = _string(config, "WECHAT_WECOM_SCOPE")
    if scope not in wecom.SCOPES:
        raise ConfigurationError(f"WECHAT_WECOM_SCOPE must be one of {sorted(wecom.SCOPES)}, got {scope!r}")
    fake = config.get("WECHAT_FAKE") is True
    bases = {}
    for key in ("WECHAT_WECOM_LOGIN_BASE_URL", "WECHAT_WECOM_API_BASE_URL"):
        value = config.get(key)
        in_app = fake and key.endswith("LOGIN_BASE_URL") and isinstance(value, str) and value.startswith("/")
        bases[key] = _path(config, key) if in_app else _base_url(config, key)
    login_base_url = bases["WECHAT_WECOM_LOGIN_BASE_URL"]
    panel = config.get("WECHAT_WECOM_PANEL_SCRIPT_URL")
    if panel in (None, ""):
        panel = None if login_base_url == wecom.DEFAULT_LOGIN_BASE_URL else login_base_url + wecom.PANEL_SCRIPT_PATH
    elif not isinstance(panel, str) or urlsplit(panel).scheme not in ("http", "https", ""):
        raise ConfigurationError(f"WECHAT_WECOM_PANEL_SCRIPT_URL must be an http(s) URL or a path, got {panel!r}")
    return WeComSettings(
        corpid=corpid.strip(),
        agentid=agentid,
        secret=secret.strip(),
        scope=scope,
        admit_non_members=admit_non_members,
        login_base_url=login_base_url,
        api_base_url=bases["WECHAT_WECOM_API_BASE_URL"],
        panel_script_url=panel,
    )


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the app's ``WECHAT_*`` keys; raise :class:`ConfigurationError` naming the bad one."""
    booleans = {key: _boolean(config, key) for key in BOOLEAN_KEYS}
    official_account = _credentials(config, "WECHAT")
    website = _credentials(config, "WECHAT_OPEN")
    miniprogram = _credentials(config, "WECHAT_MINIPROGRAM")
    wecom_settings = _wecom(config, booleans["WECHAT_WECOM_ADMIT_NON_MEMBERS"])
    if not (official_account or website or miniprogram or wecom_settings):
        raise ConfigurationError(
            "WECHAT_APPID (or WECHAT_OPEN_APPID / WECHAT_MINIPROGRAM_APPID / WECHAT_WECOM_CORPID) must be set, "
            "with its secret"
        )
    auth_mode = config.get("WECHAT_MINIPROGRAM_AUTH")
    if auth_mode not in MINIPROGRAM_AUTH_MODES:
        raise ConfigurationError(f"WECHAT_MINIPROGRAM_AUTH must be 'cookie' or 'token', got {auth_mode!r}")
    scope = _string(config, "WECHAT_SCOPE")
    if scope not in protocol.OA_SCOPES:
        raise ConfigurationError(f"WECHAT_SCOPE must be one of {sorted(protocol.OA_SCOPES)}, got {scope!r}")
    lang = _string(config, "WECHAT_LANG")
    if lang not in protocol.USERINFO_LANGS:
        raise ConfigurationError(f"WECHAT_LANG must be one of {sorted(protocol.USERINFO_LANGS)}, got {lang!r}")
    fake = booleans["WECHAT_FAKE"]
    # The fake, served inside the app, is a path on this site: the browser keeps the app's prefix.
    open_base = config.get("WECHAT_OPEN_BASE_URL")
    fake_mount = fake and isinstance(open_base, str) and open_base.startswith("/")
    open_base_url = _path(config, "WECHAT_OPEN_BASE_URL") if fake_mount else _base_url(config, "WECHAT_OPEN_BASE_URL")
    return Settings(
        official_account=official_account,
        website=website,
        miniprogram=miniprogram,
        scope=scope,
        lang=lang,
        open_base_url=open_base_url,
        api_base_url=_base_url(config, "WECHAT_API_BASE_URL"),
        connect_timeout=_number(config, "WECHAT_CONNECT_TIMEOUT", float, 0.001),
        read_timeout=_number(config, "WECHAT_READ_TIMEOUT", float, 0.001),
        retries=_number(config, "WECHAT_RETRIES", int, 0),
        state_lifetime=_number(config, "WECHAT_STATE_LIFETIME", int, 1),
        max_pending_logins=_number(config, "WECHAT_MAX_PENDING_LOGINS", int, 1),
        profile_max_age=_number(config, "WECHAT_PROFILE_MAX_AGE", int, 0),
        store_url=_store_url(config),
        token_keys=_token_keys(config),
        renew_session=booleans["WECHAT_RENEW_SESSION"],
        remember=booleans["WECHAT_REMEMBER"],
        url_prefix=_path(config, "WECHAT_URL_PREFIX"),
        default_next=_path(config, "WECHAT_DEFAULT_NEXT"),
        fake=fake,
        http_adapters=_http_adapters(config),
        qr_script_url=_qr_script_url(config, open_base_url),
        default_language=_choice(config, "WECHAT_DEFAULT_LANGUAGE", LANGUAGES),
        miniprogram_auth=auth_mode,
        miniprogram_token_max_age=_number(config, "WECHAT_MINIPROGRAM_TOKEN_MAX_AGE", int, 1),
        app_token_endpoint=_choice(config, "WECHAT_APP_TOKEN_ENDPOINT", tuple(serverapi.APP_TOKEN_ENDPOINTS)),
        token_lock_timeout=_number(config, "WECHAT_TOKEN_LOCK_TIMEOUT", float, 1),
        follower_unionid=booleans["WECHAT_FOLLOWER_UNIONID"],
        wecom=wecom_settings,
        clock=_clock(config),
    )
