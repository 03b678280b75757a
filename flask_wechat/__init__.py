"""Log in with WeChat for Flask: Authlib, Flask-Login and Flask-SQLAlchemy, done right.

Public names are imported lazily, so ``import flask_wechat.protocol`` stays free
of Flask and the pure WeChat protocol can be used anywhere.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .accounts import Identity
    from .errors import (
        AccessTokenError,
        AuthorizationDenied,
        CodeError,
        ConfigurationError,
        CredentialsError,
        LoginFlowError,
        RateLimitedError,
        ReauthorizationRequired,
        RefreshTokenError,
        SnapshotUserError,
        StateError,
        SystemBusyError,
        WeChatAPIError,
        WeChatError,
        WeChatResponseError,
        WeChatTransportError,
    )
    from .ext import WeChat
    from .models import WeChatAccountMixin, WeChatUserMixin
    from .protocol import Token, UserInfo

__version__ = "0.1.0"

_EXPORTS = {
    "WeChat": "ext",
    "WeChatUserMixin": "models",
    "WeChatAccountMixin": "models",
    "Identity": "accounts",
    "Token": "protocol",
    "UserInfo": "protocol",
    "WeChatError": "errors",
    "WeChatAPIError": "errors",
    "SystemBusyError": "errors",
    "RateLimitedError": "errors",
    "CodeError": "errors",
    "CredentialsError": "errors",
    "AccessTokenError": "errors",
    "RefreshTokenError": "errors",
    "WeChatTransportError": "errors",
    "WeChatResponseError": "errors",
    "LoginFlowError": "errors",
    "AuthorizationDenied": "errors",
    "StateError": "errors",
    "SnapshotUserError": "errors",
    "ReauthorizationRequired": "errors",
    "ConfigurationError": "errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flask_wechat' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
