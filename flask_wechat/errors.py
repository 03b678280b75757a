"""One exception tree for everything flask-wechat raises.

WeChat reports failures as ``{"errcode": N, "errmsg": "..."}`` inside HTTP 200
bodies; :func:`error_for` turns such a body into the class registered for its
errcode, so callers dispatch on types, never on ``errmsg`` text (which WeChat
decorates with changing ``hint``/``hints``/``rid`` suffixes).

No message built here ever contains a secret, a code or a token: only errcodes,
WeChat's own ``errmsg`` and endpoint paths.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

__all__ = [
    "AccessTokenError",
    "AccessTokenExpiredError",
    "AccountConflictError",
    "AuthorizationDenied",
    "CodeBlockedError",
    "CodeError",
    "CodeUsedError",
    "ConfigurationError",
    "CookieLostError",
    "CredentialsError",
    "IPNotAllowedError",
    "IdentityTakenError",
    "InvalidAccessTokenError",
    "InvalidAppIdError",
    "InvalidAppSecretError",
    "InvalidCodeError",
    "InvalidOpenIdError",
    "InvalidRefreshTokenError",
    "LoginFlowError",
    "LoginRefusedError",
    "MissingCodeError",
    "NotAMemberError",
    "RateLimitedError",
    "ReauthorizationRequired",
    "RefreshTokenError",
    "RefreshTokenExpiredError",
    "ScopeUnauthorizedError",
    "ServiceUnavailableError",
    "SnapshotUserError",
    "StateError",
    "StorageError",
    "SystemBusyError",
    "UntrustedDomainError",
    "UserDataError",
    "UserTicketError",
    "WeChatAPIError",
    "WeChatError",
    "WeChatResponseError",
    "WeChatTransportError",
    "error_for",
    "parse_rid",
]

# WeChat's errmsg suffixes over the years: " rid: a-b-c", ", hints: [ req_id: X ]", " hint: [X]",
# " hint: [X!]", " hints: [X!]"; the "!" and the spaces are not part of the id.
_RID_PATTERN = re.compile(r"(?:rid:\s*([0-9a-fA-F-]+)|req_id:\s*([\w-]+)|hints?:\s*\[\s*([\w-]+)!?\s*\])")


def parse_rid(errmsg: str) -> str | None:
    """Return WeChat's request id from an ``errmsg``, whichever suffix style it uses."""
    match = _RID_PATTERN.search(errmsg)
    if match is None:
        return None
    return next(group for group in match.groups() if group)


class WeChatError(Exception):
    """Root of every error flask-wechat raises."""


class WeChatAPIError(WeChatError):
    """WeChat answered with a nonzero ``errcode``.

    ``errcode`` is what to dispatch on; ``errmsg`` is WeChat's text, kept for logs;
    ``rid`` is WeChat's request id, the one thing its support asks for.
    """

    #: Whether the same request may succeed when simply sent again.
    retryable: ClassVar[bool] = False

    def __init__(self, errcode: int, errmsg: str = "", endpoint: str = "") -> None:
        super().__init__(errcode, errmsg, endpoint)
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint
        self.rid = parse_rid(errmsg)

    def __str__(self) -> str:
        where = f" from {self.endpoint}" if self.endpoint else ""
        return f"WeChat errcode {self.errcode}{where}: {self.errmsg}"


class SystemBusyError(WeChatAPIError):
    """-1 "system error": WeChat is busy; an idempotent call may be retried."""

    retryable = True


class RateLimitedError(WeChatAPIError):
    """45011 (per-minute) or 45009 (daily) quota reached: slow down, do not hammer."""


class CodeError(WeChatAPIError):
    """The authorization code cannot be exchanged; the user must authorize again."""


class InvalidCodeError(CodeError):
    """40029: the code is unknown, expired (5 or 10 minutes) or belongs to another appid."""


class CodeUsedError(CodeError):
    """40163: the code was exchanged already (codes are single-use)."""


class MissingCodeError(CodeError):
    """41008: the request carried no code."""


class CodeBlockedError(CodeError):
    """40226: WeChat judged the user high-risk and blocked the login."""


