"""Financial KPIs as of a date: one selector per figure, and the registry the dashboard,
the API and the daily snapshot read (code -> label, unit, how it is computed, function).

Every figure is computed by the database (sums and counts per currency); Python only adds
up the few grouped rows. Money figures are per currency ({"USD": ..., "EUR": ...}); the
others are under the currency "" ({"": ...}). A ratio whose denominator is zero is left out
rather than shown as 0 or infinity.

MRR is rebuilt for any past day from the subscriptions and the history of their items:
``subscription_change`` replaces licensed items (the old row is deleted, which
django-simple-history records as a "-" row with the item's price and quantity) and the
subscription's own ``started_on``, ``trial_end`` and ``ended_on`` dates bound its life.
An item counts from the day it was created (from the subscription's start for the items
created with it) until the day it was deleted.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateField,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Ceil, TruncDate
from django.utils import timezone

from billing.enums import (
    Aggregation,
    BillingInterval,
    InvoiceStatus,
    PriceType,
    SubscriptionStatus,
)
from billing.models import (
    Invoice,
    PaymentAllocation,
    ProcessorAttempt,
    Subscription,
    SubscriptionItem,
    UsageEvent,
)
from billing.models.processors import AttemptStatus
from billing.pricing import PricingError, price_amount
from core.aging import AgingBucket, aging_totals
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import accounts_balances
from payables.enums import BillStatus, ExpenseReportStatus, PaymentRunStatus, PurchaseOrderStatus
from payables.models import Bill, ExpenseReport, PaymentRun, PurchaseOrder
from receivables.selectors import receivables_by_due_date
from reconciliation.enums import ExceptionStatus
from reconciliation.models import ReconciliationException
from reconciliation.selectors import bank_ledger_account_ids
from reporting.memo import memoized, shared, shared_reads

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
STORED = Decimal("0.0001")
AMOUNT: DecimalField[Decimal, Decimal] = DecimalField(max_digits=19, decimal_places=4)
# Months in a billing interval (plain strings: the values read from the database).
MONTHS = {
    BillingInterval.MONTH.value: 1,
    BillingInterval.QUARTER.value: 3,
    BillingInterval.YEAR.value: 12,
}

# Money per currency; other figures under "".
Figures = dict[str, Decimal]
CustomerMrr = dict[tuple[int, str], Decimal]


def _ratio(numerator: Decimal, denominator: Decimal, factor: Decimal = HUNDRED) -> Decimal | None:
    if not denominator:
        return None
    return (numerator / denominator * factor).quantize(CENT, rounding=ROUND_HALF_UP)


def _window(as_of: date, days: int) -> tuple[date, date]:
    """The ``days`` days ending on ``as_of``: (first day, last day), both included."""
    return as_of - timedelta(days=days - 1), as_of


# --- Balances -------------------------------------------------------------------------------


def _ledger_balances(account_ids: Iterable[int], *, as_of: date, credit_normal: bool) -> Figures:
    per_currency: Figures = {}
    for (_, currency), balance in accounts_balances(account_ids=account_ids, as_of=as_of).items():
        amount = -balance.balance if credit_normal else balance.balance
        per_currency[currency] = per_currency.get(currency, ZERO) + amount
    return dict(sorted(per_currency.items()))


def _role_ids(role: AccountRole) -> list[int]:
    return list(Account.objects.filter(role=role).values_list("pk", flat=True))


def kpi_cash(*, as_of: date) -> Figures:
    """Cash: the ledger balance of the cash account and of every reconciled bank account."""
    ids = {*_role_ids(AccountRole.CASH), *bank_ledger_account_ids()}
    return _ledger_balances(ids, as_of=as_of, credit_normal=False)


def kpi_ar(*, as_of: date) -> Figures:
    """Open receivables: the balance of the AR control account."""
    return memoized(
        ("ar", as_of),
        lambda: _ledger_balances(
            _role_ids(AccountRole.ACCOUNTS_RECEIVABLE), as_of=as_of, credit_normal=False
        ),
    )


def kpi_ap(*, as_of: date) -> Figures:
    """Open payables: the (credit) balance of the AP control account."""
    return memoized(
        ("ap", as_of),
        lambda: _ledger_balances(
            _role_ids(AccountRole.ACCOUNTS_PAYABLE), as_of=as_of, credit_normal=True
        ),
    )


# --- Sales, purchases and the ratios built on them ------------------------------------------


def credit_sales(*, date_from: date, date_to: date) -> Figures:
    """Invoice totals issued in the period (tax included, as AR carries them); an invoice
    voided by ``date_to`` was never a sale."""
    return memoized(("sales", date_from, date_to), lambda: _credit_sales(date_from, date_to))


def _credit_sales(date_from: date, date_to: date) -> Figures:
    rows = (
        Invoice.objects.filter(issue_date__gte=date_from, issue_date__lte=date_to)
        .exclude(status=InvoiceStatus.DRAFT)
        .exclude(Q(status=InvoiceStatus.VOID) & Q(closed_at__date__lte=date_to))
        .values("currency")
        .annotate(s=Sum("total"))
        .order_by("currency")
    )
    return {r["currency"]: r["s"] for r in rows}


def purchases(*, date_from: date, date_to: date) -> Figures:
    """Totals of the vendor bills dated in the period that were posted to AP (approved on)."""
    return memoized(("purchases", date_from, date_to), lambda: _purchases(date_from, date_to))


def _purchases(date_from: date, date_to: date) -> Figures:
    rows = (
        Bill.objects.filter(
            bill_date__gte=date_from,
            bill_date__lte=date_to,
            status__in=[BillStatus.APPROVED, BillStatus.SCHEDULED, BillStatus.PAID],
        )
        .values("currency")
        .annotate(s=Sum("total"))
        .order_by("currency")
    )
    return {r["currency"]: r["s"] for r in rows}


def _days_outstanding(balances: Figures, flows: Figures, days: int) -> Figures:
    out = {}
    for currency, balance in balances.items():
        value = _ratio(balance, flows.get(currency, ZERO), Decimal(days))
        if value is not None:
            out[currency] = value
    return out


def kpi_dso(*, as_of: date, days: int = 30) -> Figures:
    """Days sales outstanding: AR / credit sales of the last ``days`` days x ``days``."""
    start, end = _window(as_of, days)
    return _days_outstanding(kpi_ar(as_of=as_of), credit_sales(date_from=start, date_to=end), days)


def kpi_dpo(*, as_of: date, days: int = 30) -> Figures:
    """Days payables outstanding: AP / purchases of the last ``days`` days x ``days``."""
    start, end = _window(as_of, days)
    return _days_outstanding(kpi_ap(as_of=as_of), purchases(date_from=start, date_to=end), days)


def current_receivables(*, as_of: date) -> Figures:
    """Open receivables not yet past due on ``as_of`` (the aging's current bucket)."""
    # The AR panel's read when the page has made it; else only what is not yet due.
    rows = open_receivables_by_due_if_read(as_of=as_of)
    if rows is None:
        rows = memoized(
            ("ar_not_yet_due", as_of),
            lambda: receivables_by_due_date(as_of=as_of, due_from=as_of),
        )
    totals, _count = aging_totals(rows, as_of=as_of, bucket=AgingBucket.CURRENT)
    return {currency: buckets["total"] for currency, buckets in totals.items()}


def open_receivables_by_due(*, as_of: date) -> list[tuple[str, date, Decimal, int]]:
    """Open AR at the end of ``as_of`` per currency and due date (``receivables_by_due_date``),
    read once within ``shared_reads``: the AR panel, the current AR of the CEI, the overdue
    queue and the projection's long overdue add up the same open invoices."""
    return memoized(_ar_by_due_key(as_of), lambda: receivables_by_due_date(as_of=as_of))


def open_receivables_by_due_if_read(*, as_of: date) -> list[tuple[str, date, Decimal, int]] | None:
    """``open_receivables_by_due`` when another figure of this ``shared_reads`` has read it."""
    return shared(_ar_by_due_key(as_of))


def _ar_by_due_key(as_of: date) -> tuple[Any, ...]:
    return ("ar_by_due", as_of)


def kpi_cei(*, as_of: date, days: int = 30) -> Figures:
    """Collection effectiveness over the last ``days`` days, per currency:
    (opening AR + credit sales - closing AR) / (opening AR + credit sales - closing current AR)
    x 100; 100 means everything collectable was collected."""
    start, end = _window(as_of, days)
    opening = kpi_ar(as_of=start - timedelta(days=1))
    sales = credit_sales(date_from=start, date_to=end)
    closing = kpi_ar(as_of=as_of)
    current = current_receivables(as_of=as_of)
    out = {}
    for currency in sorted({*opening, *sales, *closing}):
        available = opening.get(currency, ZERO) + sales.get(currency, ZERO)
        value = _ratio(
            available - closing.get(currency, ZERO), available - current.get(currency, ZERO)
        )
        if value is not None:
            out[currency] = value
    return out


# --- MRR -------------------------------------------------------------------------------------


def _subscription_live(as_of: date, prefix: str = "") -> Q:
    """Subscriptions paying on ``as_of``: started, out of trial, not ended, not paused."""
    p = prefix
    return (
        Q(**{f"{p}started_on__lte": as_of})
        & (Q(**{f"{p}trial_end__isnull": True}) | Q(**{f"{p}trial_end__lte": as_of}))
        & (Q(**{f"{p}ended_on__isnull": True}) | Q(**{f"{p}ended_on__gt": as_of}))
        & ~Q(**{f"{p}status": SubscriptionStatus.PAUSED, f"{p}paused_at__date__lte": as_of})
    )


def _item_effective_from() -> Case:
    """Items created with their subscription count from its start; later ones (a change)
    from the day they were created."""
    return Case(
        When(
            created_at__date__lte=TruncDate("subscription__created_at"),
            then=F("subscription__started_on"),
        ),
        default=TruncDate("created_at"),
        output_field=DateField(),
    )


_LICENSED_AMOUNT = Case(
    When(price__type=PriceType.FLAT, then=F("price__unit_amount")),
    When(price__type=PriceType.PER_UNIT, then=F("price__unit_amount") * F("quantity")),
    When(
        price__type=PriceType.PACKAGE,
        then=Ceil(F("quantity") / F("price__package_size")) * F("price__unit_amount"),
    ),
    output_field=AMOUNT,
)
_TIERED = (PriceType.TIERED_GRADUATED, PriceType.TIERED_VOLUME)


def _licensed_items_on(as_of: date) -> list[QuerySet[Any]]:
    """The licensed items in force on ``as_of``: rows alive now, and rows deleted after it
    (found in the items' history)."""
    live = _subscription_live(as_of, "subscription__")
    current = (
        SubscriptionItem.objects.filter(live, price__metric="")
        .annotate(effective_from=_item_effective_from())
        .filter(effective_from__lte=as_of)
    )
    history = SubscriptionItem.history.model.objects
    deleted = (
        history.filter(live, history_type="-", price__metric="", history_date__date__gt=as_of)
        .annotate(effective_from=_item_effective_from())
        .filter(effective_from__lte=as_of)
    )
    return [current, deleted]


def _add(into: CustomerMrr, key: tuple[int, str], amount: Decimal) -> None:
    into[key] = into.get(key, ZERO) + amount


def _last_full_month(as_of: date) -> tuple[date, date]:
    """The latest calendar month ending on or before ``as_of``: [first day, next month's)."""
    last_day = calendar.monthrange(as_of.year, as_of.month)[1]
    end = date(as_of.year, as_of.month, 1)
    if as_of.day == last_day:
        end = as_of + timedelta(days=1)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end


def _metered_mrr(as_of: date, into: CustomerMrr) -> None:
    """Metered items: what the last full month's usage costs at the item's price."""
    start, end = _last_full_month(as_of)
    window = Q(usage__occurred_at__date__gte=start, usage__occurred_at__date__lt=end)
    last = (
        UsageEvent.objects.filter(
            item=OuterRef("pk"), occurred_at__date__gte=start, occurred_at__date__lt=end
        )
        .order_by("-occurred_at", "-pk")
        .values("quantity")[:1]
    )
    rows = (
        SubscriptionItem.objects.filter(_subscription_live(as_of, "subscription__"))
        .exclude(price__metric="")
        .annotate(
            q_sum=Sum("usage__quantity", filter=window),
            q_max=Max("usage__quantity", filter=window),
            q_unique=Count("usage__value", filter=window, distinct=True),
            q_last=Subquery(last, output_field=AMOUNT),
        )
        .filter(Q(q_sum__isnull=False) | Q(q_last__isnull=False))
        .values(
            "subscription__customer_id",
            "subscription__currency",
            "price__type",
            "price__unit_amount",
            "price__package_size",
            "price__tiers",
            "price__aggregation",
            "q_sum",
            "q_max",
            "q_unique",
            "q_last",
        )
    )
    picked = {
        Aggregation.SUM: "q_sum",
        Aggregation.MAX: "q_max",
        Aggregation.LAST: "q_last",
        Aggregation.UNIQUE: "q_unique",
    }
    for r in rows:
        quantity = Decimal(r[picked.get(r["price__aggregation"], "q_sum")] or 0)
        try:
            amount = price_amount(
                type=r["price__type"],
                quantity=quantity,
                unit_amount=r["price__unit_amount"],
                package_size=r["price__package_size"],
                tiers=r["price__tiers"],
            )
        except PricingError:
            continue
        _add(into, (r["subscription__customer_id"], r["subscription__currency"]), amount)


def mrr_by_customer(*, as_of: date) -> CustomerMrr:
    """Each paying customer's monthly recurring revenue on ``as_of``, per currency.

    Licensed prices: the period price (flat, per seat x quantity, packages, tiers) divided by
    the months of its interval (quarter 3, year 12). Metered prices: the last full month's
    usage priced. Trials, paused and ended subscriptions bring nothing."""
    return memoized(("mrr", as_of), lambda: _mrr_by_customer(as_of))


def _mrr_by_customer(as_of: date) -> CustomerMrr:
    out: CustomerMrr = {}
    keys = ("subscription__customer_id", "subscription__currency", "price__interval")
    for qs in _licensed_items_on(as_of):
        rows = (
            qs.exclude(price__type__in=_TIERED)
            .values(*keys)
            .annotate(s=Sum(_LICENSED_AMOUNT))
            .order_by()
        )
        for r in rows:
            months = MONTHS.get(r["price__interval"], 1)
            _add(out, (r[keys[0]], r[keys[1]]), (r["s"] or ZERO) / months)
        tiered = (
            qs.filter(price__type__in=_TIERED)
            .values(*keys, "price__type", "price__tiers", "quantity")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for r in tiered:
            try:
                amount = price_amount(
                    type=r["price__type"], quantity=r["quantity"], tiers=r["price__tiers"]
                )
            except PricingError:
                continue
            months = MONTHS.get(r["price__interval"], 1)
            _add(out, (r[keys[0]], r[keys[1]]), amount * r["n"] / months)
    _metered_mrr(as_of, out)
    return {k: v.quantize(STORED, rounding=ROUND_HALF_UP) for k, v in out.items() if v}


def _per_currency(by_customer: Mapping[tuple[int, str], Decimal]) -> Figures:
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (_customer, currency), amount in by_customer.items():
        totals[currency] += amount
    return dict(sorted(totals.items()))


def kpi_mrr(*, as_of: date) -> Figures:
    """Monthly recurring revenue of the subscriptions paying on ``as_of``."""
    return _per_currency(mrr_by_customer(as_of=as_of))


def kpi_arr(*, as_of: date) -> Figures:
    """Annual recurring revenue: MRR x 12."""
    return {c: v * 12 for c, v in kpi_mrr(as_of=as_of).items()}


@dataclass(frozen=True, slots=True)
class MrrMovement:
    """How MRR moved between ``start`` (the day before the month) and ``end``:
    ``opening + new + expansion + reactivation - contraction - churn == closing``."""

    currency: str
    opening: Decimal
    new: Decimal
    expansion: Decimal
    contraction: Decimal
    churn: Decimal
    reactivation: Decimal
    closing: Decimal
    customers_at_start: int
    customers_lost: int


def _month_bounds(as_of: date) -> tuple[date, date]:
    """The day before ``as_of``'s month, and ``as_of``: a month to date."""
    return as_of.replace(day=1) - timedelta(days=1), as_of


def mrr_movement_classify(
    before: Mapping[tuple[int, str], Decimal],
    after: Mapping[tuple[int, str], Decimal],
    returning: Iterable[tuple[int, str]] = (),
) -> dict[str, MrrMovement]:
    """Sort each customer's change of MRR into one movement, per currency: from nothing to
    something is new (or reactivation for ``returning`` customers), from something to
    nothing is churn, otherwise expansion or contraction by the difference."""
    back = set(returning)
    moves: dict[str, dict[str, Any]] = defaultdict(
        lambda: (
            dict.fromkeys(
                ("opening", "new", "expansion", "contraction", "churn", "reactivation", "closing"),
                ZERO,
            )
            | {"customers_at_start": 0, "customers_lost": 0}
        )
    )
    for key in before.keys() | after.keys():
        old, new = before.get(key, ZERO), after.get(key, ZERO)
        m = moves[key[1]]
        m["opening"] += old
        m["closing"] += new
        if old:
            m["customers_at_start"] += 1
        if not old:
            m["reactivation" if key in back else "new"] += new
        elif not new:
            m["churn"] += old
            m["customers_lost"] += 1
        elif new > old:
            m["expansion"] += new - old
        else:
            m["contraction"] += old - new
    return {c: MrrMovement(currency=c, **m) for c, m in sorted(moves.items())}


def mrr_movement(*, as_of: date) -> dict[str, MrrMovement]:
    """The month-to-date MRR movement of ``as_of``'s month (the whole month when ``as_of`` is
    its last day), per currency, from each customer's MRR at both ends.

    A customer with no MRR at the start and some at the end is new, or reactivated when one
    of their subscriptions in that currency had ended by the start of the month."""
    start, end = _month_bounds(as_of)
    before = mrr_by_customer(as_of=start)
    after = mrr_by_customer(as_of=end)
    arrived = {key for key in after if key not in before}
    returning = set(
        Subscription.objects.filter(
            customer_id__in={customer for customer, _c in arrived},
            ended_on__isnull=False,
            ended_on__lte=start,
        )
        .values_list("customer_id", "currency")
        .distinct()
    )
    return mrr_movement_classify(before, after, returning)


def _movement_part(part: str) -> Callable[..., Figures]:
    def compute(*, as_of: date) -> Figures:
        return {c: getattr(m, part) for c, m in mrr_movement(as_of=as_of).items()}

    compute.__name__ = f"kpi_mrr_{part}"
    return compute


def kpi_customer_churn_rate(*, as_of: date) -> Figures:
    """Customers who paid at the start of the month and pay nothing now / paying customers
    at the start x 100 (a customer paying in two currencies counts once)."""
    start, end = _month_bounds(as_of)
    before = {customer for customer, _c in mrr_by_customer(as_of=start)}
    after = {customer for customer, _c in mrr_by_customer(as_of=end)}
    value = _ratio(Decimal(len(before - after)), Decimal(len(before)))
    return {} if value is None else {"": value}


def kpi_mrr_churn_rate(*, as_of: date) -> Figures:
    """MRR lost this month (churned and contracted) / MRR at the start of the month x 100."""
    out = {}
    for currency, m in mrr_movement(as_of=as_of).items():
        value = _ratio(m.churn + m.contraction, m.opening)
        if value is not None:
            out[currency] = value
    return out


def _year_before(day: date) -> date:
    last = calendar.monthrange(day.year - 1, day.month)[1]
    return day.replace(year=day.year - 1, day=min(day.day, last))


def kpi_nrr(*, as_of: date) -> Figures:
    """Net revenue retention: today's MRR of the customers who paid 12 months ago / their MRR
    then x 100 (new customers since are left out)."""
    then = mrr_by_customer(as_of=_year_before(as_of))
    now = mrr_by_customer(as_of=as_of)
    out = {}
    for currency, base in _per_currency(then).items():
        kept = sum((now.get(key, ZERO) for key in then if key[1] == currency), ZERO)
        value = _ratio(kept, base)
        if value is not None:
            out[currency] = value
    return out


# --- Collection ------------------------------------------------------------------------------


def attempts_started(first: date, last: date) -> QuerySet[ProcessorAttempt]:
    """Processor charges started on the days ``first`` to ``last`` (local days, both
    included) that have an outcome or are unknown: pending ones are left out. The days are
    bounds on the instant (``created_at`` compared as stored, so its index can serve and the
    planner knows how many rows), not a date taken of every row."""
    return ProcessorAttempt.objects.filter(
        created_at__gte=day_start(first), created_at__lt=day_start(last + timedelta(days=1))
    ).exclude(status=AttemptStatus.PENDING)


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _attempts(as_of: date, days: int) -> QuerySet[ProcessorAttempt]:
    return attempts_started(*_window(as_of, days))


_SUCCEEDED = Count("pk", filter=Q(status=AttemptStatus.SUCCEEDED))


def kpi_payment_success_rate(*, as_of: date, days: int = 30) -> Figures:
    """Processor charges that succeeded / charges attempted (finished or unknown) in the
    last ``days`` days x 100."""
    totals = _attempts(as_of, days).aggregate(n=Count("pk"), ok=_SUCCEEDED)
    value = _ratio(Decimal(totals["ok"]), Decimal(totals["n"]))
    return {} if value is None else {"": value}


@dataclass(frozen=True, slots=True)
class SuccessRow:
    key: str
    attempted: int
    succeeded: int

    @property
    def rate(self) -> Decimal | None:
        return _ratio(Decimal(self.succeeded), Decimal(self.attempted))


@dataclass(frozen=True, slots=True)
class PaymentSuccess:
    attempted: int
    succeeded: int
    by_processor: list[SuccessRow]
    by_method: list[SuccessRow]
    # (failure code, attempts), most frequent first.
    top_decline_codes: list[tuple[str, int]]

    @property
    def rate(self) -> Decimal | None:
        return _ratio(Decimal(self.succeeded), Decimal(self.attempted))


def payment_success(*, as_of: date, days: int = 30, top: int = 5) -> PaymentSuccess:
    """The success rate of processor charges, split by processor and payment method, and
    the most frequent decline codes."""
    qs = _attempts(as_of, days)
    totals = qs.aggregate(n=Count("pk"), ok=_SUCCEEDED)

    def split(field: str) -> list[SuccessRow]:
        rows = qs.values(field).annotate(n=Count("pk"), ok=_SUCCEEDED).order_by(field)
        return [SuccessRow(r[field], r["n"], r["ok"]) for r in rows]

    codes = (
        qs.filter(status=AttemptStatus.FAILED)
        .exclude(failure_code="")
        .values("failure_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "failure_code")[:top]
    )
    return PaymentSuccess(
        attempted=totals["n"],
        succeeded=totals["ok"],
        by_processor=split("processor"),
        by_method=split("payment_method__type"),
        top_decline_codes=[(r["failure_code"], r["n"]) for r in codes],
    )


def kpi_average_days_to_pay(*, as_of: date, days: int = 90) -> Figures:
    """Average days from issue to payment of the invoices paid in full in the last ``days``
    days (the payment date is the last payment applied to the invoice)."""
    start, end = _window(as_of, days)
    paid_on = (
        PaymentAllocation.objects.filter(invoice=OuterRef("pk"))
        .values("invoice")
        .annotate(d=Max("payment__received_date"))
        .values("d")
    )
    totals = (
        Invoice.objects.filter(status=InvoiceStatus.PAID)
        .annotate(paid_on=Subquery(paid_on, output_field=DateField()))
        .filter(paid_on__gte=start, paid_on__lte=end)
        .aggregate(
            n=Count("pk"),
            waited=Sum(
                ExpressionWrapper(F("paid_on") - F("issue_date"), output_field=DurationField())
            ),
        )
    )
    if not totals["n"]:
        return {}
    waited: timedelta = totals["waited"]
    seconds = Decimal(waited.days * 86400 + waited.seconds)
    return {"": (seconds / 86400 / totals["n"]).quantize(CENT, rounding=ROUND_HALF_UP)}


# --- Work queues -----------------------------------------------------------------------------


def kpi_open_reconciliation_exceptions(*, as_of: date) -> Figures:
    """Reconciliation exceptions detected by ``as_of`` and not resolved by then."""
    n = (
        ReconciliationException.objects.filter(detected_at__date__lte=as_of)
        .filter(
            Q(status=ExceptionStatus.OPEN)
            | Q(resolved_at__isnull=True)
            | Q(resolved_at__date__gt=as_of)
        )
        .count()
    )
    return {"": Decimal(n)}


def kpi_approvals_waiting(*, as_of: date) -> Figures:
    """Purchase orders, bills, payment runs (pending approval) and expense reports (submitted)
    waiting for an approver, submitted by ``as_of`` (only today's queue is known: a document
    approved since is not counted for a past day)."""
    submitted = Q(submitted_at__date__lte=as_of)
    n = (
        PurchaseOrder.objects.filter(submitted, status=PurchaseOrderStatus.PENDING_APPROVAL).count()
        + Bill.objects.filter(submitted, status=BillStatus.PENDING_APPROVAL).count()
        + PaymentRun.objects.filter(submitted, status=PaymentRunStatus.PENDING_APPROVAL).count()
        + ExpenseReport.objects.filter(submitted, status=ExpenseReportStatus.SUBMITTED).count()
    )
    return {"": Decimal(n)}


# --- Registry --------------------------------------------------------------------------------


class KpiUnit:
    MONEY = "money"
    DAYS = "days"
    PERCENT = "percent"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class Kpi:
    code: str
    label: str
    unit: str
    # One sentence for the dashboard's tooltip.
    how: str
    compute: Callable[..., Figures]

    def value(self, *, as_of: date) -> Figures:
        return self.compute(as_of=as_of)


def _days(fn: Callable[..., Figures], days: int) -> Callable[..., Figures]:
    def compute(*, as_of: date) -> Figures:
        return fn(as_of=as_of, days=days)

    return compute


_DEFINITIONS = [
    Kpi("cash", "Cash", KpiUnit.MONEY,
        "Ledger balance of the cash account and of every reconciled bank account.", kpi_cash),
    Kpi("ar", "Accounts receivable", KpiUnit.MONEY,
        "Ledger balance of the accounts-receivable control account.", kpi_ar),
    Kpi("ap", "Accounts payable", KpiUnit.MONEY,
        "Ledger balance of the accounts-payable control account.", kpi_ap),
    Kpi("dso_30", "DSO (30 days)", KpiUnit.DAYS,
        "Accounts receivable / invoices issued in the last 30 days x 30.", _days(kpi_dso, 30)),
    Kpi("dso_90", "DSO (90 days)", KpiUnit.DAYS,
        "Accounts receivable / invoices issued in the last 90 days x 90.", _days(kpi_dso, 90)),
    Kpi("dpo_30", "DPO (30 days)", KpiUnit.DAYS,
        "Accounts payable / vendor bills dated in the last 30 days x 30.", _days(kpi_dpo, 30)),
    Kpi("dpo_90", "DPO (90 days)", KpiUnit.DAYS,
        "Accounts payable / vendor bills dated in the last 90 days x 90.", _days(kpi_dpo, 90)),
    Kpi("cei_30", "Collection effectiveness (30 days)", KpiUnit.PERCENT,
        "(Opening AR + sales - closing AR) / (opening AR + sales - closing current AR) x 100 "
        "over the last 30 days.", _days(kpi_cei, 30)),
    Kpi("cei_90", "Collection effectiveness (90 days)", KpiUnit.PERCENT,
        "(Opening AR + sales - closing AR) / (opening AR + sales - closing current AR) x 100 "
        "over the last 90 days.", _days(kpi_cei, 90)),
    Kpi("mrr", "MRR", KpiUnit.MONEY,
        "Monthly value of paying subscriptions: prices per month x quantity, metered items at "
        "last full month's usage.", kpi_mrr),
    Kpi("arr", "ARR", KpiUnit.MONEY, "MRR x 12.", kpi_arr),
    Kpi("mrr_new", "New MRR (month to date)", KpiUnit.MONEY,
        "MRR of customers who started paying this month for the first time.",
        _movement_part("new")),
    Kpi("mrr_expansion", "Expansion MRR (month to date)", KpiUnit.MONEY,
        "MRR added this month by customers who already paid (upgrades, more seats).",
        _movement_part("expansion")),
    Kpi("mrr_contraction", "Contraction MRR (month to date)", KpiUnit.MONEY,
        "MRR lost this month by customers who still pay (downgrades, fewer seats).",
        _movement_part("contraction")),
    Kpi("mrr_churn", "Churned MRR (month to date)", KpiUnit.MONEY,
        "MRR of customers who paid at the start of the month and pay nothing now.",
        _movement_part("churn")),
    Kpi("mrr_reactivation", "Reactivation MRR (month to date)", KpiUnit.MONEY,
        "MRR of customers who had cancelled before this month and pay again.",
        _movement_part("reactivation")),
    Kpi("customer_churn_rate", "Customer churn (month to date)", KpiUnit.PERCENT,
        "Paying customers at the start of the month who pay nothing now / those at the start "
        "x 100.", kpi_customer_churn_rate),
    Kpi("mrr_churn_rate", "MRR churn (month to date)", KpiUnit.PERCENT,
        "Churned and contracted MRR this month / MRR at the start of the month x 100.",
        kpi_mrr_churn_rate),
    Kpi("nrr", "Net revenue retention", KpiUnit.PERCENT,
        "Today's MRR of the customers who paid 12 months ago / their MRR then x 100.", kpi_nrr),
    Kpi("payment_success_rate", "Payment success rate (30 days)", KpiUnit.PERCENT,
        "Processor charges that succeeded / charges attempted in the last 30 days x 100.",
        _days(kpi_payment_success_rate, 30)),
    Kpi("avg_days_to_pay", "Average days to pay (90 days)", KpiUnit.DAYS,
        "Average days from issue to last payment of invoices paid in full in the last 90 days.",
        _days(kpi_average_days_to_pay, 90)),
    Kpi("open_reconciliation_exceptions", "Open reconciliation exceptions", KpiUnit.COUNT,
        "Reconciliation exceptions detected and not yet resolved.",
        kpi_open_reconciliation_exceptions),
    Kpi("approvals_waiting", "Approvals waiting", KpiUnit.COUNT,
        "Purchase orders, bills, payment runs and expense reports waiting for an approver.",
        kpi_approvals_waiting),
]  # fmt: skip

KPIS: dict[str, Kpi] = {k.code: k for k in _DEFINITIONS}


@dataclass(frozen=True, slots=True)
class KpiValue:
    kpi: Kpi
    currency: str
    value: Decimal


def kpi_values(*, as_of: date, codes: Iterable[str] | None = None) -> list[KpiValue]:
    """Every KPI (or those of ``codes``) as of the date, one row per currency."""
    chosen = [KPIS[c] for c in codes] if codes is not None else list(KPIS.values())
    with shared_reads():
        return [
            KpiValue(kpi, currency, value.quantize(STORED, rounding=ROUND_HALF_UP))
            for kpi in chosen
            for currency, value in sorted(kpi.value(as_of=as_of).items())
        ]


# --- Snapshots (the one write of this app: its own history table) ---------------------------


def kpi_snapshot_take(*, as_of: date, codes: Iterable[str] | None = None) -> int:
    """Store every KPI's value as of ``as_of``, once: rows already stored for that day are
    kept as they are (INSERT ... ON CONFLICT DO NOTHING), so a rerun adds and replaces
    nothing. Returns how many rows were new."""
    from reporting.models import KpiSnapshot

    values = kpi_values(as_of=as_of, codes=codes)
    before = KpiSnapshot.objects.filter(date=as_of).count()
    KpiSnapshot.objects.bulk_create(
        [
            KpiSnapshot(date=as_of, kpi=v.kpi.code, currency=v.currency, value=v.value)
            for v in values
        ],
        ignore_conflicts=True,
    )
    return KpiSnapshot.objects.filter(date=as_of).count() - before


def kpi_snapshot_list(
    *, date_from: date, date_to: date, codes: Iterable[str] | None = None
) -> QuerySet[Any]:
    """Stored snapshots in the period (both days included), oldest first, then by KPI."""
    from reporting.models import KpiSnapshot

    qs = KpiSnapshot.objects.filter(date__gte=date_from, date__lte=date_to)
    if codes is not None:
        qs = qs.filter(kpi__in=list(codes))
    return qs.order_by("date", "kpi", "currency", "pk")
