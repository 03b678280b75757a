"""A mini program user's phone number: ``POST /wechat/miniprogram/phone``.

The mini program's ``<button open-type="getPhoneNumber">`` hands it a ``code`` (base
library 2.21.2 and later), which the server exchanges at ``/wxa/business/getuserphonenumber``
on the app access token; older clients send ``encryptedData`` and ``iv`` instead, opened
with the ``session_key`` of the user's last ``wx.login``. Either way the number is kept on
the user's mini program account, sealed like the tokens, and answered as WeChat gave it.

A phone code is single-use and lives five minutes. It is claimed once across all workers:
a duplicate from the same user waits for the first request's outcome and is answered from
the account, never sent to WeChat again; one from another user is refused, so that one
person's number never reaches another. The number is personal data: it goes into the
account row and the answer, never into the shared store, a log line or an error.

WeChat docs: https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-info/phone-number/getPhoneNumber.html
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from flask import Request

from . import protocol, serverapi
from .accounts import Accounts
from .appapi import AppAPI
from .errors import RateLimitedError, ServiceUnavailableError, SystemBusyError, UserDataError, WeChatError
from .miniprogram import BadMiniProgramRequest, NoMiniProgramAccountError, PhoneCodeTakenError
from .outcomes import error_from_record, error_record, wait_for
from .runtime import Runtime
from .store import SharedStore, store_key

__all__ = [
    "BadPhoneRequest",
    "EncryptedPhone",
    "PhoneCode",
    "PhoneRequest",
    "phone_number_of",
    "read_phone_request",
    "share_phone_number",
]

log = logging.getLogger(__name__)

#: Seconds a ``getPhoneNumber`` code lives, and so how long its claim is kept.
PHONE_CODE_LIFETIME: Final = 300
#: Longest legacy ``encryptedData`` and ``iv`` accepted (a phone payload is about 200 and 24 characters).
MAX_ENCRYPTED_DATA_LENGTH: Final = 4096
MAX_IV_LENGTH: Final = 64
# What a claim holds after the claimer's user id: the outcome so far. A failure carries its JSON
# record; "retry" marks one WeChat answered without processing the code (busy, rate limited),
# after which the same user may send the code again, as the 503's Retry-After tells them to.
_PENDING: Final = "pending"
_DONE: Final = "ok"
_FAILED: Final = "failed"
_RETRY: Final = "retry"


class BadPhoneRequest(BadMiniProgramRequest):
    """Send JSON ``{"code": "<getPhoneNumber code>"}``, or the legacy ``{"encryptedData": ..., "iv": ...}``."""


@dataclass(frozen=True)
class PhoneCode:
    """The ``code`` of ``getPhoneNumber``'s ``e.detail`` (not a ``wx.login`` code)."""

    code: str = field(repr=False)


@dataclass(frozen=True)
class EncryptedPhone:
    """The legacy ``encryptedData`` and ``iv`` of ``getPhoneNumber``'s ``e.detail``."""

    encrypted_data: str = field(repr=False)
    iv: str = field(repr=False)


PhoneRequest = PhoneCode | EncryptedPhone


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value.strip()


def read_phone_request(request: Request) -> PhoneRequest:
    """The code (or the legacy encrypted data) of a well-formed request; else a :class:`BadPhoneRequest`.

    A client that forwards all of ``e.detail`` sends both: the code wins.
    """
    # JSON only: a cross-site form (text/plain) must not be able to spend a logged-in user's code.
    payload = request.get_json(silent=True) if request.is_json else None
    if not isinstance(payload, dict):
        raise BadPhoneRequest()
    if payload.get("code") is not None:
        code = _text(payload["code"], protocol.MAX_CODE_LENGTH)
        if code is None:
            raise BadPhoneRequest()
        return PhoneCode(code)
    data = _text(payload.get("encryptedData"), MAX_ENCRYPTED_DATA_LENGTH)
    iv = _text(payload.get("iv"), MAX_IV_LENGTH)
    if data is None or iv is None:
        raise BadPhoneRequest()
    return EncryptedPhone(data, iv)


def _miniprogram_account(accounts: Accounts, user: Any, appid: str) -> Any:
    """The user's account in the mini program: the most recently used, if they have several."""
    found = accounts.accounts_of(user, appid)
    if not found:
        raise NoMiniProgramAccountError()
    return max(found, key=lambda account: account.updated_at)


