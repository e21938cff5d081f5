"""``after_commit``: work run once the transaction commits, none for a rolled-back one, and
a failure there logged under the function's name rather than raised (a ``partial`` passed to
Django's robust ``on_commit`` raised an AttributeError instead)."""

from __future__ import annotations

import logging
from functools import partial

import pytest
from django.db import transaction

from core.commit import after_commit

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _fail(reason: str) -> None:
    raise RuntimeError(reason)


def test_it_runs_after_the_commit_and_not_for_a_rollback() -> None:
    calls: list[tuple[str, int]] = []
    with transaction.atomic():
        after_commit(calls.append, ("kept", 1))
        assert calls == []
    assert calls == [("kept", 1)]
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        after_commit(calls.append, ("dropped", 2))
        _ = 1 / 0
    assert calls == [("kept", 1)]


@pytest.mark.parametrize("func", [_fail, partial(_fail)], ids=["function", "partial"])
def test_a_failure_after_the_commit_is_logged_by_name_and_goes_no_further(func, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="django.db.backends.base"), transaction.atomic():
        after_commit(func, "the mail server is down")
    (record,) = [r for r in caplog.records if "on_commit" in r.getMessage()]
    assert "_fail" in record.getMessage()
    assert "the mail server is down" in record.getMessage()
