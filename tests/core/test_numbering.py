"""Gapless document numbers per series and year (issue 3 item 6, RELIABILITY.md L6)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection, transaction

from core.numbering import document_number_next


@pytest.mark.django_db
def test_numbers_are_consecutive_per_series_and_year() -> None:
    with transaction.atomic():
        first = document_number_next(series="INV", on_date=date(2026, 5, 1))
        second = document_number_next(series="INV", on_date=date(2026, 5, 2))
        other_series = document_number_next(series="CN", on_date=date(2026, 5, 2))
        next_year = document_number_next(series="INV", on_date=date(2027, 1, 1))
    assert (first, second, other_series, next_year) == (
        "INV-2026-000001",
        "INV-2026-000002",
        "CN-2026-000001",
        "INV-2027-000001",
    )


@pytest.mark.django_db
def test_a_rolled_back_issue_gives_its_number_back() -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        document_number_next(series="INV", on_date=date(2026, 5, 1))
        raise Abort
    with transaction.atomic():
        assert document_number_next(series="INV", on_date=date(2026, 5, 1)) == "INV-2026-000001"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_number_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError):
        document_number_next(series="INV", on_date=date(2026, 5, 1))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L6_concurrent_issuers_get_unique_gapless_numbers() -> None:
    # given 20 threads, each taking 10 numbers from one series, with rollbacks mixed in
    threads, results, errors = 20, [], []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def issue(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                try:
                    with transaction.atomic():
                        number = document_number_next(series="INV", on_date=date(2026, 5, 1))
                        if (worker + i) % 7 == 0:
                            raise RuntimeError("issue failed after taking a number")
                    with lock:
                        results.append(number)
                except RuntimeError:
                    pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when
    workers = [threading.Thread(target=issue, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # then every committed issue has its own number and there is no gap
    assert errors == []
    numbers = sorted(int(n.rsplit("-", 1)[1]) for n in results)
    assert len(numbers) == len(set(numbers))
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == sum(1 for w in range(threads) for i in range(10) if (w + i) % 7)
