"""What the extension keeps for one Flask app, and the logins it runs there.

:class:`WeChatState` lives in ``app.extensions["wechat"]``: the settings, one
Authlib remote app per browser flow (``oa`` inside WeChat, ``qr`` on desktops),
the mini program client, the login flow with its shared store, and the models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from flask import current_app, g, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from . import config, protocol, signals
from .client import MiniProgramClient, WebFlow, WeChatApp, token_from_authlib
from .compliance import KeepAliveAdapter, as_authlib_token
from .crypto import TokenCipher
from .errors import LoginFlowError, SnapshotUserError, StateError, WeChatError
from .flow import LoginFlow, Outcome, OutcomeNote
from .models import utcnow
from .storage import AccountStore, Credentials, Identity, LoginRecord

__all__ = ["BIND", "WeChatState"]

log = logging.getLogger(__name__)

#: Added to a flow's number in the state when the login binds WeChat to the logged-in user.
BIND: Final = 8
#: Callback endpoint of each browser flow.
CALLBACKS: Final = {"oa": "wechat.callback", "qr": "wechat.qr_callback"}

UserFactory = Callable[[Identity], Any]


def user_agent() -> str:
    """The browser's User-Agent (login states are bound to it)."""
    return request.headers.get("User-Agent", "")


class WeChatState:
    """Everything the extension keeps for one Flask app."""

    def __init__(
        self,
        settings: config.Settings,
        db: Any,
        user_model: type[Any],
        account_model: type[Any],
        create_user: Callable[[WeChatState], UserFactory],
        adapter: KeepAliveAdapter,
        fake: Any = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.user_model = user_model
        self.account_model = account_model
        self._create_user = create_user
        self.adapter = adapter
        #: The in-app fake WeChat when ``WECHAT_FAKE`` is on, else ``None``.
        self.fake = fake
        self.cipher = TokenCipher(settings.token_keys) if settings.token_keys else None
        #: Set by ``init_app`` right after this state exists.
        self.web_flows: dict[str, WebFlow] = {}
        self.clients: dict[str, WeChatApp] = {}
        self.miniprogram: MiniProgramClient | None = None
        self.flow: LoginFlow

    @property
    def client(self) -> WeChatApp:
        """The remote app of the default browser flow (in-WeChat if configured, else QR)."""
        return self.clients["oa"] if "oa" in self.clients else self.clients["qr"]

    def client_for(self, appid: str) -> WeChatApp | None:
        """The remote app whose AppID is ``appid``."""
        return next((self.clients[n] for n, f in self.web_flows.items() if f.credentials.appid == appid), None)

    def store(self) -> AccountStore:
        """Account persistence bound to the current database session."""
        return AccountStore(self.db.session, self.user_model, self.account_model, self.cipher)

    def save_refreshed_token(
        self, appid: str, token: dict[str, Any], refresh_token: Any = None, access_token: Any = None
    ) -> None:
        """Authlib's ``update_token`` hook (bound to one AppID): persist a refreshed token."""
        store = self.store()
        account = store.find(appid, token["openid"])
        if account is not None:
            store.save_token(account, token_from_authlib(token))

    # -- browser flows -------------------------------------------------------------------

    def choose_flow(self, requested: str | None) -> str | None:
        """The flow for this browser: WeChat's own browser gets ``oa``, others ``qr``.

        An explicit ``requested`` flow wins; ``None`` means no such flow is configured.
        """
        if requested not in (None, "", "auto"):
            return requested if requested in self.web_flows else None
        if "oa" in self.web_flows and ("qr" not in self.web_flows or protocol.is_wechat_browser(user_agent())):
            return "oa"
        return "qr" if "qr" in self.web_flows else None

    def begin_state(self, flow: str, next_url: str, *, bind: bool = False) -> str:
        """Mint and remember the state of a new login (or binding) through ``flow``."""
        return self.flow.begin(self.web_flows[flow].flow_id + (BIND if bind else 0), next_url, user_agent())

    def callback_url(self, flow: str) -> str:
        """Where WeChat sends the browser back for ``flow``."""
        return url_for(CALLBACKS[flow], _external=True)

    def begin_login(self, flow: str, next_url: str, *, bind: bool = False) -> Response:
        """Redirect to ``flow``'s authorize page; ``next_url`` must already be validated."""
        state = self.begin_state(flow, next_url, bind=bind)
        response: Response = self.clients[flow].authorize_redirect(self.callback_url(flow), state=state)
        return response

    def complete_login(self, flow: str) -> str:
        """Finish the login (or binding) the callback request carries; return where to go."""
        web = self.web_flows[flow]
        exchanges = {
            web.flow_id: partial(self._exchange, flow, False),
            web.flow_id + BIND: partial(self._exchange, flow, True),
        }
        outcome = self.flow.complete(
            request.args.get("state", ""),
            request.args.get("code", ""),
            user_agent(),
            exchanges,
            cookie_bound={web.flow_id + BIND},
        )
        self.log_in(outcome.user_id, renew=outcome.user_id != _current_user_id())
        return outcome.next_url

    def log_in(self, user_id: str, *, renew: bool = True) -> Any:
        """Log ``user_id`` in with Flask-Login (renewing the session first) and tell the app."""
        record: LoginRecord | None = g.pop("_wechat_login_record", None)
        # The first hit already holds its user; a duplicate hit loads the first hit's.
        user = record.user if record is not None else self.store().load_user(user_id)
        if user is None:
            raise StateError()  # deleted, or marked for re-authorization, since the first hit
        if renew and self.settings.renew_session:
            # A login must not inherit a session someone else may have planted (fixation).
            session.clear()
        login_user(user, remember=self.settings.remember)
        signals.logged_in.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            account=record.account if record else None,
            new_user=bool(record and record.new_user),
            new_account=bool(record and record.new_account),
        )
        return user

    def _exchange(self, flow: str, bind: bool, code: str, note: OutcomeNote) -> Outcome:
        """The first hit's work: code -> token -> profile -> stored account and user.

        A binding attaches the WeChat identity to the logged-in user instead.
        """
        bind_to = current_user._get_current_object() if bind and current_user.is_authenticated else None
        if bind and bind_to is None:
            raise self._failed(LoginFlowError())  # logged out since the binding started
        client = self.clients[flow]
        appid = self.web_flows[flow].credentials.appid
        token = self._guarded(lambda: client.exchange_code(code))
        if token.is_snapshot_user:
            # Virtual identity of WeChat's snapshot page: never stored, never logged in.
            signals.snapshot_user.send(current_app._get_current_object(), flow=flow)  # type: ignore[attr-defined]
            raise self._failed(SnapshotUserError())
        store = self.store()
        userinfo = self._profile(client, token) if self._profile_is_stale(store.find(appid, token.openid)) else None
        identity = Identity(
            appid=appid,
            openid=token.openid,
            unionid=token.unionid or (userinfo.unionid if userinfo else None),
            nickname=userinfo.nickname if userinfo else "",
            avatar_url=userinfo.headimgurl if userinfo else "",
            userinfo=userinfo,
        )
        record = self.record(identity, token, bind_to=bind_to, store=store, note=note)
        return Outcome(user_id=str(record.user.id), next_url=note.next_url)

    def record(
        self,
        identity: Identity,
        credentials: Credentials,
        *,
        bind_to: Any = None,
        store: AccountStore | None = None,
        note: OutcomeNote | None = None,
    ) -> LoginRecord:
        """Store a completed login (and the callback's outcome, in the same transaction when it can)."""
        accounts = store or self.store()
        before_commit = None if note is None else (lambda user: note.write_in(accounts.session, str(user.id)))
        record: LoginRecord = self._guarded(
            lambda: accounts.record_login(
                identity, credentials, self._create_user(self), bind_to=bind_to, before_commit=before_commit
            )
        )
        if record.new_account:
            signals.account_created.send(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                user=record.user,
                account=record.account,
                new_user=record.new_user,
            )
        g._wechat_login_record = record
        return record

    def _guarded(self, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except WeChatError as exc:
            raise self._failed(exc) from None

    @staticmethod
    def _failed(exc: WeChatError) -> WeChatError:
        signals.login_failed.send(current_app._get_current_object(), error=exc)  # type: ignore[attr-defined]
        return exc

    def _profile_is_stale(self, account: Any) -> bool:
        """Whether this login should fetch the profile (a returning user's may still be fresh)."""
        if account is None or account.profile_updated_at is None:
            return True
        age: float = (utcnow() - account.profile_updated_at).total_seconds()
        return age >= self.settings.profile_max_age

    @staticmethod
    def _profile(client: WeChatApp, token: protocol.Token) -> protocol.UserInfo | None:
        """The profile, when the scope allows it; a failure here does not undo the login."""
        if not token.scopes & {protocol.SCOPE_USERINFO, protocol.SCOPE_LOGIN}:
            return None
        try:
            userinfo, _ = client.fetch_userinfo(as_authlib_token(token))
        except WeChatError as exc:
            log.warning("WeChat userinfo failed after login (%s); keeping the stored profile", type(exc).__name__)
            return None
        return userinfo

    def logout(self) -> None:
        """Log the user out and drop the extension's session keys."""
        user = current_user._get_current_object() if current_user.is_authenticated else None
        logout_user()
        self.flow.forget_pending()
        if user is not None:
            signals.logged_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]


def _current_user_id() -> str | None:
    return str(current_user.get_id()) if current_user.is_authenticated else None
