"""Work left for after the commit (queueing a task, sending a mail): run once the
transaction commits, never for a rolled-back one, and a failure there is logged, not raised.

Django's ``on_commit(..., robust=True)`` logs a failed callback under its ``__qualname__``; a
``functools.partial`` has none, so its failure raised an AttributeError after the commit
instead. ``after_commit`` gives every callback the name of the function it calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction


def after_commit(func: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
    """Call ``func(*args, **kwargs)`` after the current transaction commits (at once outside
    one); an exception it raises is logged by Django with ``func``'s name and goes no
    further."""

    def call() -> None:
        func(*args, **kwargs)

    call.__qualname__ = getattr(func, "__qualname__", None) or repr(func)
    transaction.on_commit(call, robust=True)
