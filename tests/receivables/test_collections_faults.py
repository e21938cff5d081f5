"""The collections run under faults, with real Celery workers (RELIABILITY.md F2, F3): a
run redelivered after its worker died does each step and each late fee once, and a run that
always fails stops after a bounded number of attempts and is reported. The workers, queue
and broker fixtures are those of tests/core/test_celery_faults.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest
import redis

from billing.checks import ar_subledger_check
from billing.models import Invoice
from core.ledger.models import JournalEntry
from core.models import TaskFailure, TaskFailureStatus
from receivables.enums import CollectionEventOutcome
from receivables.models import CollectionEvent, LateFee
from receivables.tasks import collections_run_task
from tests.core.test_celery_faults import (
    VISIBILITY_TIMEOUT,
    Worker,
    broker,  # noqa: F401 (a fixture)
    database_url,
    queue,  # noqa: F401 (a fixture)
    send,
    settled,
    start_worker,  # noqa: F401 (a fixture)
    unacknowledged,
    wait_for,
)
from tests.receivables.test_late_fees import DUE, make_invoice

pytestmark = pytest.mark.xdist_group("celery_worker")
real_worker = pytest.mark.django_db(transaction=True, serialized_rollback=True)
AS_OF = DUE + timedelta(days=11)  # the first late fee and the overdue email are due


def timeline(invoice: Invoice) -> list[tuple[str, str]]:
    return list(
        CollectionEvent.objects.filter(invoice=invoice)
        .order_by("scheduled_date", "pk")
        .values_list("step__code", "outcome")
    )


@real_worker
def test_F2_collections_run_redelivered_after_its_worker_died_does_each_step_once(
    broker: redis.Redis,  # noqa: F811
    queue: str,  # noqa: F811
    start_worker: Callable[..., Worker],  # noqa: F811
    make_user,
    monkeypatch,
    request: pytest.FixtureRequest,
) -> None:
    # given three overdue invoices, the last of them locked by another transaction, and
    # workers that run the collections in chunks of two invoices
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.receivables.worker_settings")
    admin = make_user("finance_admin")
    invoices = [make_invoice(admin, amount) for amount in ("100.00", "200.00", "300.00")]
    entries_before = JournalEntry.objects.count()
    blocker = psycopg.connect(database_url())
    # Closed whatever happens: a lock left behind would hang the database flush after the test.
    request.addfinalizer(blocker.close)
    blocker.execute("SELECT id FROM billing_invoice WHERE id = %s FOR UPDATE", [invoices[2].pk])
    # and worker A has run the collections for the first chunk and waits on the second
    worker_a = start_worker(pool="prefork")
    task_id = send(collections_run_task, queue, as_of=AS_OF.isoformat())
    wait_for(lambda: LateFee.objects.count() == 2, [worker_a], "two invoices handled")
    taken_at = time.monotonic()
    time.sleep(0.5)
    assert timeline(invoices[2]) == []

    # when worker A dies, the lock goes, and once the visibility timeout has passed worker B
    # starts and is handed the message again
    worker_a.kill_all()
    blocker.rollback()
    blocker.close()
    time.sleep(max(0.0, taken_at + VISIBILITY_TIMEOUT + 1 - time.monotonic()))
    assert unacknowledged(broker, task_id)
    worker_b = start_worker(pool="prefork", visibility_timeout=VISIBILITY_TIMEOUT)

    # then B runs the whole collections run again: the third invoice is done, the first two
    # are not touched again
    wait_for(lambda: LateFee.objects.count() == 3, [worker_a, worker_b], "the rerun")
    wait_for(settled(broker, queue, task_id), [worker_b], "the acknowledgement")
    assert f"[{task_id}] received" in worker_b.output()
    skipped, done = CollectionEventOutcome.SKIPPED, CollectionEventOutcome.DONE
    for invoice in invoices:
        assert timeline(invoice) == [("reminder", skipped), ("due", skipped), ("overdue", done)]
        assert list(invoice.late_fees.values_list("sequence", "days_overdue")) == [(1, 11)]
    assert CollectionEvent.objects.count() == 9
    # one ledger entry per fee invoice, and the AR sub-ledger agrees with the books
    assert JournalEntry.objects.count() == entries_before + 3
    assert ar_subledger_check() == []
    assert not TaskFailure.objects.exists()


@real_worker
def test_F3_collections_run_that_always_fails_stops_after_bounded_attempts_and_is_reported(
    broker: redis.Redis,  # noqa: F811
    queue: str,  # noqa: F811
    start_worker: Callable[..., Worker],  # noqa: F811
    make_user,
    monkeypatch,
) -> None:
    # given an overdue invoice and a worker whose mail server refuses every connection
    admin = make_user("finance_admin")
    invoice = make_invoice(admin, "100.00")
    entries_before = JournalEntry.objects.count()
    monkeypatch.setenv("EMAIL_URL", "smtp://127.0.0.1:9")
    worker = start_worker(pool="solo")

    # when the collections run is sent
    task_id = send(collections_run_task, queue, as_of=AS_OF.isoformat())

    # then it is tried max_retries + 1 times with backoff, gives up, and is reported once
    wait_for(
        lambda: TaskFailure.objects.filter(status=TaskFailureStatus.FAILED).exists(),
        [worker],
        "the failure report",
    )
    wait_for(settled(broker, queue, task_id), [worker], "the acknowledgement")
    time.sleep(1.0)
    attempts = collections_run_task.max_retries + 1
    assert attempts == 4
    assert worker.output().count(f"[{task_id}] retry: Retry in") == 3
    failure = TaskFailure.objects.get()
    assert {
        "task_name": failure.task_name,
        "task_id": failure.task_id,
        "status": failure.status,
        "attempts": failure.attempts,
        "arguments": failure.arguments,
        "exception_class": failure.exception_class,
    } == {
        "task_name": "receivables.collections_run",
        "task_id": task_id,
        "status": TaskFailureStatus.FAILED,
        "attempts": attempts,
        "arguments": {"args": [], "kwargs": {"as_of": AS_OF.isoformat()}},
        "exception_class": "receivables.tasks.CollectionsRunIncomplete",
    }
    assert failure.exception_message.startswith(
        f"1 of 1 invoices failed on {AS_OF.isoformat()}: {invoice.pk}: "
    )
    # and no step is recorded (the next run sends it), while the fee due was charged once
    # by the first attempt and not again by the retries, with its one posting
    assert CollectionEvent.objects.count() == 0
    assert list(LateFee.objects.values_list("invoice_id", "sequence")) == [(invoice.pk, 1)]
    assert JournalEntry.objects.count() == entries_before + 1
    assert ar_subledger_check() == []
