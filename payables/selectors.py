"""Payables reads: open bills and their aging (computed by the database), and the AP
sub-ledger check."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, QuerySet, Sum

from core.aging import aging_bucket_case, aging_totals
from core.ledger.checks import Problem
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from payables.enums import BillStatus, ExpenseReportStatus, PaymentRunStatus
from payables.models import Bill, ExpenseReport, PaymentRunItem, Vendor

OPEN_BILL_STATUSES = (BillStatus.APPROVED, BillStatus.SCHEDULED)


def payables_open(
    *,
    as_of: date,
    vendor: int | None = None,
    currency: str | None = None,
    bucket: str | None = None,
    min_amount: Decimal | None = None,
) -> QuerySet[Bill]:
    """Approved bills with something left to pay, annotated with ``due_now`` and ``bucket``
    (days past due counted to ``as_of``)."""
    qs = Bill.objects.filter(status__in=OPEN_BILL_STATUSES, bill_date__lte=as_of)
    if vendor:
        qs = qs.filter(vendor_id=vendor)
    if currency:
        qs = qs.filter(currency=currency)
    qs = qs.annotate(
        due_now=F("total") - F("amount_paid"),
        bucket=aging_bucket_case(as_of),
    ).filter(due_now__gt=0)
    if bucket:
        qs = qs.filter(bucket=bucket)
    if min_amount is not None:
        qs = qs.filter(due_now__gte=min_amount)
    return qs.select_related("vendor").order_by("due_date", "pk")


def payables_totals_and_count(
    *,
    as_of: date,
    vendor: int | None = None,
    currency: str | None = None,
    bucket: str | None = None,
    min_amount: Decimal | None = None,
) -> tuple[dict[str, dict[str, Decimal]], int]:
    """Per-currency bucket totals and the item count of ``payables_open`` with the same
    filters: the database sums per currency and due date; buckets are added up here."""
    rows = (
        payables_open(as_of=as_of, vendor=vendor, currency=currency, min_amount=min_amount)
        .order_by()
        .values("currency", "due_date")
        .annotate(s=Sum("due_now"), n=Count("pk"))
        .values_list("currency", "due_date", "s", "n")
    )
    return aging_totals(rows, as_of=as_of, bucket=bucket)


def ap_subledger_check() -> list[Problem]:
    """Per currency, what approved bills and expense reports still have to be paid equals
    the AP account's balance (credit minus debit)."""
    due: dict[str, Decimal] = defaultdict(Decimal)
    for model, statuses in (
        (Bill, OPEN_BILL_STATUSES),
        (ExpenseReport, (ExpenseReportStatus.APPROVED,)),
    ):
        for row in (
            model.objects.filter(status__in=statuses)
            .values("currency")
            .annotate(d=Sum(F("total") - F("amount_paid")))
            .order_by("currency")
        ):
            due[row["currency"]] += row["d"]
    ap = Account.objects.filter(role=AccountRole.ACCOUNTS_PAYABLE).first()
    balances = account_balances(account=ap) if ap else {}
    problems = []
    for currency in sorted(set(due) | set(balances)):
        ledger = -balances[currency].balance if currency in balances else Decimal(0)
        if ledger != due.get(currency, Decimal(0)):
            problems.append(
                Problem(
                    "payables.ap_subledger",
                    f"Open bills and expense reports in {currency} have "
                    f"{due.get(currency, Decimal(0))} to pay, but the AP account holds {ledger}",
                )
            )
    return problems


def ap_functional_check() -> list[Problem]:
    """Per currency, the AP account's functional balance equals what the open bills and
    expense reports still carry: their total at the booking rate less what paid runs settled
    of it. A paid document carries nothing, so a fraction of a cent left behind by the
    payment that settled it shows up here (issue 11)."""
    carried: dict[str, Decimal] = defaultdict(Decimal)
    for model, statuses, key in (
        (Bill, OPEN_BILL_STATUSES, "bill"),
        (ExpenseReport, (ExpenseReportStatus.APPROVED,), "expense_report"),
    ):
        open_docs = model.objects.filter(status__in=statuses)
        for row in open_docs.values("currency").annotate(f=Sum("total_functional")).order_by():
            carried[row["currency"]] += row["f"]
        settled = (
            PaymentRunItem.objects.filter(
                run__status=PaymentRunStatus.PAID, **{f"{key}__in": open_docs}
            )
            .values("currency")
            .annotate(f=Sum("settled_functional"))
            .order_by()
        )
        for row in settled:
            carried[row["currency"]] -= row["f"]
    ap = Account.objects.filter(role=AccountRole.ACCOUNTS_PAYABLE).first()
    balances = account_balances(account=ap) if ap else {}
    problems = []
    for currency in sorted(set(carried) | set(balances)):
        ledger = -balances[currency].functional_balance if currency in balances else Decimal(0)
        expected = carried.get(currency, Decimal(0))
        if ledger != expected:
            problems.append(
                Problem(
                    "payables.ap_functional",
                    f"Open bills and expense reports in {currency} carry {expected} in the "
                    f"functional currency, but the AP account holds {ledger} of it",
                )
            )
    return problems


def discount_pays_off(vendor: Vendor) -> bool:
    """The payment-run policy on early-payment discounts: taken when the discount's annualised
    rate (2/10 net 30 is about 37 %) beats the cost of the cash, the minimum set in
    ``PAYABLES_DISCOUNT_MIN_ANNUAL_RATE`` (10 % by default). Read by the runs and by the
    cash-flow projection alike."""
    pct, days, terms = vendor.discount_percent, vendor.discount_days, vendor.payment_terms_days
    if not pct or terms <= days:
        return False
    rate = pct / (100 - pct) * Decimal(365) / Decimal(terms - days)
    minimum = Decimal(str(getattr(settings, "PAYABLES_DISCOUNT_MIN_ANNUAL_RATE", "0.10")))
    return rate >= minimum
