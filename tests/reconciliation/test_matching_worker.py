"""A real Celery worker (Redis broker, PostgreSQL) runs ``reconciliation.reconcile_run``; the
same run delivered again has one effect (RELIABILITY.md F2). Workers and queues come from
tests/core/test_celery_faults.py."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import redis

from billing.models import Payment
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.roles import Role
from reconciliation.enums import ReconciliationRunStatus
from reconciliation.models import Match, ReconciliationRun, Statement, StatementLine
from reconciliation.services import bank_account_create
from reconciliation.tasks import reconcile_run_task
from tests.core.test_celery_faults import (  # noqa: F401 (fixtures)
    Worker,
    broker,
    queue,
    real_worker,
    send,
    settled,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("celery_worker")


@real_worker
def test_F2_reconcile_run_delivered_twice_matches_once(
    broker: redis.Redis,  # noqa: F811 (the fixture imported above)
    queue: str,  # noqa: F811
    start_worker: Callable[..., Worker],  # noqa: F811
    make_user,
) -> None:
    # given a committed line paying an invoice by reference, and a queued run
    admin = make_user(Role.FINANCE_ADMIN)
    clerk = make_user(Role.AR_CLERK)
    account = bank_account_create(actor=admin, name="US", currency="USD")
    customer = customer_create(actor=clerk, name="Acme", email="a@acme.example", currency="USD")
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[LineInput(description="S", quantity=Decimal(1), unit_price=Decimal("90.00"),
                         tax_rate=Decimal(0))],
        issue=True,
    )  # fmt: skip
    statement = Statement.objects.create(
        bank_account=account, format="csv", currency="USD", control="none",
        file_sha256="d" * 64, fingerprint="d" * 64,
    )  # fmt: skip
    StatementLine.objects.create(
        statement=statement, bank_account=account, position=1, booking_date=invoice.due_date,
        amount=Decimal("90.00"), currency="USD", description=invoice.number, fingerprint="e" * 64,
    )  # fmt: skip
    run = ReconciliationRun.objects.create(bank_account=account)
    worker = start_worker(pool="prefork")
    # when the task is delivered twice (a redelivery after the visibility timeout)
    first = send(reconcile_run_task, queue, run_id=str(run.pk))
    wait_for(
        lambda: ReconciliationRun.objects.get(pk=run.pk).status == ReconciliationRunStatus.DONE,
        [worker],
        "the run",
    )
    second = send(reconcile_run_task, queue, run_id=str(run.pk))
    wait_for(settled(broker, queue, first), [worker], "the first acknowledgement")
    wait_for(settled(broker, queue, second), [worker], "the second acknowledgement")
    wait_for(lambda: f"[{second}] succeeded" in worker.output(), [worker], "the second run")
    # then one effect: one match, one payment, the run done once
    run.refresh_from_db()
    assert (run.status, run.auto_matched, run.attempts) == (ReconciliationRunStatus.DONE, 1, 1)
    assert (Match.objects.count(), Payment.objects.count()) == (1, 1)
