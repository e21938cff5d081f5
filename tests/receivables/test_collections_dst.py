"""The collections run's days across DST changes (RELIABILITY.md F7): the run takes its day
from the local calendar of TIME_ZONE, whatever the hour it runs at, so on the days clocks
go forward or back (2026-03-08 and 2026-11-01 in Los Angeles) no step is done twice, none is
missed or late, due dates come from the local issue date and days past due count local days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from receivables.enums import CollectionEventOutcome
from receivables.models import CollectionEvent, DunningStep, LateFee
from receivables.tasks import collections_run_task
from tests.conftest import verified_client
from tests.receivables.test_late_fees import D, make_invoice

pytestmark = pytest.mark.django_db
ZONES = ["UTC", "America/Los_Angeles", "Asia/Kolkata"]
DST_DAYS = [date(2026, 3, 8), date(2026, 11, 1)]
# Local times the run is started at each day: just after midnight, the beat's 01:30, an hour
# that does not exist (02:30 on the spring change) or happens twice (01:30 on the fall one),
# midday, and just before midnight.
RUN_TIMES = [time(0, 0, 30), time(1, 30), time(2, 30), time(12, 0), time(23, 59, 30)]
STEP_OFFSETS = {"reminder": -3, "due": 0, "overdue": 11, "final_notice": 30, "escalation": 45}


def local(day: date, at: time, zone: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("zone", ZONES)
def test_F7_each_step_once_on_its_local_day_across_dst(
    settings, time_machine, make_user, zone
) -> None:
    # given the business time zone, and for each DST day of 2026 one invoice per step whose
    # step falls on that day (the first late fee with the overdue step)
    settings.TIME_ZONE = zone
    admin = make_user("finance_admin")
    assert {s.code: s.offset_days for s in DunningStep.objects.all()} == STEP_OFFSETS
    invoices = {
        (day, code): make_invoice(admin, "1000.00", due=day - timedelta(days=offset))
        for day in DST_DAYS
        for code, offset in STEP_OFFSETS.items()
    }
    # when the daily task runs five times a day, two days either side of each DST day
    for dst_day in DST_DAYS:
        for shift in range(-2, 3):
            for at in RUN_TIMES:
                time_machine.move_to(local(dst_day + timedelta(days=shift), at, zone), tick=False)
                summary = collections_run_task.run()
                assert summary["failures"] == {}
    # then the step of each invoice was done once, on the DST day itself, by a run started
    # on that local day (its first: just after local midnight)
    done = CollectionEventOutcome.DONE
    for (day, code), invoice in invoices.items():
        events = list(CollectionEvent.objects.filter(invoice=invoice, step__code=code))
        assert [(e.outcome, e.scheduled_date, e.run_date) for e in events] == [(done, day, day)]
        assert events[0].created_at == local(day, RUN_TIMES[0], zone)
    # and every step scheduled inside the days the task ran was done that very day
    for event in CollectionEvent.objects.filter(outcome=done):
        if any(abs((event.scheduled_date - day).days) <= 2 for day in DST_DAYS):
            assert event.run_date == event.scheduled_date
    pairs = list(CollectionEvent.objects.values_list("invoice_id", "step_id"))
    assert len(pairs) == len(set(pairs))
    # and the first late fee came on the DST day, 11 local days past due (the spring
    # invoice, still open in the autumn, has its later monthly fees besides)
    for day in DST_DAYS:
        fees = LateFee.objects.filter(invoice=invoices[(day, "overdue")], sequence=1)
        assert list(fees.values_list("sequence", "charged_date", "days_overdue")) == [(1, day, 11)]


@pytest.mark.parametrize("zone", ZONES)
def test_F7_due_dates_and_days_past_due_follow_the_local_date(
    settings, time_machine, make_user, zone
) -> None:
    # given the business time zone and an invoice issued one second before local midnight
    # on the eve of the spring DST change
    settings.TIME_ZONE = zone
    admin = make_user("finance_admin")
    time_machine.move_to(local(date(2026, 3, 7), time(23, 59, 59), zone), tick=False)
    customer = customer_create(
        actor=admin, name="Local", email="l@x.example", currency="USD", payment_terms=30
    )
    invoice = invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        lines=[LineInput(description="x", quantity=D(1), unit_price=D("50.00"), tax_rate=D(0))],
    )
    # then its dates are the local ones
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 3, 7), date(2026, 4, 6))

    def aged() -> tuple[int, str]:
        client = verified_client(make_user("ar_clerk"))
        (item,) = client.get("/api/accounts/receivable").json()["results"]
        return item["days_past_due"], item["bucket"]

    # when the aging is read just before and just after local midnight of the due date
    time_machine.move_to(local(date(2026, 4, 6), time(23, 59, 30), zone), tick=False)
    before = aged()
    time_machine.move_to(local(date(2026, 4, 7), time(0, 0, 30), zone), tick=False)
    after = aged()
    # then the day past due starts at local midnight
    assert before == (0, "current")
    assert after == (1, "1-30")
