"""A browser login from start to finish, in the order it happens.

:meth:`Logins.start` mints a state, remembers it in this browser's session and sends
the browser to WeChat. :meth:`Logins.finish` handles WeChat's callback, top to bottom:

1. the state is ours, fresh, and minted for this flow;
2. this browser started it (else: a login it completed is answered again, and a
   stranger's callback starts a fresh login in this browser, once);
3. it is claimed once across all workers (a second hit answers with the first's outcome);
4. the code is exchanged and the profile fetched (a silent login's follower asked for the
   unionid, with ``WECHAT_FOLLOWER_UNIONID``), with no database transaction open;
5. the account and user are stored, with the outcome, in one transaction;
6. the browser is logged in (in a renewed session) and sent to ``next``.

Failures leave as :class:`~flask_wechat.errors.WeChatError`; the views turn them into pages,
whose "try again" :meth:`Logins.retry` reads from the failed callback's state.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from flask import Request, current_app, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from . import protocol, signals
from .accounts import Accounts, Grant, Identity, LoginRecord
from .errors import (
    AuthorizationDenied,
    CookieLostError,
    LoginFlowError,
    LoginRefusedError,
    ServiceUnavailableError,
    StateError,
    WeChatError,
)
from .flows import WebFlow
from .loginstate import SignedState
from .miniprogram import bearer_user
from .outcomes import error_from_record, error_record, wait_for
from .runtime import Runtime
from .store import SQLStore, store_key

__all__ = ["Logins", "Retry"]

log = logging.getLogger(__name__)

#: What some WeChat clients send as the code when the person refused.
DENIED_CODE: Final = "authdeny"


@dataclass(frozen=True)
class Retry:
    """How a failed login is tried again: the same kind (a login, or a binding), then on to ``next_url``."""

    next_url: str
    bind: bool = False


class Logins:
    """The browser logins of one Flask app (and the session side of every login kind)."""

    def __init__(self, runtime: Runtime, sleep: Callable[[float], None] = time.sleep) -> None:
        self.runtime = runtime
        self._sleep = sleep

    # -- start -----------------------------------------------------------------------------

    def choose_flow(self, requested: str | None, user_agent: str) -> WebFlow | None:
        """The flow for this browser: the first of :meth:`candidates`, or the one ``requested``.

        ``requested`` names a flow (``oa``) or a family (``wecom``: its member that fits this
        browser); ``None`` means no such flow is configured.
        """
        web = self.runtime.web
        if requested not in (None, "", "auto"):
            family = [flow for flow in web.values() if flow.family == requested]
            if not family:
                return web.get(requested or "")
            # The family's flow for this browser, else its flow for any browser.
            fitting = [flow for flow in family if flow.fits(user_agent)] or [f for f in family if not f.in_client]
            return (fitting or family)[0]
        candidates = self.candidates(user_agent)
        return candidates[0] if candidates else None

    def candidates(self, user_agent: str) -> list[WebFlow]:
        """The flows this browser can use, likeliest first; more than one is for the person to choose.

        Inside WeChat or WeCom the client's own flow wins alone; elsewhere every flow for any
        browser (WeChat's QR code, WeCom's web login). With none that fits, the first configured.
        """
        fitting = [flow for flow in self.runtime.web.values() if flow.fits(user_agent)]
        in_client = [flow for flow in fitting if flow.in_client]
        if in_client:
            return in_client[:1]
        return fitting or list(self.runtime.web.values())[:1]

    def new_state(self, flow: WebFlow, next_url: str, *, bind: bool = False, restarted: bool = False) -> str:
        """Mint the state of a login this browser starts through ``flow``; ``next_url`` must be validated."""
        rt = self.runtime
        signed, state = rt.states.mint(flow.number, next_url, bind=bind, restarted=restarted)
        if signed.next_url is None:
            rt.store.set(store_key("next", signed.nonce), next_url, rt.states.lifetime)
        rt.browser.started(signed)
        return state

    def start(self, flow: WebFlow, next_url: str, *, bind: bool = False, restarted: bool = False) -> Response:
        """Send the browser to ``flow``'s authorize page; WeChat (or WeCom) will call back with a code."""
        state = self.new_state(flow, next_url, bind=bind, restarted=restarted)
        url = flow.authorize_url(url_for(flow.callback_endpoint, _external=True), state)
        if url.startswith("/"):
            # A stand-in served inside this app (the fake) is a path: keep the app's own prefix.
            url = request.script_root + url
        return redirect(url)

    # -- the callback ----------------------------------------------------------------------

    def finish(self, flow: WebFlow, args: Any) -> Response:
        """Complete the login (or binding) WeChat's callback carries; see the module's steps."""
        rt = self.runtime
        signed = rt.states.verify(str(args.get("state", "")))
        if signed.flow != flow.number:
            raise StateError()  # minted for another flow (e.g. a QR state at the in-WeChat callback)
        started_here = rt.browser.is_pending(signed.nonce)
        if not started_here and not rt.browser.is_done(signed.nonce):
            return self._without_session(flow, signed)
        next_url = self._next_url(signed)
        outcome_key = store_key("outcome", signed.nonce)
        # Done here before, or claimed a moment ago by a concurrent hit of this browser: answer as that hit did.
        claimed = started_here and rt.store.add(store_key("state", signed.nonce), "claimed", rt.states.lifetime)
        if not claimed:
            return self._replay(signed, outcome_key, next_url)
        try:
            code = _code(args)
            bind_to = self._user_to_bind(signed)
            accounts = rt.accounts()
            identity, grant = flow.identify(code, accounts)
            record = self.record(identity, grant, bind_to=bind_to, outcome_key=outcome_key, accounts=accounts)
        except WeChatError as exc:
            self._remember_failure(outcome_key, exc)
            rt.browser.completed(signed)
            signals.login_failed.send(current_app._get_current_object(), error=exc)  # type: ignore[attr-defined]
            raise
        self.log_in(record.user, record)
        rt.browser.completed(signed)
        return redirect(next_url)

    def retry(self, args: Any) -> Retry:
        """How to try a failed callback again: as its state says (binding or login, and ``next``), else a login.

        The state may be unreadable (not ours, expired) and a long ``next`` sits in the shared
        store, which may be what failed: then the person tries a login to the default page.
        """
        try:
            signed = self.runtime.states.verify(str(args.get("state", "")))
            return Retry(self._next_url(signed), signed.bind)
        except WeChatError:
            return Retry(request.script_root + self.runtime.settings.default_next)

    def _without_session(self, flow: WebFlow, signed: SignedState) -> Response:
        """A callback this browser did not start: its cookie was lost, or the URL was planted or leaked.

        Nothing it carries is used. A logged-in browser just goes on to ``next``; any other
        starts a fresh login of its own, once (inside WeChat, with earlier consent, silently).
        """
        if signed.bind:
            raise StateError()  # a binding acts on the logged-in user: only its own session may finish it
        next_url = self._next_url(signed)
        if current_user.is_authenticated:
            return redirect(next_url)
        if signed.restarted:
            raise CookieLostError()
        log.info("WeChat callback without the session that started it; starting the login again")
        return self.start(flow, next_url, restarted=True)

    def _next_url(self, signed: SignedState) -> str:
        if signed.next_url is not None:
            return signed.next_url
        stored = self.runtime.store.get(store_key("next", signed.nonce))
        return stored or request.script_root + self.runtime.settings.default_next

    def _user_to_bind(self, signed: SignedState) -> Any:
        if not signed.bind:
            return None
        if not current_user.is_authenticated:
            raise LoginFlowError()  # logged out since the binding started
        return current_user._get_current_object()

    def _replay(self, signed: SignedState, outcome_key: str, next_url: str) -> Response:
        """A second hit of a login this browser took part in: the first hit's outcome, not a second exchange."""
        recorded = wait_for(lambda: self.runtime.store.get(outcome_key), self._sleep)
        if recorded is None:
            raise StateError()  # the first hit never finished
        if recorded.startswith("{"):
            raise error_from_record(json.loads(recorded))
        user = self.runtime.accounts().load_user(recorded)
        if user is None:
            raise StateError()  # deleted, or marked for re-authorization, since the first hit
        log.info("second WeChat callback of one login answered with the first hit's outcome")
        self.log_in(user)
        self.runtime.browser.completed(signed)
        return redirect(next_url)

    def _remember_failure(self, outcome_key: str, exc: WeChatError) -> None:
        """Keep a failure as the login's outcome, so a reload answers at once (best effort)."""
        try:
            self.runtime.store.set(outcome_key, error_record(exc), protocol.QR_CODE_LIFETIME)
        except ServiceUnavailableError:
            log.warning("the outcome of a failed WeChat login could not be kept: the shared store is unavailable")

    # -- the session side of every login kind ----------------------------------------------

    def record(
        self,
        identity: Identity,
        grant: Grant | None,
        *,
        bind_to: Any = None,
        outcome_key: str | None = None,
        accounts: Accounts | None = None,
    ) -> LoginRecord:
        """Store a completed login; with ``outcome_key``, the outcome too (in the same transaction when it can).

        ``accounts`` may be the one that already looked the account up in this transaction.
        """
        rt = self.runtime
        if rt.hooks.allow_login is not None and not rt.hooks.allow_login(identity):
            raise LoginRefusedError()  # before any row is written or anyone logged in
        accounts = accounts or rt.accounts()
        outcome_row = None
        if outcome_key is not None and isinstance(rt.store, SQLStore) and rt.store.shares(accounts.session):
            outcome_row = rt.store.row(outcome_key, protocol.QR_CODE_LIFETIME)
        factory = rt.hooks.create_user or _bare_user(rt.user_model)
        record = accounts.record(identity, grant, factory, bind_to=bind_to, outcome_row=outcome_row)
        if outcome_key is not None and outcome_row is None:
            rt.store.set(outcome_key, str(record.user.id), protocol.QR_CODE_LIFETIME)
        if record.new_account:
            signals.account_created.send(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                user=record.user,
                account=record.account,
                new_user=record.new_user,
            )
        return record

    def log_in(self, user: Any, record: LoginRecord | None = None, *, renew: bool | None = None) -> None:
        """Log ``user`` in with Flask-Login and tell the app.

        The session is renewed first when someone else (or nobody) was logged in, so a
        login never inherits a session someone may have planted (fixation).
        """
        if renew is None:
            renew = not current_user.is_authenticated or str(current_user.get_id()) != str(user.get_id())
        if renew and self.runtime.settings.renew_session:
            session.clear()
        login_user(user, remember=self.runtime.settings.remember)
        signals.logged_in.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            account=record.account if record else None,
            new_user=bool(record and record.new_user),
            new_account=bool(record and record.new_account),
        )

    def log_out(self) -> None:
        """Log the user out, revoke their mini program tokens, and drop the extension's session keys."""
        user = current_user._get_current_object() if current_user.is_authenticated else None
        if user is not None and hasattr(user, "wechat_token_version"):
            self.runtime.accounts().revoke_bearer_tokens(user)
        logout_user()
        self.runtime.browser.forget()
        if user is not None:
            signals.logged_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]

    def load_user(self, user_id: str) -> Any:
        """Flask-Login's user loader: ``None`` for unknown users and those due for re-authorization."""
        return self.runtime.accounts().load_user(user_id)

    def load_request_user(self, request: Request) -> Any:
        """Flask-Login's request loader: the user of a mini program's ``Authorization: Bearer`` token."""
        header = request.headers.get("Authorization", "")
        if self.runtime.settings.miniprogram_auth != "token" or not header.startswith("Bearer "):
            return None
        return bearer_user(self.runtime, header[len("Bearer ") :].strip())


def _code(args: Any) -> str:
    code = str(args.get("code", ""))
    if not code or code == DENIED_CODE:
        raise AuthorizationDenied()
    if len(code) > protocol.MAX_CODE_LENGTH:
        raise StateError()
    return code


def _bare_user(user_model: type[Any]) -> Callable[[Identity], Any]:
    return lambda identity: user_model()
