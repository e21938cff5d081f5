"""Reads shared by the figures of one computation.

Within ``shared_reads()`` (one ``kpi_values`` call, one dashboard response) a read several
figures need (AR on a day, the sales of a window, the MRR of a day, the open receivables by
due date) is made once and handed to each: DSO, CEI and the MRR movements ask again and
again, and the AR panel, the overdue queue and the projection all add up the same open
invoices. Outside it every call reads afresh. Nothing outlives the computation: a figure is
never older than the response that shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

_MEMO: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("reporting_memo", default=None)
_T = TypeVar("_T")


def memoized(key: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
    """``compute()``, or within ``shared_reads()`` what it gave the first time for ``key``."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def shared(key: tuple[Any, ...]) -> Any | None:
    """What ``memoized`` has for ``key`` within ``shared_reads()`` (None: not read yet), for
    a figure that can use a larger read another figure made but would not make it itself."""
    memo = _MEMO.get()
    return None if memo is None else memo.get(key)


@contextmanager
def shared_reads() -> Iterator[None]:
    """Share reads until the block ends (nested: the outer block's sharing goes on)."""
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)