class CredentialsError(WeChatAPIError):
    """The app's own credentials are wrong: a configuration problem, not the user's."""


class InvalidAppIdError(CredentialsError):
    """40013: the appid is not valid."""


class InvalidAppSecretError(CredentialsError):
    """40125 (or 40001 when asking for an app access token): the appsecret does not belong to the appid."""


#: Where each platform's console lists the server IPs allowed to call with the AppSecret.
_WHITELIST_PLACES: Final = {
    "wechat": "mp.weixin.qq.com, 设置与开发 → 基本配置 → IP白名单 (mini programs: 开发管理 → 开发设置 → IP白名单; "
    "Open Platform apps: open.weixin.qq.com, 开发配置)",
    "wecom": "work.weixin.qq.com, 应用管理 → your app → 企业可信IP",
}


class IPNotAllowedError(CredentialsError):
    """40164 / 61004 (WeCom: 60020): this server's outbound IP is not on the app's IP whitelist.

    ``ip`` is the address WeChat saw (behind NAT, not the host's own); the message says
    where to add it. 89501 / 89503 / 89506 / 89507: the IP waits for, or was refused, the
    account administrator's confirmation.
    """

    _CONFIRMATION: ClassVar[frozenset[int]] = frozenset({89501, 89503, 89506, 89507})

    def __init__(self, errcode: int, errmsg: str = "", endpoint: str = "") -> None:
        super().__init__(errcode, errmsg, endpoint)
        match = _CALLER_IP.search(errmsg)
        self.ip: str | None = match.group(1) if match else None

    def __str__(self) -> str:
        ip = self.ip or "(WeChat did not say which)"
        if self.errcode in self._CONFIRMATION:
            return (
                f"WeChat errcode {self.errcode}: calls from IP {ip} need the account administrator's "
                f"confirmation (the message WeChat sent them), or the IP was refused for now; {self.errmsg}"
            )
        place = _WHITELIST_PLACES["wecom" if self.errcode == 60020 else "wechat"]
        return (
            f"WeChat errcode {self.errcode}: this server calls from IP {ip}, which is not on the IP whitelist; "
            f"add it at {place}"
        )


# "invalid ip 1.2.3.4 ipv6 ...", "requestIP: 1.2.3.4" (61004), WeCom's "from ip: 1.2.3.4".
class UntrustedDomainError(CredentialsError):
    """WeCom 50001: the code came back to a domain that is not the app's trusted domain (可信域名)."""

    def __init__(self, errcode: int, errmsg: str = "", endpoint: str = "", domain: str = "") -> None:
        super().__init__(errcode, errmsg, endpoint)
        self.args = (errcode, errmsg, endpoint, domain)
        self.domain = domain

    def __str__(self) -> str:
        return (
            f"WeCom errcode {self.errcode}: {self.domain or 'this domain'} is not the app's trusted domain; set it at "
            "work.weixin.qq.com, 应用管理 → your app → 网页授权及JS-SDK → 可信域名 (with its verification file)"
        )


class UserTicketError(WeChatAPIError):
    """WeCom 84014 / 84015: a member's ``user_ticket`` expired (after 1800 s) or is not valid."""


_CALLER_IP: Final = re.compile(r"(?:invalid ip|requestIP:|from ip:)\s*([0-9A-Fa-f.:]*[0-9A-Fa-f])")


class AccessTokenError(WeChatAPIError):
    """The user's access token is no longer usable; refreshing it may help."""


class InvalidAccessTokenError(AccessTokenError):
    """40001 / 40014: invalid credential (the token is invalid or not the latest)."""


class AccessTokenExpiredError(AccessTokenError):
    """42001: the access token expired (they live 7200 seconds)."""


class RefreshTokenError(WeChatAPIError):
    """The refresh token is no longer usable: the user must authorize again."""


class InvalidRefreshTokenError(RefreshTokenError):
    """40030: the refresh token is invalid."""


class RefreshTokenExpiredError(RefreshTokenError):
    """42002: the refresh token expired (30 days after authorization, never extended)."""


class InvalidOpenIdError(WeChatAPIError):
    """40003: the openid does not belong to this app or token."""


