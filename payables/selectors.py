"""Payables reads: open bills and their aging (computed by the database), and the AP
sub-ledger check."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Case, CharField, Count, F, QuerySet, Sum, Value, When

from core.ledger.checks import Problem
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from payables.enums import BillStatus, ExpenseReportStatus
from payables.models import Bill, ExpenseReport

OPEN_BILL_STATUSES = (BillStatus.APPROVED, BillStatus.SCHEDULED)
BUCKETS = ["current", "1-30", "31-60", "61-90", "90+"]


def aging_bucket(days_past_due: int) -> str:
    for limit, bucket in ((0, "current"), (30, "1-30"), (60, "31-60"), (90, "61-90")):
        if days_past_due <= limit:
            return bucket
    return "90+"


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
        bucket=Case(
            When(due_date__gte=as_of, then=Value("current")),
            When(due_date__gte=as_of - timedelta(days=30), then=Value("1-30")),
            When(due_date__gte=as_of - timedelta(days=60), then=Value("31-60")),
            When(due_date__gte=as_of - timedelta(days=90), then=Value("61-90")),
            default=Value("90+"),
            output_field=CharField(),
        ),
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
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {**{b: Decimal(0) for b in BUCKETS}, "total": Decimal(0)}
    )
    rows = (
        payables_open(as_of=as_of, vendor=vendor, currency=currency, min_amount=min_amount)
        .order_by()
        .values("currency", "due_date")
        .annotate(s=Sum("due_now"), n=Count("pk"))
        .values_list("currency", "due_date", "s", "n")
    )
    count = 0
    for cur, due_date, amount, n in rows:
        row_bucket = aging_bucket((as_of - due_date).days)
        if bucket and row_bucket != bucket:
            continue
        totals[cur][row_bucket] += amount
        totals[cur]["total"] += amount
        count += n
    return dict(sorted(totals.items())), count


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
