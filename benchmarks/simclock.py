"""Simulated time shared by several processes: ``T0 + (time.time() - R0) * SPEED``.

The app-token section runs two hours of WeChat's clock in well under a minute. The fake WeChat
and every worker build the same :class:`WarpedClock` from the same three numbers, so they agree
on what time it is without talking to each other. Before ``R0`` (the start signal) the clock
stands still at ``T0``.

Warping time also warps delays: a request that waits half a second in a queue on a saturated
machine would reach WeChat two simulated minutes late at 240x. So each request to the fake carries
the simulated time it was sent (:data:`SENT_HEADER`), and the fake answers it as of that time
(:meth:`WarpedClock.pinned`): the network stays as fast, in simulated time, as a real one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["SENT_HEADER", "WarpedClock"]

#: The request header carrying the simulated time the request was sent.
SENT_HEADER = "X-Bench-Sent-At"


@dataclass
class WarpedClock:
    """A Unix-time clock running ``speed`` times faster than the real one from real time ``r0`` on."""

    t0: float
    speed: float = 1.0
    #: Real time at which the clock starts moving; until then it shows ``t0``.
    r0: float = math.inf
    _pins: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    def __call__(self) -> float:
        pinned: float | None = getattr(self._pins, "at", None)
        if pinned is not None:
            return pinned
        elapsed = time.time() - self.r0
        return self.t0 + elapsed * self.speed if elapsed > 0 else self.t0

    @contextmanager
    def pinned(self, at: float) -> Iterator[None]:
        """In this thread, the clock shows ``at`` until the block ends (a request answered as of its sending)."""
        self._pins.at = at
        try:
            yield
        finally:
            self._pins.at = None

    def start(self, r0: float) -> None:
        """Let the clock run from real time ``r0`` (every process sharing it must get the same ``r0``)."""
        self.r0 = r0

    def real_time_at(self, simulated: float) -> float:
        """The real Unix time at which this clock shows ``simulated``."""
        return self.r0 + (simulated - self.t0) / self.speed

    def simulated_seconds(self, real_seconds: float) -> float:
        """How many simulated seconds pass in ``real_seconds`` of real time."""
        return real_seconds * self.speed