class ScopeUnauthorizedError(WeChatAPIError):
    """48001: the token's scope does not allow this API (e.g. userinfo with snsapi_base)."""


_ERRCODE_CLASSES: dict[int, type[WeChatAPIError]] = {
    -1: SystemBusyError,
    40001: InvalidAccessTokenError,
    40003: InvalidOpenIdError,
    40013: InvalidAppIdError,
    40014: InvalidAccessTokenError,
    40029: InvalidCodeError,
    40030: InvalidRefreshTokenError,
    40125: InvalidAppSecretError,
    40163: CodeUsedError,
    40164: IPNotAllowedError,
    40226: CodeBlockedError,
    40243: CredentialsError,  # the AppSecret is frozen
    41002: CredentialsError,  # appid missing
    41004: CredentialsError,  # secret missing
    41008: MissingCodeError,
    42001: AccessTokenExpiredError,
    42002: RefreshTokenExpiredError,
    45009: RateLimitedError,
    45011: RateLimitedError,
    45033: RateLimitedError,  # WeCom: too many concurrent calls
    48001: ScopeUnauthorizedError,
    50004: CredentialsError,  # the account may not use access tokens (a penalty)
    50007: CredentialsError,  # the account is frozen
    60020: IPNotAllowedError,
    61004: IPNotAllowedError,
    61024: CredentialsError,  # a third-party platform's token is needed
    84014: UserTicketError,
    84015: UserTicketError,
    89501: IPNotAllowedError,
    89503: IPNotAllowedError,
    89506: IPNotAllowedError,
    89507: IPNotAllowedError,
}


def error_for(errcode: int, errmsg: str = "", endpoint: str = "") -> WeChatAPIError:
    """Build the exception registered for ``errcode`` (plain :class:`WeChatAPIError` if none)."""
    cls = _ERRCODE_CLASSES.get(errcode, WeChatAPIError)
    return cls(errcode, errmsg, endpoint)


class WeChatTransportError(WeChatError):
    """WeChat could not be reached, timed out, or answered with a non-200 status."""

    retryable: ClassVar[bool] = True


class WeChatResponseError(WeChatError):
    """WeChat's answer was not the JSON object the protocol promises."""


class LoginFlowError(WeChatError):
    """The browser side of a login went wrong; views answer these with a page, never a 500."""


class AuthorizationDenied(LoginFlowError):
    """WeChat came back without a code: the user denied or aborted the authorization."""


class StateError(LoginFlowError):
    """The callback's ``state`` is missing, unknown, expired, used or tampered with (CSRF)."""


class CookieLostError(StateError):
    """The callback came back without the session that started it, even after starting again once."""


class SnapshotUserError(LoginFlowError):
    """WeChat returned a snapshot-page virtual identity (``is_snapshotuser: 1``)."""


class IdentityTakenError(LoginFlowError):
    """Binding refused: this WeChat identity already belongs to another local user."""


class AccountConflictError(LoginFlowError):
    """The login kept colliding with another one for the same person; trying again will do."""


class ServiceUnavailableError(WeChatError):
    """A service this site depends on (its database, the shared store) failed; trying again later will do.

    ``service`` names which ("database" or "store"); the message never holds a value that was sent.
    """

    def __init__(self, service: str, detail: str = "") -> None:
        super().__init__(service, detail)
        self.service = service
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.service} unavailable" + (f": {self.detail}" if self.detail else "")


class StorageError(WeChatError):
    """The database refused a login's rows for a reason a retry cannot fix; the message names the cause."""


class UserDataError(LoginFlowError):
    """A mini program's ``encryptedData`` does not open with its user's ``session_key``, or is not for this app."""


class NotAMemberError(LoginFlowError):
    """WeCom says the visitor is not a member of the company (``WECHAT_WECOM_ADMIT_NON_MEMBERS`` is off)."""


class LoginRefusedError(LoginFlowError):
    """The site's ``@wechat.login_allowed`` check refused this identity (e.g. a member of another department)."""


class ReauthorizationRequired(WeChatError):
    """The stored refresh token is dead: only a new WeChat authorization helps."""


class ConfigurationError(WeChatError, ValueError):
    """A ``WECHAT_*`` setting is missing or malformed; the message names the key."""
