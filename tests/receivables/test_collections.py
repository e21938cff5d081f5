"""The collections run: the dunning timeline across dates, pauses and promises, dry runs,
failure isolation, the command, and the admin worklist."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.admin import site
from django.core import mail
from django.core.management import call_command

from billing.checks import ar_subledger_check
from billing.models import Invoice
from billing.services.payments import AllocationInput, payment_record
from core.ledger.models import JournalEntry
from receivables.admin import CollectionsWorklistAdmin
from receivables.enums import CollectionEventOutcome
from receivables.models import (
    CollectionEvent,
    CollectionPause,
    CollectionsWorklistItem,
    LateFee,
)
from receivables.selectors import invoice_in_dispute
from receivables.services import collections as collections_module
from receivables.services.collections import (
    collection_pause_create,
    collection_pause_lift,
    collections_run,
    promise_to_pay_record,
)
from tests.conftest import verified_client
from tests.receivables.test_late_fees import DUE, make_invoice

D = Decimal
pytestmark = pytest.mark.django_db
ALL_STEPS = ["reminder", "due", "overdue", "final_notice", "escalation"]


@pytest.fixture
def admin(make_user):
    return make_user("finance_admin")


def run_days(first: int, last: int) -> None:
    for offset in range(first, last + 1):
        collections_run(as_of=DUE + timedelta(days=offset))


def timeline(invoice: Invoice) -> list[tuple[str, str, date]]:
    return [
        (e.step.code, e.outcome, e.scheduled_date)
        for e in CollectionEvent.objects.filter(invoice=invoice).order_by("scheduled_date", "pk")
    ]


def db_state() -> tuple[int, ...]:
    return (
        CollectionEvent.objects.count(),
        LateFee.objects.count(),
        Invoice.objects.count(),
        JournalEntry.objects.count(),
        len(mail.outbox),
    )


def test_dunning_timeline_each_step_once_in_order(admin) -> None:
    # given an open invoice due on DUE
    invoice = make_invoice(admin, "1000.00")
    # when the run happens every day from 5 days before due to 50 days after, twice a day
    run_days(-5, 50)
    run_days(-5, 50)
    # then each step happened once, on its day, in order
    done = CollectionEventOutcome.DONE
    assert timeline(invoice) == [
        ("reminder", done, DUE - timedelta(days=3)),
        ("due", done, DUE),
        ("overdue", done, DUE + timedelta(days=11)),
        ("final_notice", done, DUE + timedelta(days=30)),
        ("escalation", done, DUE + timedelta(days=45)),
    ]
    assert [m.subject for m in mail.outbox] == [
        f"Reminder: invoice {invoice.number} is due on {DUE.isoformat()}",
        f"Invoice {invoice.number} is due today",
        f"Invoice {invoice.number} is overdue",
        f"Final notice: invoice {invoice.number} is 30 days overdue",
        f"Invoice {invoice.number}: account escalated",
    ]
    assert all(m.to == ["ap@customer.example"] for m in mail.outbox)
    # the emails are recorded with their events
    overdue = CollectionEvent.objects.get(invoice=invoice, step__code="overdue")
    assert overdue.email_subject == mail.outbox[2].subject
    assert overdue.email_body == mail.outbox[2].body
    assert "11 days overdue" in overdue.email_body
    assert LateFee.objects.get(sequence=1).fee_invoice.number in overdue.email_body
    assert "subscriptions paused" in CollectionEvent.objects.get(step__code="escalation").detail
    # two fees (day 11 and 41); the fee invoices are not chased step by step
    assert LateFee.objects.count() == 2
    assert CollectionEvent.objects.exclude(invoice=invoice).count() == 0
    assert ar_subledger_check() == []


def test_rerun_of_a_past_day_adds_nothing(admin) -> None:
    make_invoice(admin, "1000.00")
    run_days(-5, 31)
    before = db_state()
    # when the runs for earlier days are repeated
    for offset in (-3, 0, 11, 30):
        result = collections_run(as_of=DUE + timedelta(days=offset))
        assert result.actions == []
    # then nothing changed
    assert db_state() == before
    assert ar_subledger_check() == []


def test_paid_invoice_gets_no_more_steps(admin) -> None:
    invoice = make_invoice(admin, "1000.00")
    run_days(-5, 0)
    payment_record(
        actor=admin,
        customer_id=invoice.customer_id,
        amount=D("1000.00"),
        currency="USD",
        method="ach",
        received_date=DUE + timedelta(days=1),
        allocations=[AllocationInput(invoice.pk, D("1000.00"))],
    )
    run_days(1, 50)
    assert [code for code, _, _ in timeline(invoice)] == ["reminder", "due"]
    assert LateFee.objects.count() == 0
    assert ar_subledger_check() == []


def test_customer_pause_stops_steps_and_superseded_emails_are_skipped(admin) -> None:
    # given an invoice whose customer is paused from 5 days before due through 5 days after
    invoice = make_invoice(admin, "1000.00")
    pause = collection_pause_create(
        actor=admin,
        customer_id=invoice.customer_id,
        reason="disputing delivery by phone",
        start_date=DUE - timedelta(days=5),
        until_date=DUE + timedelta(days=5),
    )
    # when the run happens daily through the pause
    run_days(-5, 5)
    # then nothing happened
    assert timeline(invoice) == []
    assert len(mail.outbox) == 0
    # when the pause is over: the missed reminder is recorded as skipped, "due" is sent once
    run_days(6, 12)
    assert timeline(invoice) == [
        ("reminder", CollectionEventOutcome.SKIPPED, DUE - timedelta(days=3)),
        ("due", CollectionEventOutcome.DONE, DUE),
        ("overdue", CollectionEventOutcome.DONE, DUE + timedelta(days=11)),
    ]
    assert len(mail.outbox) == 2
    assert pause.history.count() == 1
    assert ar_subledger_check() == []


def test_invoice_pause_without_end_until_lifted(admin) -> None:
    invoice = make_invoice(admin, "1000.00")
    pause = collection_pause_create(
        actor=admin, invoice_id=invoice.pk, reason="legal review", start_date=DUE
    )
    run_days(0, 20)
    assert timeline(invoice) == []
    assert LateFee.objects.count() == 0
    with time_machine.travel(DUE + timedelta(days=20)):
        collection_pause_lift(actor=admin, pause_id=pause.pk)
    run_days(21, 21)
    # the latest due email is sent, the earlier ones recorded as skipped; the fee follows
    assert [(c, o) for c, o, _ in timeline(invoice)] == [
        ("reminder", CollectionEventOutcome.SKIPPED),
        ("due", CollectionEventOutcome.SKIPPED),
        ("overdue", CollectionEventOutcome.DONE),
    ]
    assert LateFee.objects.count() == 1
    assert ar_subledger_check() == []


def test_promise_to_pay_holds_steps_and_fees_until_the_date(admin) -> None:
    invoice = make_invoice(admin, "1000.00")
    run_days(-5, 1)
    promise = promise_to_pay_record(
        actor=admin,
        invoice_id=invoice.pk,
        promised_date=DUE + timedelta(days=20),
        amount=D("1000.00"),
        start_date=DUE + timedelta(days=2),
    )
    assert promise.promised_amount.amount == D("1000.00")
    run_days(2, 20)
    assert [c for c, _, _ in timeline(invoice)] == ["reminder", "due"]
    assert LateFee.objects.count() == 0
    # the promise was broken: dunning resumes the next day
    run_days(21, 21)
    assert [c for c, _, _ in timeline(invoice)] == ["reminder", "due", "overdue"]
    assert LateFee.objects.get().days_overdue == 21
    assert ar_subledger_check() == []


def test_pause_refused_for_ap_clerk_and_without_reason(admin, make_user) -> None:
    from core.exceptions import DomainError, PermissionDeniedError

    invoice = make_invoice(admin, "1000.00")
    with pytest.raises(PermissionDeniedError):
        collection_pause_create(actor=make_user("ap_clerk"), invoice_id=invoice.pk, reason="x")
    with pytest.raises(DomainError):
        collection_pause_create(actor=admin, invoice_id=invoice.pk, reason=" ")
    assert CollectionPause.objects.count() == 0


def test_open_dispute_pauses_dunning(admin, monkeypatch) -> None:
    invoice = make_invoice(admin, "1000.00")
    assert invoice_in_dispute(invoice) is False
    monkeypatch.setattr(collections_module, "invoices_held_from_dunning", lambda ids: set(ids))
    run_days(-5, 20)
    assert timeline(invoice) == []
    assert LateFee.objects.count() == 0


def test_an_active_payment_plan_holds_dunning_until_it_ends(admin) -> None:
    from receivables.services.payment_plans import payment_plan_cancel, payment_plan_create

    # given an overdue invoice put on a payment plan before its due date
    invoice = make_invoice(admin, "1000.00")
    plan = payment_plan_create(
        actor=admin,
        customer_id=invoice.customer_id,
        invoice_ids=[invoice.pk],
        installments=4,
        first_due_date=DUE + timedelta(days=30),
    )
    # when the days pass, no dunning step or late fee touches it
    run_days(-5, 20)
    assert timeline(invoice) == []
    assert LateFee.objects.count() == 0
    # and once the plan is canceled, collections resume
    payment_plan_cancel(actor=admin, plan_id=plan.pk)
    run_days(21, 21)
    assert timeline(invoice) != []
    assert ar_subledger_check() == []


def test_dry_run_lists_actions_and_writes_nothing(admin) -> None:
    invoice = make_invoice(admin, "1000.00")
    before = db_state()
    history_before = LateFee.history.count()
    # when a dry run looks at day 12 (reminder, due, overdue steps and the first fee due)
    result = collections_run(as_of=DUE + timedelta(days=12), dry_run=True)
    # then it lists them
    assert [(a.kind, a.invoice_id) for a in result.actions] == [
        ("late_fee", invoice.pk),
        ("skip", invoice.pk),
        ("skip", invoice.pk),
        ("step", invoice.pk),
    ]
    assert result.actions[0].amount == "15.00 USD"
    # and nothing was written or sent
    assert db_state() == before
    assert LateFee.history.count() == history_before


def test_command_dry_run_and_run(admin, capsys) -> None:
    invoice = make_invoice(admin, "1000.00")
    before = db_state()
    day = (DUE + timedelta(days=11)).isoformat()
    call_command("run_collections", "--as-of", day, "--dry-run")
    out = capsys.readouterr().out
    assert "(dry run)" in out
    assert f"{invoice.number}: late fee 1: 1.5% of 1000.00 USD 15.00 USD" in out
    assert db_state() == before
    call_command("run_collections", "--as-of", day)
    assert LateFee.objects.count() == 1
    assert CollectionEvent.objects.filter(invoice=invoice).count() == 3
    assert ar_subledger_check() == []


def test_one_failing_invoice_does_not_stop_the_run(admin, monkeypatch) -> None:
    good = make_invoice(admin, "100.00")
    bad = make_invoice(admin, "200.00")
    real_deliver = collections_module._deliver

    def flaky(message, invoice):
        if invoice.pk == bad.pk:
            raise ConnectionError("mail server down")
        return real_deliver(message, invoice)

    monkeypatch.setattr(collections_module, "_deliver", flaky)
    result = collections_run(as_of=DUE)
    # then the good invoice got its step, the bad one is reported and has nothing recorded
    assert result.failures == {bad.pk: "ConnectionError: mail server down"}
    assert [c for c, _, _ in timeline(good)] == ["reminder", "due"]
    assert timeline(bad) == []
    # when the mail server is back, the next run catches up
    monkeypatch.setattr(collections_module, "_deliver", real_deliver)
    assert collections_run(as_of=DUE).failures == {}
    assert [c for c, _, _ in timeline(bad)] == ["reminder", "due"]


def test_task_runs_the_same_code(admin) -> None:
    from receivables.tasks import collections_run_task

    make_invoice(admin, "1000.00")
    summary = collections_run_task.run(as_of=(DUE + timedelta(days=11)).isoformat())
    assert summary["failures"] == {}
    assert summary["actions"] == 4  # fee, two skipped emails, the overdue email
    assert LateFee.objects.count() == 1


def test_admin_worklist_for_ar_clerk_and_refused_for_ap_clerk(admin, make_user) -> None:
    small = make_invoice(admin, "100.00")
    big = make_invoice(admin, "900.00")
    not_due = make_invoice(admin, "5000.00", due=DUE + timedelta(days=20))
    paused = make_invoice(admin, "700.00")
    collection_pause_create(actor=admin, invoice_id=paused.pk, reason="x", start_date=DUE)
    run_days(-3, 12)
    url = "/admin/receivables/collectionsworklistitem/"
    with time_machine.travel(DUE + timedelta(days=12)):
        response = verified_client(make_user("ar_clerk")).get(url)
        assert response.status_code == 200
        html = response.content.decode()
        # largest first, not-yet-due and paused invoices left out
        assert html.index(big.number) < html.index(small.number)
        assert not_due.number not in html
        assert paused.number not in html
        assert "Overdue past grace period" in html
        assert "Final notice (2026-04-01)" in html
        preview = verified_client(make_user("ar_clerk")).get(url + "preview/")
        assert preview.status_code == 200
        ap = verified_client(make_user("ap_clerk"))
        assert ap.get(url).status_code == 403
        assert ap.get(url + "preview/").status_code == 403
        assert ap.post(url + "run/").status_code == 403
        # the auditor sees it but cannot run
        auditor = verified_client(make_user("auditor"))
        assert auditor.get(url).status_code == 200
        assert auditor.post(url + "run/").status_code == 403


def test_worklist_says_why_an_invoice_has_no_next_step(admin, make_user) -> None:
    from receivables.services.disputes import dispute_open

    # given an overdue invoice under dispute and one left to the steps
    disputed = make_invoice(admin, "800.00")
    chased = make_invoice(admin, "300.00")
    dispute_open(actor=admin, invoice_id=disputed.pk, amount=Decimal("800.00"), reason="Seats")
    url = "/admin/receivables/collectionsworklistitem/"
    with time_machine.travel(DUE + timedelta(days=12)):
        rows = verified_client(make_user("ar_clerk")).get(url).context["cl"].result_list
    # then the disputed one reads "on hold", the other names its next step and date
    worklist = CollectionsWorklistAdmin(CollectionsWorklistItem, site)
    worklist._policies = {}
    by_pk = {row.pk: worklist.next_step(row) for row in rows}
    assert by_pk[disputed.pk] == "On hold: disputed"
    assert by_pk[chased.pk].endswith(")")
    assert "On hold" not in by_pk[chased.pk]


def test_admin_waive_asks_for_reason(admin, make_user) -> None:
    make_invoice(admin, "1000.00")
    collections_run(as_of=DUE + timedelta(days=11))
    fee = LateFee.objects.get()
    client = verified_client(make_user("controller"))
    url = "/admin/receivables/latefee/"
    data = {"action": "waive_selected", "_selected_action": [fee.pk]}
    asked = client.post(url, data)
    assert asked.status_code == 200
    assert "reason" in asked.content.decode()
    fee.refresh_from_db()
    assert fee.status == "charged"
    done = client.post(url, {**data, "reason": "goodwill"})
    assert done.status_code == 302
    fee.refresh_from_db()
    assert (fee.status, fee.waive_reason) == ("waived", "goodwill")
    assert ar_subledger_check() == []
    # an AR clerk does not get the action
    clerk = verified_client(make_user("ar_clerk"))
    assert "waive_selected" not in clerk.get(url).content.decode()
