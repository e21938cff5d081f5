"""Daily KPI snapshots: the task stores today's figures once; the backfill command rebuilds
past days as of each day; both are idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.core.management import CommandError, call_command

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.roles import Role
from reporting import kpis
from reporting.models import KpiSnapshot
from reporting.tasks import kpi_snapshot_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(make_user):
    admin = make_user(Role.FINANCE_ADMIN)
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")

    def invoice(amount: str, issued: date) -> None:
        invoice_create(
            actor=admin,
            customer_id=acme.pk,
            issue=True,
            issue_date=issued,
            due_date=date(2026, 7, 31),
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    return invoice


def _rows() -> list[tuple[date, str, str, D, datetime]]:
    return list(
        KpiSnapshot.objects.order_by("date", "kpi", "currency").values_list(
            "date", "kpi", "currency", "value", "computed_at"
        )
    )


def test_the_daily_task_stores_today_once_and_a_rerun_changes_nothing(book) -> None:
    # given 600.00 receivable on June 30th
    book("600.00", date(2026, 6, 15))
    with time_machine.travel(datetime(2026, 6, 30, 23, tzinfo=UTC), tick=False):
        # when the task runs
        first = kpi_snapshot_task()
        stored = _rows()
        # and, after another invoice, runs again the same day
        book("300.00", date(2026, 6, 20))
        second = kpi_snapshot_task()
    # then the first run stored every figure of the day, the second nothing
    assert first["created"] == len(stored) > 0
    assert second == {"date": "2026-06-30", "created": 0}
    assert _rows() == stored
    ar = KpiSnapshot.objects.get(date=date(2026, 6, 30), kpi="ar", currency="USD")
    assert ar.value == D("600.0000")
    assert {(kpi, cur) for _d, kpi, cur, _v, _t in stored} >= {
        ("ar", "USD"),
        ("dso_30", "USD"),
        ("approvals_waiting", ""),
    }


def test_backfill_computes_each_day_as_of_itself_and_twice_gives_the_same_rows(book) -> None:
    # given 600.00 invoiced on June 29th and 300.00 on June 30th
    book("600.00", date(2026, 6, 29))
    book("300.00", date(2026, 6, 30))
    # when the last three days of June are backfilled twice
    call_command("kpis_backfill", "--from", "2026-06-28", "--to", "2026-06-30")
    once = _rows()
    call_command("kpis_backfill", "--from", "2026-06-28", "--to", "2026-06-30")
    # then the second run wrote nothing new and replaced nothing
    assert _rows() == once
    # and each day holds the figures of that day
    ar = dict(KpiSnapshot.objects.filter(kpi="ar", currency="USD").values_list("date", "value"))
    assert ar == {date(2026, 6, 29): D("600.0000"), date(2026, 6, 30): D("900.0000")}
    expected = {(v.kpi.code, v.currency): v.value for v in kpis.kpi_values(as_of=date(2026, 6, 29))}
    stored = {(kpi, cur): value for day, kpi, cur, value, _t in once if day == date(2026, 6, 29)}
    assert stored == expected
    assert stored[("dso_30", "USD")] == D("30.0000")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-07-01", "--to", "2026-06-30"], "--from must not be after --to"),
        (["--from", "1990-01-01", "--to", "2026-06-30"], "longer than 20 years"),
        (["--from", "30/06/2026"], "YYYY-MM-DD"),
    ],
)
def test_backfill_refuses_a_bad_range_and_writes_nothing(args, message) -> None:
    # when
    with pytest.raises(CommandError, match=message):
        call_command("kpis_backfill", *args)
    # then
    assert not KpiSnapshot.objects.exists()
