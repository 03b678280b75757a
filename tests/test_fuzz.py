"""Arbitrary input at every view of the blueprint: never a 5xx, never a user row or a stored token."""

from __future__ import annotations

import re
from urllib.parse import quote, quote_from_bytes

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from .apps import User, WeChatAccount, db

PATHS = ["/wechat/login", "/wechat/callback", "/wechat/logout"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(st.characters(codec="utf-8"), max_size=300)
raw = st.binary(max_size=300)
params = st.dictionaries(st.sampled_from(["code", "state", "next", "error", "x", "code[]"]), text, max_size=4)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


def nothing_stored(app: Flask) -> bool:
    with app.app_context():
        users = db.session.execute(select(func.count()).select_from(User)).scalar_one()
        tokens = db.session.execute(
            select(func.count()).select_from(WeChatAccount).where(WeChatAccount.access_token.is_not(None))
        ).scalar_one()
    return users == 0 and tokens == 0


@FUZZ
@given(path=st.sampled_from(PATHS), query=params, user_agent=header_text, method=st.sampled_from(["GET", "POST"]))
def test_any_query_any_view(
    app: Flask, client: FlaskClient, path: str, query: dict[str, str], user_agent: str, method: str
) -> None:
    query_string = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    response = client.open(path, method=method, query_string=query_string, headers={"User-Agent": user_agent})
    assert response.status_code < 500
    assert nothing_stored(app)


@FUZZ
@given(path=st.sampled_from(PATHS), body=raw, cookie=header_text, content_type=header_text)
def test_any_raw_bytes_headers_and_body(
    app: Flask, client: FlaskClient, path: str, body: bytes, cookie: str, content_type: str
) -> None:
    response = client.open(
        path,
        method="POST" if path != "/wechat/login" else "GET",
        query_string=quote_from_bytes(body, safe="=&"),
        data=body,
        headers={"Cookie": cookie, "Content-Type": content_type or "application/octet-stream"},
    )
    assert response.status_code < 500
    assert nothing_stored(app)


@FUZZ
@given(code=text)
def test_any_code_with_a_valid_state(app: Flask, client: FlaskClient, code: str) -> None:
    start = client.get("/wechat/login?next=/profile")
    state = re.search(r"state=([0-9a-f]+)", start.location).group(1)
    response = client.get(f"/wechat/callback?state={state}&code={quote(code, safe='')}")
    assert response.status_code < 500
    assert nothing_stored(app)
