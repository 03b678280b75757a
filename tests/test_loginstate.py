"""Signed login states: WeChat-safe, tamper-evident, browser-bound, expiring, key-rotatable."""

from __future__ import annotations

import pytest

from flask_wechat.errors import StateError
from flask_wechat.loginstate import MAX_EMBEDDED_NEXT, StateCodec
from flask_wechat.protocol import is_valid_state

UA = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_state_round_trips_and_fits_wechat_rules() -> None:
    codec = StateCodec(["k"], lifetime=600)
    login, state = codec.mint(3, "/orders?id=7", UA)
    assert is_valid_state(state) and len(state) <= 128
    verified = codec.verify(state, UA)
    assert verified == login
    assert verified.flow == 3 and verified.next_url == "/orders?id=7"


def test_long_next_is_left_out_of_the_state() -> None:
    codec = StateCodec(["k"], lifetime=600)
    login, state = codec.mint(0, "/" + "x" * MAX_EMBEDDED_NEXT, UA)
    assert login.next_url is None and len(state) <= 128
    assert codec.verify(state, UA).next_url is None


def test_two_states_differ() -> None:
    codec = StateCodec(["k"], lifetime=600)
    assert codec.mint(0, "/", UA)[1] != codec.mint(0, "/", UA)[1]


@pytest.mark.parametrize("position", [0, 2, 10, 30, 40, -1])
def test_any_changed_digit_is_refused(position: int) -> None:
    codec = StateCodec(["k"], lifetime=600)
    _, state = codec.mint(0, "/p", UA)
    digit = f"{(int(state[position], 16) + 1) % 16:x}"
    tampered = state[:position] + digit + (state[position + 1 :] if position != -1 else "")
    with pytest.raises(StateError):
        codec.verify(tampered, UA)


@pytest.mark.parametrize("junk", ["", "zz", "a" * 65, "g" * 80, "a" * 200, "00" * 33])
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(StateError):
        StateCodec(["k"], lifetime=600).verify(junk, UA)


def test_other_browser_or_other_key_is_refused() -> None:
    _, state = StateCodec(["k"], lifetime=600).mint(0, "/", UA)
    with pytest.raises(StateError):
        StateCodec(["k"], lifetime=600).verify(state, "Mozilla/5.0 Chrome")
    with pytest.raises(StateError):
        StateCodec(["other"], lifetime=600).verify(state, UA)


def test_old_key_still_verifies_after_rotation() -> None:
    _, state = StateCodec(["old"], lifetime=600).mint(0, "/", UA)
    assert StateCodec(["new", "old"], lifetime=600).verify(state, UA).next_url == "/"


def test_state_expires_and_refuses_the_far_future() -> None:
    clock = Clock()
    codec = StateCodec(["k"], lifetime=600, clock=clock)
    _, state = codec.mint(0, "/", UA)
    clock.now += 599
    codec.verify(state, UA)
    clock.now += 1
    with pytest.raises(StateError):
        codec.verify(state, UA)
    clock.now -= 600 + 61
    with pytest.raises(StateError):
        codec.verify(state, UA)


def test_an_empty_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="secret key"):
        StateCodec([""], lifetime=600)
