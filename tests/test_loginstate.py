"""Signed login states: WeChat-safe, tamper-evident, expiring, key-rotatable; the session binds them to a browser."""

from __future__ import annotations

import pytest

from flask_wechat.errors import StateError
from flask_wechat.loginstate import MAX_EMBEDDED_NEXT, StateCodec
from flask_wechat.protocol import is_valid_state


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_state_round_trips_and_fits_wechat_rules() -> None:
    codec = StateCodec(["k"], lifetime=600)
    login, state = codec.mint(3, "/orders?id=7")
    assert is_valid_state(state) and len(state) <= 128
    verified = codec.verify(state)
    assert verified == login
    assert verified.flow == 3 and verified.next_url == "/orders?id=7"
    assert not verified.bind and not verified.restarted


@pytest.mark.parametrize(("bind", "restarted"), [(True, False), (False, True), (True, True)])
def test_state_carries_binding_and_restart(bind: bool, restarted: bool) -> None:
    codec = StateCodec(["k"], lifetime=600)
    _, state = codec.mint(1, "/", bind=bind, restarted=restarted)
    verified = codec.verify(state)
    assert (verified.flow, verified.bind, verified.restarted) == (1, bind, restarted)


def test_state_does_not_depend_on_the_user_agent() -> None:
    # The session binds a state to its browser; a User-Agent changes with the network (NetType/4G).
    codec = StateCodec(["k"], lifetime=600)
    signed, state = codec.mint(0, "/")
    assert codec.verify(state) == signed


def test_long_next_is_left_out_of_the_state() -> None:
    codec = StateCodec(["k"], lifetime=600)
    login, state = codec.mint(0, "/" + "x" * MAX_EMBEDDED_NEXT)
    assert login.next_url is None and len(state) <= 128
    assert codec.verify(state).next_url is None


def test_two_states_differ() -> None:
    codec = StateCodec(["k"], lifetime=600)
    assert codec.mint(0, "/")[1] != codec.mint(0, "/")[1]


@pytest.mark.parametrize("position", [0, 2, 10, 30, 40, -1])
def test_any_changed_digit_is_refused(position: int) -> None:
    codec = StateCodec(["k"], lifetime=600)
    _, state = codec.mint(0, "/p")
    digit = f"{(int(state[position], 16) + 1) % 16:x}"
    tampered = state[:position] + digit + (state[position + 1 :] if position != -1 else "")
    with pytest.raises(StateError):
        codec.verify(tampered)


@pytest.mark.parametrize("junk", ["", "zz", "a" * 65, "g" * 80, "a" * 200, "00" * 33])
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(StateError):
        StateCodec(["k"], lifetime=600).verify(junk)


def test_other_key_is_refused() -> None:
    _, state = StateCodec(["k"], lifetime=600).mint(0, "/")
    with pytest.raises(StateError):
        StateCodec(["other"], lifetime=600).verify(state)


def test_old_key_still_verifies_after_rotation() -> None:
    _, state = StateCodec(["old"], lifetime=600).mint(0, "/")
    assert StateCodec(["new", "old"], lifetime=600).verify(state).next_url == "/"


def test_state_expires_and_refuses_the_far_future() -> None:
    clock = Clock()
    codec = StateCodec(["k"], lifetime=600, clock=clock)
    _, state = codec.mint(0, "/")
    clock.now += 599
    codec.verify(state)
    clock.now += 1
    with pytest.raises(StateError):
        codec.verify(state)
    clock.now -= 600 + 61
    with pytest.raises(StateError):
        codec.verify(state)


def test_an_empty_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="secret key"):
        StateCodec([""], lifetime=600)
