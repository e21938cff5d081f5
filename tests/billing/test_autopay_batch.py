"""Autopay charges in batches (issue 14 section 1, its benchmark's design): a run claims due
invoices together, asks Stripe from a pool of threads and records the successes together
(``payments_record_batch``); each outcome is still kept apart, nothing is charged or recorded
twice, and two runs at once share the work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, InvoiceAutopay, Payment, ProcessorAttempt
from billing.models.autopay import AutopayStatus, autopay_key
from billing.services import autopay as autopay_module
from billing.services import processor_payments
from billing.services.autopay import autopay_run
from billing.services.customers import customer_create
from billing.services.payments import AllocationInput, payment_record
from billing.services.processor_payments import attempt_apply_intent
from core.events.models import Event
from tests.billing.fakes.stripe_server import FakeStripe, running_fake_stripe
from tests.billing.test_autopay import assert_books_agree, issue
from tests.billing.test_stripe import add_card

pytestmark = [pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    # A timeout far above a charge's time on a busy machine (8 at once), far below the
    # fake's sleep for a charge told to time out.
    with running_fake_stripe(timeout_sleep=6.0) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 2.0
        yield fake


def autopay_customers(actor, count: int) -> list[Customer]:
    customers = []
    for n in range(count):
        customer = customer_create(
            actor=actor,
            name=f"Autopaid {n}",
            email=f"ap{n}@autopaid.example",
            currency="USD",
            autopay=True,
        )
        add_card(actor, customer)
        customers.append(customer)
    return customers


def card_of(customer: Customer) -> str:
    return f"pm_card_{customer.pk}_1"


def row_of(invoice: Invoice) -> InvoiceAutopay:
    return InvoiceAutopay.objects.get(invoice=invoice)


@pytest.mark.django_db
def test_one_run_charges_many_invoices_and_keeps_each_outcome_apart(
    fake, finance_admin, django_capture_on_commit_callbacks
) -> None:
    # given six autopay invoices: three cards that pay, one short of funds, one stolen,
    # one that Stripe does not answer in time
    customers = autopay_customers(finance_admin, 6)
    invoices = [issue(finance_admin, c, f"{100 + n}.00") for n, c in enumerate(customers)]
    soft, hard, silent = customers[3:]
    fake.queue("decline", decline_code="insufficient_funds", payment_method=card_of(soft))
    fake.queue("decline", decline_code="stolen_card", payment_method=card_of(hard))
    fake.queue("timeout", payment_method=card_of(silent))
    # when one run works them (the failure email sent after commit)
    with django_capture_on_commit_callbacks(execute=True):
        result = autopay_run()
    # then each invoice was charged once, under its own key, and each outcome is its own
    assert result.outcomes == {"succeeded": 3, "failed": 2, "unknown": 1}
    assert sorted(c.headers["idempotency-key"] for c in fake.charges()) == sorted(
        autopay_key(i.pk, 1) for i in invoices
    )
    for invoice in invoices[:3]:
        invoice.refresh_from_db()
        assert invoice.status == InvoiceStatus.PAID
        assert row_of(invoice).status == AutopayStatus.PAID
        attempt = ProcessorAttempt.objects.get(invoice=invoice)
        payment = attempt.payment
        # recorded as the one-by-one path records it: the charge id, the processor, the
        # amount allocated to the invoice, and the attempt's history kept
        assert attempt.status == "succeeded"
        assert payment.processor == "stripe"
        assert payment.processor_charge_id == attempt.processor_charge_id != ""
        assert payment.reference == f"Stripe {attempt.processor_intent_id}"
        assert payment.amount == invoice.total
        assert [a.invoice_id for a in payment.allocations.all()] == [invoice.pk]
        assert attempt.history.count() == 2
        assert row_of(invoice).history.count() >= 3
    assert row_of(invoices[3]).status == AutopayStatus.SCHEDULED
    assert row_of(invoices[3]).last_failure_code == "insufficient_funds"
    assert row_of(invoices[3]).next_attempt_at > timezone.now() + timedelta(days=2)
    stolen = row_of(invoices[4])
    assert (stolen.status, stolen.stop_reason) == (
        AutopayStatus.STOPPED,
        "the payment method was declined (stolen_card)",
    )
    assert stolen.customer_notified_at is not None
    assert ProcessorAttempt.objects.get(invoice=invoices[5]).status == "unknown"
    unknown = row_of(invoices[5])
    assert unknown.status == AutopayStatus.SCHEDULED
    assert unknown.next_attempt_at > timezone.now()
    # and integrators hear of each payment and each invoice paid, once
    assert Event.objects.filter(type="payment.succeeded").count() == 3
    assert Event.objects.filter(type="invoice.paid").count() == 3
    assert Event.objects.filter(type="payment.failed").count() == 2
    assert Payment.objects.count() == 3
    assert_books_agree()


@pytest.mark.django_db
def test_a_run_takes_the_same_queries_for_five_invoices_as_for_twenty(fake, finance_admin) -> None:
    # given twenty-five autopay invoices
    customers = autopay_customers(finance_admin, 25)
    invoices = [issue(finance_admin, c) for c in customers]
    InvoiceAutopay.objects.update(next_attempt_at=timezone.now() + timedelta(days=1))
    # when five are due, then twenty, each run's queries are counted
    counts = []
    for due in (invoices[:5], invoices[5:]):
        InvoiceAutopay.objects.filter(invoice__in=due).update(next_attempt_at=timezone.now())
        with CaptureQueriesContext(connection) as queries:
            assert autopay_run().outcomes == {"succeeded": len(due)}
        counts.append(len(queries))
    # then the batch does not grow with the invoices it charges
    assert counts[0] == counts[1]
    assert Payment.objects.count() == 25
    assert_books_agree()


@pytest.mark.django_db
def test_a_charge_the_webhook_recorded_first_is_not_recorded_again(
    fake, finance_admin, monkeypatch
) -> None:
    # given three autopay invoices, and Stripe's webhook for the first one applied after
    # Stripe answered and before the run records its answers
    customers = autopay_customers(finance_admin, 3)
    invoices = [issue(finance_admin, c) for c in customers]
    record = processor_payments._successes_record

    def webhook_first(succeeded):
        attempt, intent = next((a, i) for a, i in succeeded if a.invoice_id == invoices[0].pk)
        attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
        return record(succeeded)

    monkeypatch.setattr(processor_payments, "_successes_record", webhook_first)
    # when the run records them
    assert autopay_run().outcomes == {"succeeded": 3}
    # then each invoice has one payment, the first the webhook's
    for invoice in invoices:
        (payment,) = Payment.objects.filter(allocations__invoice=invoice)
        assert ProcessorAttempt.objects.get(invoice=invoice).payment == payment
        assert row_of(invoice).status == AutopayStatus.PAID
    assert Payment.objects.count() == 3
    assert_books_agree()


@pytest.mark.django_db
def test_a_charge_for_an_invoice_paid_meanwhile_becomes_credit(
    fake, finance_admin, monkeypatch
) -> None:
    # given two autopay invoices, one of them paid by wire while Stripe was charging it
    customers = autopay_customers(finance_admin, 2)
    paid_by_wire, charged = (issue(finance_admin, c, "80.00") for c in customers)
    record = processor_payments._successes_record

    def wire_first(succeeded):
        payment_record(
            actor=finance_admin,
            customer_id=paid_by_wire.customer_id,
            amount=D("80.00"),
            currency="USD",
            method="wire_transfer",
            allocations=[AllocationInput(invoice_id=paid_by_wire.pk, amount=D("80.00"))],
        )
        return record(succeeded)

    monkeypatch.setattr(processor_payments, "_successes_record", wire_first)
    # when the run records the two charges
    assert autopay_run().outcomes == {"succeeded": 2}
    # then the money Stripe took for the paid invoice is the customer's credit, not lost
    # and not allocated twice; the other invoice is paid by its charge
    customer = Customer.objects.get(pk=paid_by_wire.customer_id)
    assert customer.credit_balance.amount == D("80.00")
    card = ProcessorAttempt.objects.get(invoice=paid_by_wire).payment
    assert card.amount_allocated.amount == 0
    charged.refresh_from_db()
    assert charged.status == InvoiceStatus.PAID
    assert_books_agree()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_runs_at_once_charge_each_invoice_once(
    fake, finance_admin, monkeypatch, settings
) -> None:
    # given forty autopay invoices issued while Stripe was not configured (their first
    # try put off), and two workers running at the same moment, five invoices at a time
    monkeypatch.setattr(autopay_module, "CHUNK", 5)
    settings.STRIPE_SECRET_KEY = ""
    customers = autopay_customers(finance_admin, 40)
    invoices = [issue(finance_admin, c) for c in customers]
    assert fake.charges() == []
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    later = timezone.now() + timedelta(hours=2)
    barrier = threading.Barrier(2)
    results = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            result = autopay_run(now=later)
            with lock:
                results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then the two shared the invoices: each charged once at Stripe, paid once
    assert len(results) == 2
    worked = [set(r.by_invoice) for r in results]
    assert worked[0].isdisjoint(worked[1])
    assert worked[0] | worked[1] == {i.pk for i in invoices}
    keys = [c.headers["idempotency-key"] for c in fake.charges()]
    assert sorted(keys) == sorted(autopay_key(i.pk, 1) for i in invoices)
    assert Payment.objects.count() == 40
    assert Invoice.objects.filter(status=InvoiceStatus.PAID).count() == 40
    assert_books_agree()