def share_phone_number(
    runtime: Runtime,
    api: AppAPI,
    user: Any,
    request: PhoneRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Get, keep and answer the phone number of ``user`` (logged in) from their mini program request.

    The answer is :meth:`PhoneNumber.as_json() <flask_wechat.serverapi.PhoneNumber.as_json>`.
    Failures leave as :class:`~flask_wechat.errors.WeChatError`, which
    :func:`~flask_wechat.miniprogram.error_answer` turns into the JSON error.
    """
    accounts = runtime.accounts()
    # Read now: the user reloads itself (a query) after the transaction ends, which it does before WeChat is asked.
    user_id = str(user.id)
    account = _miniprogram_account(accounts, user, api.appid)
    if isinstance(request, EncryptedPhone):
        phone = _decrypt(accounts, account, request, api.appid)
        accounts.save_phone(account, phone)
    else:
        phone = _exchange_once(runtime, accounts, api, account, user_id, request.code, sleep)
    log.info("mini program user %s shared their phone number", user_id)
    return phone.as_json()


def _decrypt(accounts: Accounts, account: Any, request: EncryptedPhone, appid: str) -> serverapi.PhoneNumber:
    session_key = accounts.session_key(account)
    if not session_key:
        raise UserDataError("no session key is stored for this account (log in again with wx.login)")
    data = serverapi.decrypt_user_data(session_key, request.encrypted_data, request.iv)
    return serverapi.PhoneNumber.from_user_data(data, appid)


def _exchange_once(
    runtime: Runtime,
    accounts: Accounts,
    api: AppAPI,
    account: Any,
    user_id: str,
    code: str,
    sleep: Callable[[float], None],
) -> serverapi.PhoneNumber:
    """The code's number: asked of WeChat by the request that claims it, else the claimer's outcome."""
    store, key, claim = runtime.store, store_key("phone", code), f"{user_id} {_PENDING}"
    if not store.add(key, claim, PHONE_CODE_LIFETIME) and not _reclaimed(store, key, claim, user_id):
        return _duplicate(runtime, accounts, account, key, user_id, sleep)
    try:
        # No pooled connection waits on WeChat.
        accounts.release()
        phone = _ask_wechat(api, code)
    except WeChatError as exc:
        unprocessed = isinstance(exc, (SystemBusyError, RateLimitedError, ServiceUnavailableError))
        _remember(runtime, key, f"{user_id} {_RETRY if unprocessed else _FAILED} {error_record(exc)}")
        raise
    try:
        accounts.save_phone(account, phone)
    except WeChatError as exc:
        _remember(runtime, key, f"{user_id} {_FAILED} {error_record(exc)}")
        raise
    _remember(runtime, key, f"{user_id} {_DONE}")
    return phone


def _reclaimed(store: SharedStore, key: str, claim: str, user_id: str) -> bool:
    """Claim again a code of ``user_id``'s that WeChat did not process (a 503 told them to try again)."""
    recorded = store.get(key)
    if recorded is None or not recorded.startswith(f"{user_id} {_RETRY} "):
        return False
    # Compare and delete: of two retries at once, one claims the code and the other waits for it.
    return store.discard(key, recorded) and store.add(key, claim, PHONE_CODE_LIFETIME)


def _ask_wechat(api: AppAPI, code: str) -> serverapi.PhoneNumber:
    """``getuserphonenumber``, sent once more only after errcode -1 (WeChat did not process the code)."""
    try:
        return api.phone_number(code)
    except SystemBusyError:
        log.warning("WeChat %s answered errcode -1; trying the code once more", serverapi.PHONE_NUMBER_PATH)
        return api.phone_number(code)


def _remember(runtime: Runtime, key: str, value: str) -> None:
    """Record a claimed code's outcome for its duplicates (best effort: the claimer has its answer)."""
    try:
        runtime.store.set(key, value, PHONE_CODE_LIFETIME)
    except ServiceUnavailableError:
        log.warning("the outcome of a phone number request could not be kept: the shared store is unavailable")


def _duplicate(
    runtime: Runtime, accounts: Accounts, account: Any, key: str, user_id: str, sleep: Callable[[float], None]
) -> serverapi.PhoneNumber:
    """A code sent before: refused for another user; for the same one, answered as the first request was."""
    accounts.release()  # nothing held while waiting, and what the first request stored is read afresh

    def outcome() -> str | None:
        value = runtime.store.get(key)
        if value is None:
            return ""  # expired meanwhile, like the code itself
        owner, _, state = value.partition(" ")
        if owner != user_id:
            raise PhoneCodeTakenError()
        return None if state == _PENDING else state

    state = wait_for(outcome, sleep)
    if state is None:
        raise ServiceUnavailableError("wechat", "the first request with this phone code has not finished")
    kind, _, record = state.partition(" ")
    if kind in (_FAILED, _RETRY):
        raise error_from_record(json.loads(record))
    phone = accounts.phone_of(account) if kind == _DONE else None
    if phone is None:
        raise PhoneCodeTakenError()  # expired, or the number was removed since
    log.info("repeated phone code answered with the first request's outcome")
    return phone


def phone_number_of(runtime: Runtime, user: Any, loaded: Sequence[Any] | None = None) -> serverapi.PhoneNumber | None:
    """The number ``user`` last shared through the mini program, or ``None``; ``loaded``: their accounts, if at hand."""
    if runtime.settings.miniprogram is None:
        return None
    appid = runtime.settings.miniprogram.appid
    accounts = runtime.accounts()
    candidates = accounts.accounts_of(user, appid) if loaded is None else [a for a in loaded if a.appid == appid]
    shared = [account for account in candidates if account.phone_updated_at is not None]
    if not shared:
        return None
    return accounts.phone_of(max(shared, key=lambda account: account.phone_updated_at))
