"""Bounded exponential backoff for transient feed errors (rate limits, 5xx, timeouts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciliation.feeds.errors import FeedError, FeedErrorCode

T = TypeVar("T")
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` calls at most; waits ``base_seconds * 2**n`` between them, never more than
    ``max_seconds`` (a Retry-After from the provider is honoured up to the same cap)."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    # How many times a Plaid sync restarts after TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION.
    max_restarts: int = 3

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        wait = self.base_seconds * (2 ** (retry_number - 1))
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_seconds)


NO_RETRY = RetryPolicy(attempts=1, max_restarts=0)


def call_with_retries(fn: Callable[[], T], *, policy: RetryPolicy, sleep: Sleep = time.sleep) -> T:
    """``fn()``, called again after a retryable FeedError until ``policy.attempts`` are spent;
    the last error is raised as it came. A mutation during pagination is not retried here: the
    whole sync restarts from its first cursor (the caller's loop)."""
    attempt = 1
    while True:
        try:
            return fn()
        except FeedError as exc:
            if (
                not exc.retryable
                or exc.feed_code is FeedErrorCode.MUTATION_DURING_PAGINATION
                or attempt >= policy.attempts
            ):
                raise
            sleep(policy.delay(attempt, exc.retry_after_seconds))
            attempt += 1
