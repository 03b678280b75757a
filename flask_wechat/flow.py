"""One login from start to finish: state, pending list, single use, duplicate callbacks.

WeChat sometimes loads the callback twice with one code, users press reload, and
the in-app browser may drop the session cookie on the way. So a callback is
verified from its signed state (bound to this browser's pending list when the
cookie is there), its state is used once across all workers, and the outcome of
a code is kept for the code's lifetime: a second hit gets the first hit's answer
instead of WeChat's 40163 "code been used".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import session
from sqlalchemy.orm import Session, scoped_session

from . import errors, protocol
from .errors import AuthorizationDenied, StateError, WeChatAPIError, WeChatError
from .loginstate import LoginState, StateCodec
from .store import SharedStore, SQLStore, store_key

__all__ = ["LoginFlow", "Outcome"]

log = logging.getLogger(__name__)

#: Session key of this browser's pending logins: ``[[nonce, expiry], ...]``, oldest first.
PENDING_SESSION_KEY: Final = "_wechat_pending"
#: Longest ``code`` passed on to WeChat; WeChat's are 32 characters.
MAX_CODE_LENGTH: Final = 512
#: How long a duplicate hit waits for the first hit's outcome.
DUPLICATE_WAIT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class Outcome:
    """What a completed callback did: which local user logged in, and where to go."""

    user_id: str
    next_url: str


class OutcomeNote:
    """Where a callback's outcome goes, so that a duplicate hit can be answered with it.

    The exchange may write it inside its own database transaction (:meth:`write_in`),
    saving the store a commit of its own; otherwise the flow stores it afterwards.
    """

    def __init__(self, store: SharedStore, key: str, next_url: str) -> None:
        self.store = store
        self.key = key
        self.next_url = next_url
        self.written = False

    def value(self, user_id: str) -> str:
        return json.dumps({"user": user_id, "next": self.next_url})

    def write_in(self, session: Session | scoped_session[Session], user_id: str) -> None:
        """Add the outcome to ``session``'s transaction when the store lives in that database."""
        if isinstance(self.store, SQLStore) and self.store.shares(session):
            self.store.insert_in(session, self.key, self.value(user_id), protocol.QR_CODE_LIFETIME)
            self.written = True


class LoginFlow:
    """Begins and completes the browser logins of every flow (each flow is a number in the state)."""

    def __init__(
        self,
        codec: StateCodec,
        store: SharedStore,
        *,
        max_pending: int = 8,
        default_next: str = "/",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.codec = codec
        self.store = store
        self.max_pending = max_pending
        self.default_next = default_next
        self._sleep = sleep

    # -- the browser's pending logins -------------------------------------------------

    def _pending(self) -> list[list[Any]] | None:
        """Unexpired pending entries, or ``None`` when this session has no list at all."""
        stored = session.get(PENDING_SESSION_KEY)
        if not isinstance(stored, list):
            return None
        now = self.codec.clock()
        return [e for e in stored if isinstance(e, list) and len(e) == 2 and isinstance(e[1], int) and e[1] > now]

    def _save_pending(self, pending: list[list[Any]]) -> None:
        if pending:
            session[PENDING_SESSION_KEY] = pending[-self.max_pending :]
        else:
            session.pop(PENDING_SESSION_KEY, None)

    def forget_pending(self) -> None:
        """Drop every pending login of this browser (logout, session renewal)."""
        session.pop(PENDING_SESSION_KEY, None)

    # -- start ---------------------------------------------------------------------------

    def begin(self, flow: int, next_url: str, user_agent: str) -> str:
        """Mint the state for a new login of ``flow`` and remember it; return the state to send to WeChat."""
        login, token = self.codec.mint(flow, next_url, user_agent)
        if login.next_url is None:
            self.store.set(store_key("next", login.nonce), next_url, self.codec.lifetime)
        pending = self._pending() or []
        pending.append([login.nonce, login.issued_at + self.codec.lifetime])
        self._save_pending(pending)
        return token

    # -- finish --------------------------------------------------------------------------

    def _verify(self, state: str, user_agent: str, flows: Container[int], cookie_bound: Container[int]) -> LoginState:
        login = self.codec.verify(state, user_agent)
        if login.flow not in flows:
            raise StateError()  # minted for another flow (e.g. QR state at the in-WeChat callback)
        pending = self._pending()
        started_here = pending is not None and any(entry[0] == login.nonce for entry in pending)
        if pending is not None and not started_here:
            # This browser has logins of its own pending, and this is not one of them.
            raise StateError()
        if login.flow in cookie_bound and not started_here:
            # Flows that act on the logged-in user must come back to the browser that started
            # them, cookie and all: a signed state alone could be planted in a victim's browser.
            raise StateError()
        if pending is not None:
            self._save_pending([entry for entry in pending if entry[0] != login.nonce])
        return login

    def complete(
        self,
        state: str,
        code: str,
        user_agent: str,
        exchanges: Mapping[int, Callable[[str, OutcomeNote], Outcome]],
        cookie_bound: Container[int] = (),
    ) -> Outcome:
        """Verify the callback and run its flow's ``exchange(code, note)`` once per state.

        ``exchanges`` maps the flows this callback accepts to their work; flows in
        ``cookie_bound`` are refused unless this browser's session started them. A repeated hit
        with the same state and code replays the first outcome (waiting for it if the
        first hit is still talking to WeChat); anything else fails.
        """
        login = self._verify(state, user_agent, exchanges, cookie_bound)
        exchange = exchanges[login.flow]
        next_url = login.next_url or self.store.get(store_key("next", login.nonce)) or self.default_next
        if len(code) > MAX_CODE_LENGTH:
            raise StateError()
        outcome_key = store_key("outcome", login.nonce, code)
        state_key = store_key("state", login.nonce)
        if not self.store.add(state_key, outcome_key, self.codec.lifetime):
            if self.store.get(state_key) != outcome_key:
                raise StateError()  # the state was used with another code
            return self._replay(outcome_key)
        note = OutcomeNote(self.store, outcome_key, next_url)
        try:
            if not code:
                raise AuthorizationDenied()
            outcome = exchange(code, note)
        except WeChatError as exc:
            self.store.set(outcome_key, _error_record(exc), protocol.QR_CODE_LIFETIME)
            raise
        if not note.written:
            self.store.set(outcome_key, note.value(outcome.user_id), protocol.QR_CODE_LIFETIME)
        return outcome

    def _replay(self, outcome_key: str) -> Outcome:
        waited, delay = 0.0, 0.05
        while True:
            recorded = self.store.get(outcome_key)
            if recorded is not None:
                break
            if waited >= DUPLICATE_WAIT_SECONDS:
                raise StateError()
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)
        data = json.loads(recorded)
        if "user" not in data:
            raise _error_from_record(data)
        log.info("duplicate WeChat callback answered from the first hit's outcome")
        return Outcome(user_id=str(data["user"]), next_url=str(data["next"]))


def _error_record(exc: WeChatError) -> str:
    if isinstance(exc, WeChatAPIError):
        return json.dumps({"errcode": exc.errcode, "errmsg": exc.errmsg, "endpoint": exc.endpoint})
    return json.dumps({"error": type(exc).__name__})


def _error_from_record(data: dict[str, Any]) -> WeChatError:
    if "errcode" in data:
        return errors.error_for(int(data["errcode"]), str(data.get("errmsg", "")), str(data.get("endpoint", "")))
    kind = getattr(errors, str(data.get("error")), None)
    if isinstance(kind, type) and issubclass(kind, WeChatError):
        return kind()
    return StateError()
