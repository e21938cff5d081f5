"""Autopay end to end against the local Stripe fake (issue 14 section 1): an issued invoice of
an autopay customer is charged once on its default card; a soft decline is tried again on the
retry days in the customer's working day, a hard one is not and the customer is told; the
last retry declined ends it; a crash after Stripe charged makes one payment; collections hold
off while a retry is scheduled; the billing run's batch schedules its invoices too."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db.models import F
from django.utils import timezone

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.models import CardExpiryReminder, InvoiceAutopay, Payment, ProcessorAttempt
from billing.models.autopay import AutopayStatus, autopay_key
from billing.services import autopay as autopay_module
from billing.services import processor_payments
from billing.services.autopay import (
    autopay_charge,
    autopay_failure_email,
    autopay_run,
    card_expiry_reminders_send,
)
from billing.services.billing_run import billing_run
from billing.services.customers import customer_create, customer_update
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from billing.services.processor_payments import processor_attempts_resolve
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from billing.tasks import autopay_charge_task
from core.ledger.selectors import trial_balance
from receivables.selectors import invoices_held_from_dunning
from tests.billing.fakes.stripe_server import FakeStripe, running_fake_stripe
from tests.billing.test_stripe import add_card

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe(timeout_sleep=1.0) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 0.3
        yield fake


@pytest.fixture
def customer(finance_admin):
    """An autopay customer in New York with a saved default card."""
    customer = customer_create(
        actor=finance_admin,
        name="Autopaid Inc",
        email="ap@autopaid.example",
        currency="USD",
        autopay=True,
        time_zone="America/New_York",
    )
    add_card(finance_admin, customer)
    return customer


def issue(actor, customer, amount: str = "120.00"):
    return invoice_create(
        actor=actor,
        customer_id=customer.pk,
        issue=True,
        lines=[
            LineInput(description="Services", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
        ],
    )


def autopay_of(invoice) -> InvoiceAutopay:
    return InvoiceAutopay.objects.get(invoice=invoice)


def assert_books_agree() -> None:
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_an_issued_invoice_is_scheduled_after_commit_and_charged_once(
    fake, finance_admin, customer, django_capture_on_commit_callbacks
) -> None:
    # given an invoice issued to an autopay customer: its autopay is due at once and a
    # charge is queued after commit (the worker's task is run here)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice = issue(finance_admin, customer)
    assert autopay_of(invoice).status == AutopayStatus.SCHEDULED
    assert any("autopay_queue" in repr(c) for c in callbacks)
    # when the task runs, twice (a redelivery), and the periodic run as well
    assert autopay_charge_task.apply(kwargs={"invoice_id": invoice.pk}).get() == "succeeded"
    assert autopay_charge_task.apply(kwargs={"invoice_id": invoice.pk}).get() == "not_due"
    autopay_run()
    # then one charge on the default card, keyed by invoice and try; the invoice is paid
    (charge,) = fake.charges()
    assert charge.headers["idempotency-key"] == autopay_key(invoice.pk, 1)
    assert (charge.params["amount"], charge.params["off_session"]) == ("12000", "true")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    row = autopay_of(invoice)
    assert (row.status, row.tries, row.next_attempt_at) == (AutopayStatus.PAID, 1, None)
    assert Payment.objects.count() == 1
    assert_books_agree()


def test_a_customer_not_on_autopay_is_not_charged(fake, finance_admin, customer) -> None:
    customer_update(actor=finance_admin, customer_id=customer.pk, autopay=False)
    invoice = issue(finance_admin, customer)
    autopay_run()
    assert not InvoiceAutopay.objects.filter(invoice=invoice).exists()
    assert fake.charges() == []


def test_a_soft_decline_is_retried_on_the_retry_day_in_the_customers_working_day(
    fake, finance_admin, customer
) -> None:
    # given a first try declined for insufficient funds
    fake.queue("decline", decline_code="insufficient_funds")
    invoice = issue(finance_admin, customer)
    assert autopay_charge(invoice_id=invoice.pk) == "failed"
    first = ProcessorAttempt.objects.get(idempotency_key=autopay_key(invoice.pk, 1))
    row = autopay_of(invoice)
    # then the retry is set 3 days after the first try, between 9:00 and 17:00 in New York
    assert (row.status, row.tries, row.last_failure_code) == (
        AutopayStatus.SCHEDULED,
        1,
        "insufficient_funds",
    )
    local = row.next_attempt_at.astimezone(NEW_YORK)
    assert local.date() == first.created_at.astimezone(NEW_YORK).date() + timedelta(days=3)
    assert 9 <= local.hour < 17
    # and collections leave the invoice alone meanwhile
    assert invoices_held_from_dunning([invoice.pk]) == {invoice.pk}
    # when runs come before the day, nothing is charged; on the day, the retry pays
    assert autopay_run(now=row.next_attempt_at - timedelta(minutes=1)).outcomes == {}
    assert len(fake.charges()) == 1
    assert autopay_run(now=row.next_attempt_at).outcomes == {"succeeded": 1}
    charges = fake.charges()
    assert [c.headers["idempotency-key"] for c in charges] == [
        autopay_key(invoice.pk, 1),
        autopay_key(invoice.pk, 2),
    ]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert autopay_of(invoice).status == AutopayStatus.PAID
    assert invoices_held_from_dunning([invoice.pk]) == set()
    assert mail.outbox == [] or all("could not collect" not in m.subject for m in mail.outbox)
    assert_books_agree()


def test_a_hard_decline_is_not_retried_and_the_customer_is_told(
    fake, finance_admin, customer, django_capture_on_commit_callbacks
) -> None:
    # given a stolen card
    fake.queue("decline", decline_code="stolen_card")
    invoice = issue(finance_admin, customer)
    # when charged, the failure email sent after commit
    with django_capture_on_commit_callbacks(execute=True):
        assert autopay_charge(invoice_id=invoice.pk) == "failed"
    # then the schedule stops, and the customer is asked for another method, once
    row = autopay_of(invoice)
    assert (row.status, row.next_attempt_at) == (AutopayStatus.STOPPED, None)
    assert row.stop_reason == "the payment method was declined (stolen_card)"
    (email,) = [m for m in mail.outbox if "could not collect" in m.subject]
    assert email.to == ["ap@autopaid.example"]
    assert invoice.number in email.body
    assert "stolen_card" in email.body
    assert "new payment method" in email.body
    assert autopay_failure_email(autopay_id=row.pk) is False
    # and no later run charges again; dunning takes the invoice back
    autopay_run(now=timezone.now() + timedelta(days=30))
    assert len(fake.charges()) == 1
    assert invoices_held_from_dunning([invoice.pk]) == set()
    assert InvoiceAutopay.history.filter(id=row.pk).count() >= 2  # every change is kept


def test_every_retry_declined_ends_the_schedule_and_tells_the_customer(
    fake, finance_admin, customer, django_capture_on_commit_callbacks
) -> None:
    # given a card that always lacks funds
    for _ in range(4):
        fake.queue("decline", decline_code="insufficient_funds")
    invoice = issue(finance_admin, customer)
    autopay_charge(invoice_id=invoice.pk)
    # when the runs come on each retry day (3, 5 and 7 days after the first try)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            autopay_run(now=autopay_of(invoice).next_attempt_at)
    # then four tries in all, and the schedule ends with one email
    assert len(fake.charges()) == 4
    row = autopay_of(invoice)
    assert (row.status, row.tries) == (AutopayStatus.EXHAUSTED, 4)
    assert [m.to for m in mail.outbox if "could not collect" in m.subject] == [
        ["ap@autopaid.example"]
    ]
    assert "will not try this payment method again" in mail.outbox[-1].body
    autopay_run(now=timezone.now() + timedelta(days=60))
    assert len(fake.charges()) == 4


def test_a_crash_after_stripe_charged_makes_one_payment(
    fake, finance_admin, customer, monkeypatch
) -> None:
    # given a worker that died after Stripe charged, before it wrote the answer
    invoice = issue(finance_admin, customer)

    def die(*args, **kwargs):
        raise SystemExit("killed")

    # (the successes of a run are recorded together)
    monkeypatch.setattr(processor_payments, "payments_record_batch", die)
    with pytest.raises(SystemExit):
        autopay_charge(invoice_id=invoice.pk)
    monkeypatch.undo()
    attempt = ProcessorAttempt.objects.get()
    assert attempt.status == "pending"
    # when the runs come back (the claim expired) while the try is still open: no new charge
    later = timezone.now() + timedelta(minutes=11)
    assert autopay_run(now=later).outcomes == {"waiting": 1}
    assert len(fake.charges()) == 1
    # and billing's check finds the charge at Stripe, then the run sees it paid
    assert processor_attempts_resolve(now=later) == {"succeeded": 1}
    assert autopay_run(now=later + timedelta(minutes=20)).outcomes == {"paid": 1}
    assert len(fake.charges()) == 1
    assert Payment.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert_books_agree()


def test_a_try_that_never_reached_stripe_is_made_again_at_once_under_a_new_key(
    fake, finance_admin, customer, monkeypatch
) -> None:
    # given a worker that died after claiming try 1 and opening its attempt, before it
    # asked Stripe
    invoice = issue(finance_admin, customer)

    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(autopay_module, "attempts_charge", die)
    with pytest.raises(SystemExit):
        autopay_charge(invoice_id=invoice.pk)
    monkeypatch.undo()
    assert autopay_of(invoice).tries == 1
    assert ProcessorAttempt.objects.get().status == "pending"
    # when the claim expires the try is still open: the run waits for billing's check
    later = timezone.now() + timedelta(minutes=11)
    assert autopay_run(now=later).outcomes == {"waiting": 1}
    # and once billing's check, half an hour on, finds nothing at Stripe (nothing was
    # charged), try 2 is made at once rather than on a retry day
    ProcessorAttempt.objects.update(created_at=F("created_at") - timedelta(minutes=31))
    assert processor_attempts_resolve() == {"failed": 1}
    assert autopay_run(now=later + timedelta(minutes=20)).outcomes == {"succeeded": 1}
    assert [c.headers["idempotency-key"] for c in fake.charges()] == [autopay_key(invoice.pk, 2)]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert_books_agree()


def test_a_claim_without_its_attempt_is_made_with_the_same_key(
    fake, finance_admin, customer
) -> None:
    # given a row whose try 1 was claimed but whose attempt was never written (as an
    # earlier version could leave it: claim and attempt were two transactions)
    invoice = issue(finance_admin, customer)
    InvoiceAutopay.objects.filter(invoice=invoice).update(
        tries=1, next_attempt_at=timezone.now() + timedelta(minutes=10)
    )
    # when the claim expires and the run comes, then try 1 is made (same key), once
    assert autopay_run(now=timezone.now() + timedelta(minutes=11)).outcomes == {"succeeded": 1}
    assert [c.headers["idempotency-key"] for c in fake.charges()] == [autopay_key(invoice.pk, 1)]


def test_without_a_saved_card_it_stops_and_asks_for_one(
    fake, finance_admin, django_capture_on_commit_callbacks
) -> None:
    customer = customer_create(
        actor=finance_admin, name="No card", email="ap@nocard.example", currency="USD", autopay=True
    )
    invoice = issue(finance_admin, customer)
    with django_capture_on_commit_callbacks(execute=True):
        assert autopay_run().outcomes == {"stopped": 1}
    assert fake.charges() == []
    assert autopay_of(invoice).stop_reason == "there is no saved card or PayPal wallet to charge"
    assert [m.to for m in mail.outbox][-1] == ["ap@nocard.example"]


def test_an_invoice_paid_another_way_before_the_retry_is_not_charged(
    fake, finance_admin, customer
) -> None:
    fake.queue("decline", decline_code="try_again_later")
    invoice = issue(finance_admin, customer)
    autopay_charge(invoice_id=invoice.pk)
    payment_record(
        actor=finance_admin,
        customer_id=customer.pk,
        amount=D("120.00"),
        currency="USD",
        method="wire_transfer",
        allocations=[AllocationInput(invoice_id=invoice.pk, amount=D("120.00"))],
    )
    assert autopay_run(now=autopay_of(invoice).next_attempt_at).outcomes == {"closed": 1}
    assert len(fake.charges()) == 1


def test_without_stripe_configured_nothing_is_spent(finance_admin, customer, settings) -> None:
    settings.STRIPE_SECRET_KEY = ""
    invoice = issue(finance_admin, customer)
    assert autopay_charge(invoice_id=invoice.pk) == "not_configured"
    row = autopay_of(invoice)
    assert row.status == AutopayStatus.SCHEDULED
    assert row.next_attempt_at > timezone.now()
    assert (row.tries, ProcessorAttempt.objects.count()) == (0, 0)
    # and collections chase it as any other (no try is pending)
    assert invoices_held_from_dunning([invoice.pk]) == set()


@pytest.fixture
def plan(db):
    product = product_create(actor=None, name="Pro plan")
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("30.00"),
        nickname="Pro",
    )


def test_the_billing_runs_invoices_follow_the_subscriptions_setting(
    fake, finance_admin, plan, django_capture_on_commit_callbacks
) -> None:
    # given a customer on autopay with one subscription that says no, and a customer not on
    # autopay with one that says yes
    on = customer_create(actor=finance_admin, name="On", email="on@x.example", currency="USD")
    customer_update(actor=finance_admin, customer_id=on.pk, autopay=True)
    off = customer_create(actor=finance_admin, name="Off", email="off@x.example", currency="USD")
    for c in (on, off):
        add_card(finance_admin, c)
    start = date(2026, 4, 1)
    declined = subscription_create(
        actor=None, customer_id=on.pk, items=[ItemInput(plan.pk)], start_date=start, autopay=False
    )
    chosen = subscription_create(
        actor=None, customer_id=off.pk, items=[ItemInput(plan.pk)], start_date=start, autopay=True
    )
    inherited = subscription_create(
        actor=None, customer_id=on.pk, items=[ItemInput(plan.pk)], start_date=start
    )
    # when the billing run bills the ended period (the batch path)
    with django_capture_on_commit_callbacks(execute=False):
        billing_run(as_of=date(2026, 5, 2))
    # then the invoices of the two that charge automatically are scheduled, and charged
    scheduled = set(InvoiceAutopay.objects.values_list("invoice__subscription_id", flat=True))
    assert scheduled == {chosen.pk, inherited.pk}
    assert declined.pk not in scheduled
    autopay_run(now=datetime.now(UTC))
    assert len(fake.charges()) == 2
    assert set(InvoiceAutopay.objects.values_list("status", flat=True)) == {AutopayStatus.PAID}
    assert_books_agree()


def test_card_expiry_reminders_are_sent_30_and_7_days_before_once_each(
    finance_admin, customer
) -> None:
    # given the autopay customer's default card expiring at the end of December 2030, and a
    # customer not on autopay with the same expiry
    other = customer_create(actor=finance_admin, name="Manual", email="m@x.example", currency="USD")
    add_card(finance_admin, other)
    expires = date(2030, 12, 31)
    # when the daily run runs from 40 days before to the expiry, twice a day
    sent = []
    for day in range(40, -1, -1):
        for _ in range(2):
            sent += [
                (day, pk)
                for pk in card_expiry_reminders_send(today=expires - timedelta(days=day)).sent
            ]
    # then two reminders for the autopay customer's card only: 30 and 7 days before
    card = customer.payment_methods.get()
    assert sent == [(30, card.pk), (7, card.pk)]
    assert list(
        CardExpiryReminder.objects.order_by("sent_at").values_list("days_before", flat=True)
    ) == [30, 7]
    emails = [m for m in mail.outbox if "expires on 2030-12-31" in m.subject]
    assert [m.to for m in emails] == [["ap@autopaid.example"]] * 2
    assert "30 days from now" in emails[0].body
    assert "visa" in emails[0].body


def test_a_late_first_run_sends_only_the_most_urgent_reminder(finance_admin, customer) -> None:
    # given a run that first comes 5 days before the expiry
    expires = date(2030, 12, 31)
    assert len(card_expiry_reminders_send(today=expires - timedelta(days=5)).sent) == 1
    assert card_expiry_reminders_send(today=expires - timedelta(days=4)).sent == []
    assert list(CardExpiryReminder.objects.values_list("days_before", flat=True)) == [7]
