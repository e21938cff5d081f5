"""The demo fills every finance queue: overdue invoices at several dunning steps with late
fees, a payment plan, a dispute, a credit hold, a partly paid invoice, and EU customers
taxed as the law asks (German VAT; reverse charge across borders). All through the
services, so the books agree with the sub-ledgers; a second seed adds nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from billing.checks import ar_subledger_check
from billing.demo import REVERSE_CHARGE_MEMO
from billing.models import Customer, Invoice, InvoiceLine, Payment, TaxRate
from core.demo import demo_seed
from core.ledger.checks import ledger_check_run
from core.ledger.models import JournalEntry
from receivables.enums import CollectionEventOutcome
from receivables.models import (
    CollectionEvent,
    CollectionsWorklistItem,
    Dispute,
    Installment,
    LateFee,
    PaymentPlan,
)
from receivables.selectors import collections_worklist
from receivables.services.collections import collections_run

pytestmark = pytest.mark.django_db

TODAY = date(2025, 3, 10)


def _counts() -> dict[str, int]:
    models = [
        Customer,
        Invoice,
        InvoiceLine,
        Payment,
        TaxRate,
        JournalEntry,
        CollectionEvent,
        LateFee,
        PaymentPlan,
        Installment,
        Dispute,
    ]
    return {model.__name__: model.objects.count() for model in models}


@time_machine.travel(TODAY, tick=False)
def test_demo_collections_worklist_holds_invoices_at_several_steps_with_late_fees() -> None:
    # when the demo is seeded (every app's seeder, as `make run` does)
    result = demo_seed(today=TODAY, scale=0)

    # then the worklist shows the overdue invoices with the step each has reached
    worklist = collections_worklist(as_of=TODAY, queryset=CollectionsWorklistItem.objects.all())
    rows = [(i.customer.name, i.due_date, i.last_step_name) for i in worklist]
    assert rows == [
        ("Summit Ridge Construction", date(2025, 1, 19), "Escalation: suspend subscriptions"),
        ("Lakeside Catering LLC", date(2025, 2, 3), "Final notice"),
        ("Orchard Analytics Inc.", date(2025, 2, 18), "Overdue past grace period"),
        ("Pinewood Dental Group", date(2025, 2, 23), "Overdue past grace period"),
        ("Pinewood Dental Group", date(2025, 2, 27), "Due today"),
        # late fees are receivables too, listed but not chased step by step
        ("Summit Ridge Construction", date(2025, 3, 1), None),
    ]
    # and the daily runs sent each step on its day (none skipped) and charged the fees
    # after the grace period: fee 1 at due + 11, fee 2 thirty days later
    assert not CollectionEvent.objects.filter(outcome=CollectionEventOutcome.SKIPPED).exists()
    fees = [
        (f.invoice.customer.name, f.sequence, f.charged_date, f.amount.amount)
        for f in LateFee.objects.select_related("invoice__customer").order_by("charged_date", "pk")
    ]
    assert fees == [
        ("Summit Ridge Construction", 1, date(2025, 1, 30), Decimal("97.8800")),
        ("Lakeside Catering LLC", 1, date(2025, 2, 14), Decimal("39.1500")),
        ("Summit Ridge Construction", 2, date(2025, 3, 1), Decimal("97.8800")),
        ("Orchard Analytics Inc.", 1, date(2025, 3, 1), Decimal("34.2700")),
        ("Pinewood Dental Group", 1, date(2025, 3, 6), Decimal("24.1400")),
    ]
    # and today's run is left to do: its preview has a reminder, an overdue notice and a fee
    preview = collections_run(as_of=TODAY, dry_run=True)
    pinewood = Invoice.objects.get(
        customer__name="Pinewood Dental Group", due_date=date(2025, 2, 27)
    )
    crestline = Invoice.objects.get(customer__name="Crestline Media")
    assert [(a.invoice_id, a.kind, a.description) for a in preview.actions] == [
        (pinewood.pk, "late_fee", "late fee 1: 1.5% of 967.88 USD"),
        (pinewood.pk, "step", "Overdue past grace period (due 2025-03-10)"),
        (crestline.pk, "step", "Reminder before due (due 2025-03-10)"),
    ]
    # and the report says what was made
    report = next(r for r in result.app_reports if r.startswith("Receivables demo data"))
    assert "dunning steps done, 0 skipped, 5 late fees; today's run left to do: 3" in report


@time_machine.travel(TODAY, tick=False)
def test_demo_has_a_plan_a_dispute_a_credit_hold_and_a_part_payment() -> None:
    # when
    demo_seed(today=TODAY, scale=0)

    # then Lakeside pays its overdue invoice and its late fee in three installments
    plan = PaymentPlan.objects.get()
    assert plan.customer.name == "Lakeside Catering LLC"
    assert plan.total.amount == Decimal("2649.1500")  # 2,610.00 + the 39.15 fee
    assert [(i.due_date, i.amount.amount) for i in plan.installments.order_by("sequence")] == [
        (date(2025, 3, 17), Decimal("883.0500")),
        (date(2025, 4, 16), Decimal("883.0500")),
        (date(2025, 5, 16), Decimal("883.0500")),
    ]
    # and Pinewood disputes three of its eight seats
    dispute = Dispute.objects.get()
    assert (dispute.customer.name, dispute.amount.amount) == (
        "Pinewood Dental Group",
        Decimal("555.0000"),
    )
    assert dispute.invoice.due_date == date(2025, 2, 23)
    # and the escalated customer is on credit hold, with the reason
    held = Customer.objects.get(credit_hold=True)
    assert held.name == "Summit Ridge Construction"
    assert held.credit_hold_reason.startswith("Escalated")
    # and Orchard paid part of its invoice
    orchard = Invoice.objects.get(customer__name="Orchard Analytics Inc.", late_fee_charge=None)
    assert (orchard.amount_paid.amount, orchard.amount_due.amount) == (
        Decimal("1250.0000"),
        Decimal("2284.3800"),
    )
    # and the books agree with the sub-ledgers
    assert ar_subledger_check() == []
    assert ledger_check_run().ok


@time_machine.travel(TODAY, tick=False)
def test_demo_eu_customers_pay_german_vat_or_reverse_charge() -> None:
    # when
    demo_seed(today=TODAY, scale=0)

    # then Müller GmbH (DE) pays German VAT, not the 8.75 % US default
    muller = Invoice.objects.get(customer__name="Müller GmbH")
    assert muller.customer.tax_jurisdiction == "DE"
    assert list(muller.lines.values_list("tax_rate", flat=True)) == [Decimal("0.190000")]
    assert (muller.subtotal.amount, muller.tax.amount, muller.total.amount) == (
        Decimal("1500.0000"),
        Decimal("285.0000"),
        Decimal("1785.0000"),
    )
    # and the Dutch business with a VAT number is invoiced under the reverse charge
    van_dijk = Invoice.objects.get(customer__name="Van Dijk Logistics B.V.")
    assert van_dijk.customer.reverse_charge is True
    assert van_dijk.customer.tax_id == "NL004495445B01"
    assert list(van_dijk.lines.values_list("tax_rate", flat=True)) == [Decimal("0.000000")]
    assert (van_dijk.tax.amount, van_dijk.total.amount) == (Decimal(0), Decimal("2400.0000"))
    assert van_dijk.memo == REVERSE_CHARGE_MEMO
    assert van_dijk.snapshot is not None
    assert van_dijk.snapshot["customer"]["reverse_charge"] is True


@time_machine.travel(TODAY, tick=False)
def test_demo_seeded_twice_adds_nothing_and_the_ledger_checks() -> None:
    # given
    demo_seed(today=TODAY, scale=0)
    counts = _counts()

    # when
    second = demo_seed(today=TODAY, scale=0)

    # then
    assert "Receivables demo data: already there." in second.app_reports
    assert _counts() == counts
    assert ledger_check_run().ok
