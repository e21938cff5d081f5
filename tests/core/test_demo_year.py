"""The demo year (`seed_demo`): a small SaaS company's year seeded through the services, at
a fifth of the quick start's size (the full size is timed through the command by hand, see
the README). Seeded once for the module, on a fixed day, and rolled back at the end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.db.models import Count

from billing.demo import CHANNELS, YEAR_CUSTOMERS, YEAR_MONTHS
from billing.models import Customer, Invoice, InvoiceLine, Payment, ProcessorAttempt
from core.demo import DemoResult, demo_seed
from core.ledger.checks import ledger_check_run
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from core.models import FxRate
from payables.models import Approval, Bill, PaymentRun, PurchaseOrder
from receivables.models import LateFee
from receivables.models_disputes import Dispute
from receivables.models_plans import PaymentPlan
from reconciliation.enums import StatementLineStatus
from reconciliation.models import ReconciliationException, Statement, StatementLine
from reporting.demo import SPEND
from reporting.models import MarketingSpend

TODAY = date(2026, 6, 17)
SCALE = 0.2
EU = {"DE", "FR", "NL", "IE"}
VAT = {
    "DE": Decimal("0.19"),
    "FR": Decimal("0.20"),
    "NL": Decimal("0.21"),
    "IE": Decimal("0.23"),
    "GB": Decimal("0.20"),
    "JP": Decimal("0.10"),
}
US_RATE = Decimal("0.0875")


def _month(d: date) -> tuple[int, int]:
    return d.year, d.month


def _last_months(n: int) -> set[tuple[int, int]]:
    months = set()
    year, month = TODAY.year, TODAY.month
    for _ in range(n):
        months.add((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


@pytest.fixture(scope="module")
def seeded(django_db_setup: Any, django_db_blocker: Any) -> Iterator[DemoResult]:
    """The demo seeded once on TODAY for every test of the module; rolled back after."""
    with (
        django_db_blocker.unblock(),
        time_machine.travel(datetime(2026, 6, 17, 15, tzinfo=UTC), tick=False),
        transaction.atomic(),
    ):
        result = demo_seed(today=TODAY, scale=SCALE)
        yield result
        transaction.set_rollback(True)


@pytest.fixture
def year(seeded: DemoResult, db: None) -> DemoResult:
    return seeded


def _year_customers() -> Any:
    return Customer.objects.filter(email__startswith="billing@year-")


def test_customers_in_four_currencies_with_acquisition_channels(year: DemoResult) -> None:
    # given the demo year seeded at a fifth of its size
    customers = _year_customers()

    # then a fifth of the 300 customers, in the four currencies, with their channels
    assert customers.count() == round(YEAR_CUSTOMERS * SCALE)
    assert set(customers.values_list("currency", flat=True)) == {"USD", "EUR", "GBP", "JPY"}
    channels = set(customers.exclude(acquisition_channel="").values_list(
        "acquisition_channel", flat=True))  # fmt: skip
    assert channels == set(CHANNELS)
    # the customers on board before the year came from no tracked channel
    assert customers.filter(acquisition_channel="").exists()


def test_invoices_issued_in_each_of_the_twelve_months(year: DemoResult) -> None:
    # given the demo year
    issued = Invoice.objects.filter(customer__in=_year_customers(), subscription__isnull=False)

    # then the billing runs issued invoices in each of the last twelve months
    months = {_month(d) for d in issued.values_list("issue_date", flat=True) if d}
    assert months == _last_months(YEAR_MONTHS)
    # flat, per-seat and metered plans were billed, with upgrades and downgrades prorated
    descriptions = set(
        InvoiceLine.objects.filter(invoice__in=issued).values_list("description", flat=True)
    )
    assert any(d.startswith("Starter") for d in descriptions)
    assert any(d.startswith("Team") for d in descriptions)
    assert any(d.startswith("API calls") for d in descriptions)
    assert any("Unused time" in d or "Remaining time" in d for d in descriptions)


def test_eu_customers_pay_vat_or_reverse_charge_never_the_us_rate(year: DemoResult) -> None:
    # given the demo year's invoice lines per customer country
    lines = InvoiceLine.objects.filter(
        invoice__customer__in=_year_customers(), invoice__subscription__isnull=False
    ).values_list("invoice__customer__country", "invoice__customer__reverse_charge", "tax_rate")

    # then EU customers pay their country's VAT or nothing (reverse charge), never US tax
    seen = {"vat": 0, "reverse": 0}
    for country, reverse_charge, rate in lines:
        if country in EU:
            if reverse_charge:
                assert rate == 0
                seen["reverse"] += 1
            else:
                assert rate == VAT[country]
                seen["vat"] += 1
        elif country in VAT:
            assert rate == VAT[country]
        else:
            assert rate == US_RATE
    assert seen["vat"] > 0
    assert seen["reverse"] > 0


def test_payments_of_each_method_declines_and_a_chargeback(year: DemoResult) -> None:
    # given the demo year's payments and card attempts
    methods = set(Payment.objects.values_list("method", flat=True))

    # then every method paid, some card charges were declined, and one was charged back
    assert {"credit_card", "ach", "wire_transfer", "cryptocurrency"} <= methods
    declined = ProcessorAttempt.objects.filter(status="failed")
    assert declined.exists()
    assert all(code for code in declined.values_list("failure_code", flat=True))
    assert ProcessorAttempt.objects.filter(status="succeeded").exists()
    chargeback = Dispute.objects.get(stripe_dispute_id="dp_demo0001")
    assert chargeback.payment is not None
    assert chargeback.evidence_due_by is not None
    assert chargeback.evidence_due_by.date() > TODAY
    # some customers paid after the due date
    paid_late = [
        (received, due)
        for received, due in Payment.objects.filter(customer__in=_year_customers()).values_list(
            "received_date", "allocations__invoice__due_date"
        )
        if due is not None and received > due
    ]
    assert paid_late


def test_the_payment_success_chart_has_twelve_weeks_of_card_charges(year: DemoResult) -> None:
    # given the demo year's card charges (this week's through Stripe's webhooks, the weeks
    # before from the processor's history)
    from reporting.dashboard import payment_success_panel

    # when the dashboard's payment-success panel is read
    panel = payment_success_panel(as_of=TODAY)
    stripe = next(s for s in panel.by_processor if s.label == "stripe")
    # then card charges are there in (nearly) every one of its twelve weeks, and their rates
    # show the declines: some weeks below 100 %, none without a success
    weeks = [rate for rate in stripe.rates if rate is not None]
    assert len(weeks) >= 10
    assert all(rate > 0 for rate in weeks)
    assert any(rate < 100 for rate in weeks)
    # and each succeeded charge is one recorded card payment
    succeeded = ProcessorAttempt.objects.filter(status="succeeded")
    assert succeeded.count() == succeeded.values("payment").distinct().count()
    assert not succeeded.exclude(payment__method="credit_card").exists()


def test_overdue_invoices_late_fees_and_a_payment_plan(year: DemoResult) -> None:
    # given the demo year and the collections demo
    overdue = Invoice.objects.filter(status="open", due_date__lt=TODAY)

    # then invoices of the year are overdue now, fees were charged and a plan is running
    assert overdue.filter(customer__in=_year_customers()).exists()
    assert LateFee.objects.exists()
    assert PaymentPlan.objects.exists()


def test_marketing_spend_for_every_paid_channel_and_month(year: DemoResult) -> None:
    # given the reporting demo's spend
    rows = MarketingSpend.objects.values("channel", "campaign").annotate(months=Count("pk"))

    # then each paid campaign has twelve months, under the channels customers came from
    assert {(r["channel"], r["campaign"]): r["months"] for r in rows} == {
        (channel, campaign): 12 for channel, campaigns in SPEND.items() for campaign in campaigns
    }
    for channel, campaigns in SPEND.items():
        assert set(campaigns) <= set(CHANNELS[channel][1])


def test_orders_at_every_approval_level_bills_and_payment_runs(year: DemoResult) -> None:
    # given the payables demo year
    orders = PurchaseOrder.objects.all()
    roles_by_order: dict[int, set[str]] = {}
    for object_id, role in Approval.objects.filter(
        kind="purchase_order", voided_at__isnull=True
    ).values_list("object_id", "role"):
        roles_by_order.setdefault(object_id, set()).add(role)

    # then an order was approved on submission, others by approver, controller, and one
    # waits for a finance admin; one was rejected
    approved_alone = [
        o for o in orders if o.status in ("approved", "ordered") and o.pk not in roles_by_order
    ]
    assert approved_alone
    assert {"approver", "controller"} in roles_by_order.values()
    waiting = orders.get(description="Data room hardware refresh")
    assert waiting.status == "pending_approval"
    assert roles_by_order[waiting.pk] == {"approver", "controller"}
    assert orders.filter(status="rejected").exists()
    # bills with and without match exceptions, and runs paid during the year
    assert Bill.objects.filter(match_status="exception").exists()
    assert Bill.objects.filter(match_status="overridden").exists()
    assert Bill.objects.filter(status="paid").count() > 12
    paid_runs = PaymentRun.objects.filter(status="paid")
    assert {_month(d) for d in paid_runs.values_list("payment_date", flat=True)} >= (
        _last_months(YEAR_MONTHS) - {_month(TODAY)}
    )


def test_bank_statements_reconciled_but_a_handful(year: DemoResult) -> None:
    # given the year's statements and the matching engine's work
    lines = StatementLine.objects.all()
    by_status = dict(lines.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))

    # then a statement per month, nearly all lines matched, a few suggested or unmatched
    assert Statement.objects.count() >= YEAR_MONTHS
    matched = by_status.get(StatementLineStatus.MATCHED, 0)
    suggested = by_status.get(StatementLineStatus.SUGGESTED, 0)
    unmatched = by_status.get(StatementLineStatus.UNMATCHED, 0)
    assert matched > 0.8 * lines.count()
    assert 1 <= suggested <= 10
    assert 1 <= unmatched <= 10
    assert ReconciliationException.objects.filter(status="open").exists()


def test_ledger_balanced_and_sub_ledgers_agree(year: DemoResult) -> None:
    # given the demo year, with FX rates for every day of it
    assert FxRate.objects.filter(base_currency="JPY").count() >= 365

    # when the nightly ledger check runs
    run = ledger_check_run()

    # then it finds no problem
    assert run.problems == []
    assert run.ok


def test_cash_is_never_negative_in_any_currency(year: DemoResult) -> None:
    # given the demo year's cash account (supplier runs pay out in USD, EUR and GBP)
    cash = Account.objects.get(role=AccountRole.CASH)
    # then at every month end and today each currency's cash is zero or more
    month_ends = [date(y, m, 1) - timedelta(days=1) for y, m in sorted(_last_months(12))]
    for day in [*month_ends, TODAY]:
        balances = account_balances(account=cash, as_of=day)
        assert {c: b.balance for c, b in balances.items() if b.balance < 0} == {}, day


def test_second_seed_adds_nothing(year: DemoResult) -> None:
    # given the demo seeded once
    counts = {
        model.__name__: model.objects.count()
        for model in (Customer, Invoice, Payment, ProcessorAttempt, Bill, PaymentRun,
                      StatementLine, MarketingSpend, Dispute, FxRate)
    }  # fmt: skip

    # when it is seeded again, at full scale
    with time_machine.travel(datetime(2026, 6, 17, 16, tzinfo=UTC), tick=False):
        again = demo_seed(today=TODAY)

    # then nothing was added
    assert {
        model.__name__: model.objects.count()
        for model in (Customer, Invoice, Payment, ProcessorAttempt, Bill, PaymentRun,
                      StatementLine, MarketingSpend, Dispute, FxRate)
    } == counts  # fmt: skip
    assert again.fx_rates_recorded == 0
    assert all("already there" in report for report in again.app_reports)


def test_acquisition_economics_have_the_year_s_customers_and_their_revenue(
    year: DemoResult,
) -> None:
    # given the demo year: customers won over its months (not on the day it was seeded)
    from reporting.acquisition import acquisition_economics

    customers = _year_customers().exclude(acquisition_channel="")
    months = {_month(d) for d in customers.values_list("acquired_on", flat=True)}
    assert len(months) >= 6
    assert all(d <= TODAY for d in customers.values_list("acquired_on", flat=True))
    # when the year's acquisition economics are computed
    first = min(customers.values_list("acquired_on", flat=True))
    with time_machine.travel(datetime(2026, 6, 17, 12, tzinfo=UTC), tick=False):
        report = acquisition_economics(month_from=first, month_to=TODAY)
    # then every channel has new customers whose first year brought revenue, and a CAC
    tracked = [r for r in report.rows if r.channel]
    assert {r.channel for r in tracked} == set(CHANNELS)
    won = Customer.objects.exclude(acquisition_channel="").filter(
        acquired_on__gte=first.replace(day=1), acquired_on__lte=TODAY
    )
    assert sum(r.new_customers for r in tracked) == won.count() >= customers.count()
    for row in tracked:
        if row.new_customers:
            assert row.average_first_year_revenue is not None
            assert row.average_first_year_revenue > 0
