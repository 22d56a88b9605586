"""Rate budgets of the prediction log: how much of the traffic each sink may take.

Class probabilities and monitor profiles take rows, the raw log takes input bytes; each is
a ``RateBudget`` (a token bucket with one second of burst) that the request path asks with
the clock it has already read, so a budget costs a few arithmetic operations per request.
"""

from __future__ import annotations

import time


class RateBudget:
    """A token bucket of ``rate`` units per second (one second of burst); 0 or None keeps
    nothing."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate or 0.0
        self._tokens = self.rate
        self._refilled = time.monotonic()

    def take(self, units: float, now: float | None = None) -> bool:
        """Whether ``units`` fit in the budget now (``now``: ``time.monotonic()``, when the
        caller has read it already); they are taken from it if so."""
        if not self.rate:
            return False
        if now is None:
            now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if units > self._tokens:
            return False
        self._tokens -= units
        return True
