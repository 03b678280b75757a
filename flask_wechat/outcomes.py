"""What a single-use request left in the shared store, for a duplicate to answer from.

A login's callback and a mini program's phone code are each claimed once across all
workers (:meth:`SharedStore.add <flask_wechat.store.SharedStore.add>`). The claimer
records the outcome; a duplicate waits for it, bounded, and answers as the first did
instead of sending the code to WeChat again. A failure is kept as a JSON object naming
its class, or WeChat's errcode and errmsg: never a code, a token or a value that was sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from . import errors
from .errors import ServiceUnavailableError, StateError, WeChatAPIError, WeChatError

__all__ = ["DUPLICATE_WAIT_SECONDS", "error_from_record", "error_record", "wait_for"]

#: How long a duplicate waits for the first request's outcome.
DUPLICATE_WAIT_SECONDS: Final = 10.0

T = TypeVar("T")


def error_record(exc: WeChatError) -> str:
    """A failure as a stored outcome: a JSON object (a login's success is the user's id, never one)."""
    if isinstance(exc, WeChatAPIError):
        return json.dumps({"errcode": exc.errcode, "errmsg": exc.errmsg, "endpoint": exc.endpoint})
    if isinstance(exc, ServiceUnavailableError):
        return json.dumps({"error": type(exc).__name__, "service": exc.service})
    return json.dumps({"error": type(exc).__name__})


def error_from_record(data: Mapping[str, Any]) -> WeChatError:
    """The error a stored failure stands for (a :class:`StateError` when it names none we know)."""
    if "errcode" in data:
        return errors.error_for(int(data["errcode"]), str(data.get("errmsg", "")), str(data.get("endpoint", "")))
    if "service" in data:
        return ServiceUnavailableError(str(data["service"]))
    kind = getattr(errors, str(data.get("error")), None)
    if isinstance(kind, type) and issubclass(kind, WeChatError):
        try:
            return kind()
        except TypeError:
            return StateError()
    return StateError()


def wait_for(
    read: Callable[[], T | None],
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = DUPLICATE_WAIT_SECONDS,
) -> T | None:
    """``read()``'s first value that is not ``None``, polled with a growing pause; ``None`` after ``timeout`` s."""
    waited, delay = 0.0, 0.05
    while (value := read()) is None:
        if waited >= timeout:
            return None
        sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.5)
    return value
