"""The exception tree: typed by errcode, picklable, rid kept, secrets absent."""

from __future__ import annotations

import pickle

import pytest

from flask_wechat import errors


@pytest.mark.parametrize(
    ("errcode", "cls"),
    [
        (40029, errors.InvalidCodeError),
        (40163, errors.CodeUsedError),
        (41008, errors.MissingCodeError),
        (40013, errors.InvalidAppIdError),
        (40125, errors.InvalidAppSecretError),
        (40001, errors.InvalidAccessTokenError),
        (42001, errors.AccessTokenExpiredError),
        (42002, errors.RefreshTokenExpiredError),
        (40030, errors.InvalidRefreshTokenError),
        (40003, errors.InvalidOpenIdError),
        (48001, errors.ScopeUnauthorizedError),
        (45011, errors.RateLimitedError),
        (-1, errors.SystemBusyError),
        (40226, errors.CodeBlockedError),
    ],
)
def test_each_errcode_has_its_class(errcode: int, cls: type[errors.WeChatAPIError]) -> None:
    exc = errors.error_for(errcode, "msg, rid: 6270dbb5-47d9f324-018472b7", "/sns/x")
    assert type(exc) is cls
    assert isinstance(exc, errors.WeChatError)
    assert (exc.errcode, exc.errmsg, exc.endpoint) == (errcode, "msg, rid: 6270dbb5-47d9f324-018472b7", "/sns/x")
    assert exc.rid == "6270dbb5-47d9f324-018472b7"


def test_groups_let_callers_catch_by_meaning() -> None:
    assert issubclass(errors.InvalidCodeError, errors.CodeError)
    assert issubclass(errors.CodeUsedError, errors.CodeError)
    assert issubclass(errors.AccessTokenExpiredError, errors.AccessTokenError)
    assert issubclass(errors.RefreshTokenExpiredError, errors.RefreshTokenError)
    assert issubclass(errors.InvalidAppSecretError, errors.CredentialsError)
    assert errors.SystemBusyError.retryable and not errors.InvalidCodeError.retryable
    assert issubclass(errors.ConfigurationError, ValueError)


@pytest.mark.parametrize(
    ("errmsg", "rid"),
    [
        ("invalid code, rid: 6270dbb5-47d9f324-018472b7", "6270dbb5-47d9f324-018472b7"),
        ("code been used, hints: [ req_id: 7L8aBa05974105 ]", "7L8aBa05974105"),
        ("invalid appsecret, view more at http://t.cn/RAEkdVq hint: [1fUWsA04483054]", "1fUWsA04483054"),
        ("invalid code, hints: [ req_id: GeBb7a0297ns31 ]", "GeBb7a0297ns31"),
        ("invalid credential, access_token is invalid or not latest hint: [pQxOxa0285sz45!]", "pQxOxa0285sz45"),
        ("system error hints: [Ab12-3Cd!]", "Ab12-3Cd"),
        ("invalid code hint: [ Kz9Ab10297ns31! ]", "Kz9Ab10297ns31"),
        ("invalid code hints: [ Kz9Ab10297ns31 ]", "Kz9Ab10297ns31"),
        ("system error", None),
    ],
)
def test_rid_is_found_in_every_suffix_style(errmsg: str, rid: str | None) -> None:
    assert errors.parse_rid(errmsg) == rid


def test_errors_pickle_with_their_fields() -> None:
    exc = errors.error_for(40163, "code been used, rid: 1-2-3", "/sns/oauth2/access_token")
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is errors.CodeUsedError
    assert (clone.errcode, clone.errmsg, clone.endpoint, clone.rid) == (40163, exc.errmsg, exc.endpoint, "1-2-3")
    flow = pickle.loads(pickle.dumps(errors.StateError()))
    assert isinstance(flow, errors.StateError)


def test_message_names_errcode_and_endpoint() -> None:
    assert str(errors.error_for(40029, "invalid code", "/sns/oauth2/access_token")) == (
        "WeChat errcode 40029 from /sns/oauth2/access_token: invalid code"
    )
