"""Automatic installment charges on a saved Stripe method, against the local Stripe fake:
a success pays the installment through billing (payment, ledger, AR equals open items), a
decline is tried again on the retry schedule, a charge without an answer is UNKNOWN and never
made again, and a repeated run charges once (RELIABILITY.md F4, F5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.models import Payment, ProcessorAttempt
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.processor_payments import processor_attempts_resolve
from core.ledger.selectors import trial_balance
from core.roles import Role
from receivables.models import (
    Installment,
    InstallmentCharge,
    PaymentPlan,
    PaymentPlanStatus,
)
from receivables.services.payment_plans import (
    PaymentPlanError,
    installment_charge_key,
    payment_plan_create,
    payment_plans_run,
)
from tests.billing.fakes.stripe_server import FakeStripe, running_fake_stripe
from tests.billing.test_stripe import add_card

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal
FIRST = date(2026, 4, 1)


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe(timeout_sleep=1.0) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 0.3
        yield fake


@pytest.fixture
def clerk(make_user):
    return make_user(Role.AR_CLERK)


def make_invoice(actor, customer, amount: str, *, due: date):
    return invoice_create(
        actor=actor,
        customer_id=customer.pk,
        issue=True,
        issue_date=due - timedelta(days=30),
        due_date=due,
        lines=[
            LineInput(description="Services", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
        ],
    )


@pytest.fixture
def plan_of(finance_admin, clerk):
    """A plan of 1,500.00 over two invoices (1,000.00 due Feb 1, 500.00 due Mar 1) in two
    monthly installments of 750.00 from April 1, for a customer whose default card is saved."""

    def make(*, retry_days: list[int] | None = None, card: bool = True):
        customer = customer_create(
            actor=finance_admin,
            name="Planned",
            email="ap@planned.example",
            currency="USD",
            payment_terms=30,
        )
        older = make_invoice(finance_admin, customer, "1000.00", due=date(2026, 2, 1))
        newer = make_invoice(finance_admin, customer, "500.00", due=date(2026, 3, 1))
        if card:
            add_card(finance_admin, customer)
        plan = payment_plan_create(
            actor=clerk,
            customer_id=customer.pk,
            invoice_ids=[older.pk, newer.pk],
            installments=2,
            first_due_date=FIRST,
            retry_days=retry_days,
        )
        return plan, older, newer

    return make


def installment(plan: PaymentPlan, sequence: int) -> Installment:
    return plan.installments.get(sequence=sequence)


def assert_books_agree() -> None:
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_a_due_installment_is_charged_and_paid_through_billing(fake, plan_of) -> None:
    # given a plan whose first installment (750.00) is due today
    plan, older, newer = plan_of()
    first = installment(plan, 1)
    # when the plans run runs on the due date
    result = payment_plans_run(as_of=FIRST)
    # then Stripe was asked once for 750.00, with the installment's first-try key
    (request,) = fake.charges()
    assert request.params["amount"] == "75000"
    assert request.headers["idempotency-key"] == installment_charge_key(first, 1)
    assert result.charges == [first.pk]
    # and the attempt succeeded with one payment, allocated to the older invoice
    attempt = ProcessorAttempt.objects.get()
    assert (attempt.status, attempt.invoice_id) == ("succeeded", older.pk)
    payment = attempt.payment
    assert payment.amount.amount == D("750.00")
    assert [(a.invoice_id, a.amount.amount) for a in payment.allocations.all()] == [
        (older.pk, D("750.00"))
    ]
    # and the installment is paid by it, the plan has 750.00 paid
    first.refresh_from_db()
    plan.refresh_from_db()
    assert (first.status, first.paid_payment_id, first.paid_date) == ("paid", payment.pk, FIRST)
    assert first.attempts == 1
    assert plan.amount_paid.amount == D("750.00")
    charge = InstallmentCharge.objects.get()
    assert (charge.attempt_id, charge.attempt_number, charge.scheduled_date) == (
        attempt.pk,
        1,
        FIRST,
    )
    assert charge.settled_at is not None
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.amount_due.amount, newer.amount_due.amount) == (D("250.00"), D("500.00"))
    assert_books_agree()


def test_an_installment_spanning_two_invoices_is_one_charge_allocated_oldest_first(
    fake, plan_of
) -> None:
    # given the first installment paid by its charge
    plan, older, newer = plan_of()
    payment_plans_run(as_of=FIRST)
    # when the second (750.00: 250.00 left on the older invoice, 500.00 on the newer) is due
    payment_plans_run(as_of=date(2026, 5, 1))
    # then one charge of 750.00 paid both invoices and completed the plan
    assert [r.params["amount"] for r in fake.charges()] == ["75000", "75000"]
    _first, second = ProcessorAttempt.objects.order_by("pk")
    assert (second.status, second.invoice_id) == ("succeeded", older.pk)
    assert sorted(
        (a.invoice_id, a.amount.amount) for a in second.payment.allocations.all()
    ) == sorted([(older.pk, D("250.00")), (newer.pk, D("500.00"))])
    plan.refresh_from_db()
    older.refresh_from_db()
    newer.refresh_from_db()
    assert plan.status == PaymentPlanStatus.COMPLETED
    assert older.status == newer.status == InvoiceStatus.PAID
    assert list(plan.installments.values_list("status", flat=True)) == ["paid", "paid"]
    assert_books_agree()


def test_a_decline_is_tried_again_on_the_next_retry_day_and_then_pays(fake, plan_of) -> None:
    # given Stripe declines the first try
    plan, _older, _newer = plan_of()
    first = installment(plan, 1)
    fake.queue("decline", decline_code="insufficient_funds")
    # when the run runs on the due date, twice
    payment_plans_run(as_of=FIRST)
    payment_plans_run(as_of=FIRST)
    # then one declined attempt, nothing paid, the installment still scheduled
    assert len(fake.charges()) == 1
    declined = ProcessorAttempt.objects.get()
    assert (declined.status, declined.failure_code) == ("failed", "insufficient_funds")
    assert Payment.objects.count() == 0
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("scheduled", 1)
    # when the run runs the next day (retry 1 of 1, 3, 7)
    payment_plans_run(as_of=FIRST + timedelta(days=1))
    # then the second try succeeded and paid the (overdue) installment
    assert [r.headers["idempotency-key"] for r in fake.charges()] == [
        installment_charge_key(first, 1),
        installment_charge_key(first, 2),
    ]
    attempts = list(ProcessorAttempt.objects.order_by("pk").values_list("status", flat=True))
    assert attempts == ["failed", "succeeded"]
    first.refresh_from_db()
    assert (first.status, first.attempts, first.paid_date) == (
        "paid",
        2,
        FIRST + timedelta(days=1),
    )
    assert list(
        InstallmentCharge.objects.order_by("attempt_number").values_list(
            "attempt_number", "scheduled_date", "attempt__status"
        )
    ) == [(1, FIRST, "failed"), (2, FIRST + timedelta(days=1), "succeeded")]
    assert Payment.objects.count() == 1
    assert_books_agree()


@pytest.mark.parametrize(
    ("retry_days", "charged_on_days"),
    [(None, [0, 1, 3, 7]), ([2, 5], [0, 2, 5])],
)
def test_retry_schedule_dates_then_default_as_before(
    fake, plan_of, retry_days, charged_on_days
) -> None:
    # given a card that declines every try
    plan, _older, _newer = plan_of(retry_days=retry_days)
    for _ in range(10):
        fake.queue("decline")
    # when the run runs every day from the due date to 15 days after it
    charged: list[int] = []
    for day in range(16):
        before = len(fake.charges())
        payment_plans_run(as_of=FIRST + timedelta(days=day))
        if len(fake.charges()) > before:
            charged.append(day)
    # then the card was charged on the schedule's days only, once each
    assert charged == charged_on_days
    first = installment(plan, 1)
    assert list(
        first.charges.order_by("attempt_number").values_list("attempt_number", "scheduled_date")
    ) == [(n, FIRST + timedelta(days=d)) for n, d in enumerate(charged_on_days, start=1)]
    assert ProcessorAttempt.objects.filter(status="failed").count() == len(charged_on_days)
    # and the plan defaulted 15 days after the due date, as without automatic charges
    plan.refresh_from_db()
    assert plan.status == PaymentPlanStatus.DEFAULTED
    assert list(plan.installments.values_list("status", flat=True)) == ["missed", "canceled"]
    assert Payment.objects.count() == 0
    assert_books_agree()


def test_F4_a_charge_without_answer_is_unknown_and_never_made_again(fake, plan_of) -> None:
    # given Stripe charges but answers after the client gave up
    plan, _older, _newer = plan_of()
    first = installment(plan, 1)
    fake.queue("timeout")
    payment_plans_run(as_of=FIRST)
    attempt = ProcessorAttempt.objects.get()
    assert attempt.status == "unknown"
    # when the run runs again on the retry days
    for day in (0, 1, 3):
        payment_plans_run(as_of=FIRST + timedelta(days=day))
    # then no second charge was sent and nothing is paid yet
    assert len(fake.charges()) == 1
    assert Payment.objects.count() == 0
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("overdue", 1)
    # when billing's check resolves it from Stripe's answer, and the run runs
    assert processor_attempts_resolve() == {"succeeded": 1}
    result = payment_plans_run(as_of=FIRST + timedelta(days=4))
    # then the one payment pays the installment, and still only one charge was made
    charge = InstallmentCharge.objects.get()
    assert result.settled == [charge.pk]
    first.refresh_from_db()
    assert (first.status, first.paid_date) == ("paid", FIRST + timedelta(days=4))
    assert Payment.objects.count() == 1
    assert len(fake.charges()) == 1
    assert_books_agree()


def test_running_twice_the_same_day_charges_once(fake, plan_of) -> None:
    # given
    plan, _older, _newer = plan_of()
    # when
    first_run = payment_plans_run(as_of=FIRST)
    second_run = payment_plans_run(as_of=FIRST)
    # then
    assert len(first_run.charges) == 1
    assert second_run.charges == []
    assert second_run.settled == []
    assert len(fake.charges()) == 1
    assert ProcessorAttempt.objects.count() == 1
    assert Payment.objects.count() == 1
    plan.refresh_from_db()
    assert plan.amount_paid.amount == D("750.00")
    assert_books_agree()


def test_F5_a_run_that_died_after_billing_opened_the_attempt_is_completed_once(
    fake, plan_of, monkeypatch
) -> None:
    # given a run that died after Stripe charged, before the charge was noted on the plan
    plan, _older, _newer = plan_of()

    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(InstallmentCharge.objects, "get_or_create", die)
    with pytest.raises(SystemExit):
        payment_plans_run(as_of=FIRST)
    monkeypatch.undo()
    assert InstallmentCharge.objects.count() == 0
    assert ProcessorAttempt.objects.get().status == "succeeded"
    # when the run runs again
    payment_plans_run(as_of=FIRST)
    # then the same attempt is noted and counted, and Stripe was not asked again
    assert len(fake.charges()) == 1
    charge = InstallmentCharge.objects.get()
    assert charge.attempt == ProcessorAttempt.objects.get()
    assert installment(plan, 1).status == "paid"
    assert Payment.objects.count() == 1
    assert_books_agree()


def test_without_a_chargeable_method_nothing_is_charged(fake, plan_of) -> None:
    # given a plan of a customer with no saved card
    plan, _older, _newer = plan_of(card=False)
    # when
    result = payment_plans_run(as_of=FIRST + timedelta(days=1))
    # then nothing charged; the installment goes overdue as before
    assert result.charges == []
    assert fake.charges() == []
    assert ProcessorAttempt.objects.count() == 0
    assert installment(plan, 1).status == "overdue"


@pytest.mark.parametrize("retry_days", [[0], [3, 1], [1, 1], [1.5]])
def test_bad_retry_days_are_refused_and_nothing_is_written(plan_of, retry_days) -> None:
    with pytest.raises(PaymentPlanError) as exc:
        plan_of(retry_days=retry_days)
    assert exc.value.details["field"] == "retry_days"
    assert PaymentPlan.objects.count() == 0
