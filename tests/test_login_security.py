"""Attacks on the login path, each run for real: a login completes only in the browser that started it.

Every test plays the attacker with its own test client (its own cookie jar) and the
victim with another, against the fake WeChat on loopback. docs/security.md lists each
attack with the test here that covers it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from flask_wechat.testing import FakeWeChat

from .apps import WeChatAccount, db
from .conftest import login, visit_wechat

PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile "
    "Safari/537.36 MicroMessenger/8.0.49.2600(0x28003133) NetType/WIFI Language/zh_CN"
)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def start(client: FlaskClient, url: str = "/wechat/login?next=/profile", **headers: str) -> str:
    """Start a login; the authorize URL it sends the browser to."""
    response = client.get(url, headers=headers)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.location


def callback_of(authorize_url: str, user: str = "alice") -> str:
    """Consent at the fake WeChat as ``user``; the callback URL WeChat sends the browser to."""
    answer = visit_wechat(authorize_url, user)
    assert answer.status_code == 302, answer.text
    return path_of(answer.headers["Location"])


def state_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["state"]


def logged_in_as(app: Flask, client: FlaskClient) -> str | None:
    """The openid the client is logged in as, or None."""
    response = client.get("/profile")
    if response.status_code != 200:
        return None
    return response.get_data(as_text=True).split("openid=")[1].split()[0]


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.query(model).count()


# -- 1. login CSRF ----------------------------------------------------------------------------


def test_planted_callback_in_a_fresh_browser_starts_the_victims_own_login(app: Flask, fake_wechat: FakeWeChat) -> None:
    attacker, victim = app.test_client(), app.test_client()
    planted = callback_of(start(attacker), "alice")

    answer = victim.get(planted)

    # The victim is sent to WeChat with a state of their own; the attacker's code is never used.
    assert answer.status_code == 302
    assert urlsplit(answer.location).path.endswith("/connect/oauth2/authorize")
    assert state_of(answer.location) != state_of(planted)
    assert logged_in_as(app, victim) is None
    assert fake_wechat.calls("access_token") == []
    assert count(app, WeChatAccount) == 0


def test_planted_callback_in_a_logged_in_browser_changes_nothing(app: Flask, fake_wechat: FakeWeChat) -> None:
    attacker, victim = app.test_client(), app.test_client()
    login(victim, user="bob")
    bob = logged_in_as(app, victim)
    planted = callback_of(start(attacker), "alice")

    answer = victim.get(planted)

    assert answer.status_code == 302 and answer.location.endswith("/profile")
    assert logged_in_as(app, victim) == bob
    assert len(fake_wechat.calls("access_token")) == 1  # bob's own login only


def test_planted_bind_callback_never_binds(app: Flask, fake_wechat: FakeWeChat) -> None:
    attacker, victim = app.test_client(), app.test_client()
    login(attacker, user="alice")
    login(victim, user="bob")
    accounts_before = count(app, WeChatAccount)
    bind_start = attacker.get("/wechat/bind?next=/profile")
    planted = callback_of(bind_start.location, "carol")

    answer = victim.get(planted)

    assert answer.status_code == 400
    assert count(app, WeChatAccount) == accounts_before
    assert len(fake_wechat.calls("access_token")) == 2


# -- 2. a used callback URL, loaded elsewhere -------------------------------------------------


def test_used_callback_url_in_a_second_browser_with_the_same_user_agent_logs_nobody_in(
    app: Flask, fake_wechat: FakeWeChat
) -> None:
    first, second = app.test_client(), app.test_client()
    url = callback_of(start(first, **{"User-Agent": PHONE_UA}))
    assert first.get(url, headers={"User-Agent": PHONE_UA}).status_code == 302
    assert logged_in_as(app, first) is not None

    for _ in range(3):
        answer = second.get(url, headers={"User-Agent": PHONE_UA})
        assert answer.status_code == 302 and "/connect/oauth2/authorize" in answer.location
        assert logged_in_as(app, second) is None
    assert len(fake_wechat.calls("access_token")) == 1


def test_restart_happens_once_then_says_cookies_are_needed(app: Flask) -> None:
    # A browser that keeps no cookie at all: every request is a fresh client.
    url = callback_of(start(app.test_client()))
    restarted = app.test_client().get(url)
    assert restarted.status_code == 302
    second_url = callback_of(restarted.location)

    answer = app.test_client().get(second_url)

    assert answer.status_code == 400
    assert 'data-error="CookieLostError"' in answer.get_data(as_text=True)


def test_lost_cookie_restart_logs_the_person_in_as_themselves(app: Flask) -> None:
    client = app.test_client()
    url = callback_of(start(client), "bob")
    client.delete_cookie("session")  # WeChat's browser dropped the cookie on the way

    restarted = client.get(url)
    landing = client.get(callback_of(restarted.location, "bob"))

    assert landing.status_code == 302 and landing.location.endswith("/profile")
    assert logged_in_as(app, client) is not None


# -- 3. WeChat's second callback of one login ------------------------------------------------


def test_second_callback_with_a_new_code_lands_logged_in(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    authorize = start(client)
    first, second = callback_of(authorize), callback_of(authorize)
    assert state_of(first) == state_of(second) and first != second

    assert client.get(first).status_code == 302
    again = client.get(second)

    assert again.status_code == 302 and again.location.endswith("/profile")
    assert logged_in_as(app, client) is not None
    assert len(fake_wechat.calls("access_token")) == 1


def test_reload_of_the_callback_lands_logged_in_without_a_second_exchange(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    url = callback_of(start(client))
    client.get(url)
    assert client.get(url).status_code == 302
    assert len(fake_wechat.calls("access_token")) == 1


def test_in_wechat_authorize_link_asks_for_one_callback(app: Flask) -> None:
    url = start(app.test_client())
    query = urlsplit(url).query
    keys = [key for key, _ in parse_qsl(query)]
    assert keys == ["appid", "redirect_uri", "response_type", "scope", "state", "connect_redirect"]
    assert "connect_redirect=1" in query and url.endswith("#wechat_redirect")


# -- 4. the network changes while the person is at WeChat ------------------------------------


def test_user_agent_change_mid_login_still_logs_in(app: Flask) -> None:
    client = app.test_client()
    url = callback_of(start(client, **{"User-Agent": PHONE_UA}))
    answer = client.get(url, headers={"User-Agent": PHONE_UA.replace("NetType/WIFI", "NetType/4G")})
    assert answer.status_code == 302 and answer.location.endswith("/profile")
    assert logged_in_as(app, client) is not None


# -- 5. logout is a POST with a token ---------------------------------------------------------


def test_cross_site_get_does_not_log_out(app: Flask) -> None:
    client = app.test_client()
    login(client)
    page = client.get("/wechat/logout")
    assert page.status_code == 200 and 'method="post"' in page.get_data(as_text=True)
    assert logged_in_as(app, client) is not None


def test_post_without_the_sessions_token_does_not_log_out(app: Flask) -> None:
    client = app.test_client()
    login(client)
    assert client.post("/wechat/logout").status_code == 400
    assert client.post("/wechat/logout", data={"wechat_csrf": "forged"}).status_code == 400
    assert logged_in_as(app, client) is not None


def test_post_with_the_sessions_token_logs_out(app: Flask) -> None:
    client = app.test_client()
    login(client)
    page = client.get("/wechat/logout").get_data(as_text=True)
    token = page.split('name="wechat_csrf" value="')[1].split('"')[0]
    answer = client.post("/wechat/logout", data={"wechat_csrf": token, "next": "/"})
    assert answer.status_code == 302
    assert logged_in_as(app, client) is None


# -- WeChat's QR frame (wxLogin.js with self_redirect) ----------------------------------------

CROSS_SITE_FRAME = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
OWN_FRAME = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}


def test_callback_in_a_cross_site_frame_is_loaded_again_from_this_site(app: Flask, fake_wechat: FakeWeChat) -> None:
    client = app.test_client()
    url = callback_of(start(client))

    reload = client.get(url, headers=CROSS_SITE_FRAME)

    # Nothing was used yet: the page only loads the same URL again from this site's own document.
    assert reload.status_code == 200 and fake_wechat.calls("access_token") == []
    assert reload.headers["Cache-Control"] == "no-store" and reload.headers["Referrer-Policy"] == "no-referrer"
    assert f'content="0;url={url.replace("&", "&amp;")}"' in reload.get_data(as_text=True)
    done = client.get(url, headers=OWN_FRAME)
    # The frame hands the whole page on to next.
    assert done.status_code == 200 and 'target="_top"' in done.get_data(as_text=True)
    assert 'window.top.location.replace("/profile")' in done.get_data(as_text=True)
    assert logged_in_as(app, client) is not None
