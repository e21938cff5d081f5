"""The 13-week cash-flow projection: expected receipts and disbursements per week, per currency,
from the cash on hand at the end of ``as_of``, with P10/P50/P90 bands of the closing cash.

Reads only (billing, receivables and payables models and the ledger's selectors); no currency
is ever converted: each currency is projected on its own.

Receipts
- Open AR at ``as_of``: each invoice's amount still due then (the aging's,
  ``receivables_open``), expected on its due date plus the customer's own days late. Days late of a
  paid invoice = the received date of the payment that completed it - its due date (negative:
  early). A customer with fewer than ``MIN_OWN_HISTORY`` (3) invoices paid by ``as_of`` uses
  the portfolio's (every customer's paid invoices): three is the fewest with a median that is
  not an average of two outliers. An invoice already past due is expected only at the days late
  the history shows beyond what has elapsed (a conditional distribution); when no history goes
  that far it is expected on the first day of the projection (those overdue beyond every
  customer's history are summed by the database into one such receipt). Today's timing is
  read from the materialized view the hourly task refreshes (``payment_timing``).
- Subscriptions: every period ending within the horizon is billed at its end (the billing run
  bills a period once it has ended), licensed prices plus the customer's tax, due after the
  customer's terms, collected with the customer's timing. Metered usage and pending proration
  items are not projected (unknown until billed). A period starting in the trial bills nothing;
  ``cancel_at_period_end`` bills the current period only.
- Payment plans: the unpaid installments of active plans on their due dates (an overdue one on
  the first day); the invoices a plan covers are left out of open AR so nothing counts twice.

Disbursements
- Payment runs not yet paid: each item on the run's payment date.
- Approved bills in no live run: the amount due on the due date, or the amount less the
  early-payment discount on the discount date when the run policy takes it (the discount is
  still open and its annualised rate beats ``PAYABLES_DISCOUNT_MIN_ANNUAL_RATE``, as payment
  runs decide); an overdue bill on the first day.
- Approved expense reports in no live run: on the first day (the next run reimburses them).

Week ``k`` (1-based) covers ``as_of + 7(k-1) + 1`` .. ``as_of + 7k``. The point estimate puts each
receipt at due date + the median days late (the lower median, so a whole day). The bands come
from a seeded Monte Carlo (``random.Random(seed)``, ``SIMULATIONS`` runs): each receipt draws
its days late from its customer's empirical distribution, the closing cash of every week is
recorded, and the nearest-rank 10th, 50th and 90th percentiles are reported. A simulation, not
per-receipt quantiles, because the P10 of a sum is not the sum of P10s: adding every receipt at
its own 10th percentile would make the band far too wide. The seed makes the figures
reproducible; integer units of 0.0001 keep every sum exact, converted to Decimal at the end.
With more uncertain receipts x runs than ``MAX_SIMULATED_DRAWS`` the bands are instead the
normal distribution with each week's exact mean and variance (``_normal_bands``).
Disbursements are our own decisions and are not simulated.
"""

from __future__ import annotations

import gc
import math
import random
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from itertools import accumulate, chain, repeat
from statistics import NormalDist
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.utils import timezone

from billing.enums import InvoiceStatus, PaymentStatus
from billing.models import (
    Customer,
    Invoice,
    Payment,
    PaymentAllocation,
    Subscription,
    SubscriptionItem,
    TaxRate,
)
from billing.models.subscriptions import BILLABLE
from billing.pricing import period_end, price_amount
from billing.tax import customer_tax_rate, line_amounts
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import accounts_balances, accounts_daily_movements
from core.money import round_money
from core.system_settings import system_settings
from payables.enums import BillStatus, ExpenseReportStatus, PaymentRunStatus
from payables.models import Bill, ExpenseReport, PaymentRun, PaymentRunItem
from payables.selectors import discount_pays_off
from receivables.models_plans import (
    InstallmentStatus,
    PaymentPlan,
    PaymentPlanInvoice,
    PaymentPlanStatus,
)
from receivables.selectors import receivables_open
from reporting.kpis import day_start, open_receivables_by_due

ZERO = Decimal(0)
# Fewer paid invoices than this and a customer is judged by the portfolio's timing.
MIN_OWN_HISTORY = 3
SIMULATIONS = 500
SIMULATION = "simulation"
NORMAL = "normal"
# More uncertain receipts x runs than this and the bands come from the receipts' exact means
# and variances (``_normal_bands``) instead: a simulation that size takes seconds.
MAX_SIMULATED_DRAWS = 1_000_000
# The customers' payment timing kept by the database (migration reporting 0006), and how old
# it may be to stand for today's.
TIMING_VIEW = "reporting_payment_timing"
TIMING_MAX_AGE = timedelta(hours=2)
DEFAULT_SEED = 13
# Accounts whose balance is cash: the bank and money on its way from the processors.
CASH_ROLES = (AccountRole.CASH, AccountRole.PROCESSOR_CLEARING)
UNIT = Decimal("0.0001")
_SCALE = 10_000
_LIVE_RUN = (
    PaymentRunStatus.DRAFT,
    PaymentRunStatus.PENDING_APPROVAL,
    PaymentRunStatus.APPROVED,
    PaymentRunStatus.EXPORTED,
)
_RECEIVED = (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
_CLOSED_UNPAID = (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)


@dataclass(frozen=True, slots=True)
class ProjectionWeek:
    week: int
    start_date: date
    end_date: date
    receipts: Decimal
    disbursements: Decimal
    net: Decimal
    # Point estimate: the opening cash plus every week's net so far.
    closing_cash: Decimal
    p10_closing_cash: Decimal
    p50_closing_cash: Decimal
    p90_closing_cash: Decimal


@dataclass(frozen=True, slots=True)
class CashFlowProjection:
    currency: str
    as_of: date
    opening_cash: Decimal
    weeks: tuple[ProjectionWeek, ...]
    simulations: int
    seed: int
    # How the bands were found: SIMULATION (``simulations`` seeded runs) or NORMAL.
    bands: str = SIMULATION


@dataclass(frozen=True, slots=True)
class DaysLate:
    """A distribution of days late, every paid invoice equally likely: its distinct ``days``
    (ascending) and, for each, how many invoices had it or fewer (``cumulative``). Kept as
    counts, not one entry per invoice: the portfolio's covers every invoice ever paid."""

    days: tuple[int, ...] = ()
    cumulative: tuple[int, ...] = ()

    @classmethod
    def of(cls, values: Iterable[int]) -> DaysLate:
        """The distribution of ``values`` (one per invoice)."""
        counted = sorted(Counter(values).items())
        return cls.counted([d for d, _ in counted], [n for _, n in counted])

    @classmethod
    def counted(cls, days: Sequence[int], counts: Sequence[int]) -> DaysLate:
        """From distinct ascending ``days`` and how many invoices had each."""
        return cls(tuple(days), tuple(accumulate(counts)))

    def __len__(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    @property
    def first(self) -> int:
        return self.days[0]

    @property
    def last(self) -> int:
        return self.days[-1]

    def median(self) -> int:
        """The lower median (a whole day)."""
        return self.days[bisect_right(self.cumulative, (len(self) - 1) // 2)]

    def below(self, day: int) -> int:
        """How many invoices were paid fewer than ``day`` days late."""
        index = bisect_left(self.days, day)
        return self.cumulative[index - 1] if index else 0

    def after(self, elapsed: int) -> DaysLate:
        """The days late beyond ``elapsed`` (the distribution given that much has passed)."""
        index = bisect_right(self.days, elapsed)
        base = self.cumulative[index - 1] if index else 0
        return DaysLate(self.days[index:], tuple(c - base for c in self.cumulative[index:]))

    def expanded(self) -> tuple[int, ...]:
        """One entry per invoice, ascending."""
        previous = 0
        values: list[int] = []
        for day, upto in zip(self.days, self.cumulative, strict=True):
            values.extend(repeat(day, upto - previous))
            previous = upto
        return tuple(values)


@dataclass(frozen=True, slots=True)
class CashEvent:
    """One expected movement: ``amount`` (positive in, negative out) on ``on_date``, or, for a
    receipt with uncertain timing, on ``on_date`` + days late drawn from ``days_late``."""

    kind: str
    on_date: date
    amount: Decimal
    # Receipts of one customer share it (``PaymentTiming.remaining``).
    days_late: DaysLate = DaysLate()
    reference: str = ""
    # When it stands for several receipts due the same day with the same timing (the open
    # invoices of customers judged by the portfolio's, or of one customer): each one's amount,
    # adding up to ``amount``; each draws its days late on its own. Empty: one receipt.
    parts: tuple[Decimal, ...] = ()

    @property
    def receipts(self) -> tuple[Decimal, ...]:
        """The amount of every receipt it stands for."""
        return self.parts or (self.amount,)

    @property
    def expected_date(self) -> date:
        if not self.days_late:
            return self.on_date
        return self.on_date + timedelta(days=self.days_late.median())


@dataclass(slots=True)
class PaymentTiming:
    """Days late of paid invoices: per customer, and the whole portfolio's."""

    by_customer: dict[int, DaysLate] = field(default_factory=dict)
    portfolio: DaysLate = DaysLate()
    # (id of a history, days already elapsed) -> the days late still possible: one
    # distribution per pair, shared by every receipt with it.
    _remaining: dict[tuple[int, int], DaysLate] = field(default_factory=dict)

    def for_customer(self, customer_id: int) -> DaysLate:
        own = self.by_customer.get(customer_id)
        return own if own is not None and len(own) >= MIN_OWN_HISTORY else self.portfolio

    def remaining(self, history: DaysLate, elapsed: int) -> DaysLate:
        """The days late of ``history`` (one of this timing's) beyond ``elapsed``."""
        if not history.days or elapsed < history.days[0]:
            return history
        key = (id(history), elapsed)
        found = self._remaining.get(key)
        if found is None:
            found = self._remaining[key] = history.after(elapsed)
        return found


def payment_timing(*, as_of: date) -> PaymentTiming:
    """Days late of every invoice fully paid by payments received on or before ``as_of``.

    For today on PostgreSQL, read from the materialized view ``reporting_payment_timing``
    when it was refreshed within ``TIMING_MAX_AGE`` (hourly, by
    ``reporting.payment_timing_refresh``): a customer's habit, not a figure, and computing it
    means aggregating every payment allocation ever made. Otherwise computed here."""
    stored = _stored_timing(as_of)
    return stored if stored is not None else _computed_timing(as_of)


def _stored_timing(as_of: date) -> PaymentTiming | None:
    if connection.vendor != "postgresql" or as_of != timezone.localdate():
        return None
    with connection.cursor() as cursor:
        if not _timing_view_populated(cursor):
            return None
        # Its age first, once (row 0, the portfolio's, is always there), then the histories.
        cursor.execute(f"SELECT refreshed_at FROM {TIMING_VIEW} WHERE customer_id = 0")  # noqa: S608  # nosec B608  # a constant view name
        (refreshed_at,) = cursor.fetchone()
        if refreshed_at < timezone.now() - TIMING_MAX_AGE:
            return None
        cursor.execute(f"SELECT customer_id, days, counts FROM {TIMING_VIEW}")  # noqa: S608  # nosec B608  # a constant view name
        return _timing_of(cursor.fetchall())


def _timing_of(rows: Iterable[tuple[int, Sequence[int], Sequence[int]]]) -> PaymentTiming:
    """The timing of (customer id, distinct days, counts) rows, row 0 the portfolio's. Equal
    histories are one object: receipts due the same day with the same history (whoever's)
    are then one event, and what is worked out for a history is worked out once."""
    timing = PaymentTiming()
    seen: dict[tuple[tuple[int, ...], tuple[int, ...]], DaysLate] = {}
    for customer_id, days, counts in rows:
        key = (tuple(days), tuple(counts))
        history = seen.get(key)
        if history is None:
            history = seen[key] = DaysLate.counted(*key)
        if customer_id == 0:
            timing.portfolio = history
        else:
            timing.by_customer[customer_id] = history
    return timing


def payment_timing_refresh() -> None:
    """Refresh ``reporting_payment_timing`` (PostgreSQL; nothing to do on SQLite). Readers
    are not blocked: after the first time it is refreshed CONCURRENTLY."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        concurrently = "CONCURRENTLY " if _timing_view_populated(cursor) else ""
        cursor.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{TIMING_VIEW}")


def _timing_view_populated(cursor: Any) -> bool:
    """Whether the view has been refreshed at least once (it is made empty)."""
    cursor.execute("SELECT ispopulated FROM pg_matviews WHERE matviewname = %s", [TIMING_VIEW])
    row = cursor.fetchone()
    return bool(row and row[0])


# The view's definition (migration reporting 0006) for any day: per customer, and as row 0
# the portfolio's, the distinct days late with how many invoices each.
_TIMING_SQL = """
WITH late AS (
    SELECT inv.customer_id, paid.last - inv.due_date AS days
      FROM (SELECT a.invoice_id, sum(a.amount) AS amount, max(p.received_date) AS last
              FROM {allocation} a
              JOIN {payment} p ON p.id = a.payment_id
             WHERE p.status = ANY(%s) AND p.received_date <= %s
             GROUP BY a.invoice_id) AS paid
      JOIN {invoice} inv ON inv.id = paid.invoice_id
     WHERE inv.due_date IS NOT NULL
       AND paid.amount >= inv.total - inv.amount_credited
), counted AS (
    SELECT customer_id, days, count(*)::integer AS n FROM late GROUP BY customer_id, days
)
SELECT customer_id, array_agg(days ORDER BY days), array_agg(n ORDER BY days)
  FROM counted
 GROUP BY customer_id
UNION ALL
SELECT 0,
       coalesce(array_agg(days ORDER BY days), '{{}}'),
       coalesce(array_agg(n ORDER BY days), '{{}}')
  FROM (SELECT days, sum(n)::integer AS n FROM counted GROUP BY days) AS portfolio
"""


def _computed_timing(as_of: date) -> PaymentTiming:
    """The timing of ``as_of`` from the payments: on PostgreSQL counted by the database as
    the view counts it (a past day's dashboard would otherwise bring every paid invoice into
    Python), on SQLite here."""
    if connection.vendor != "postgresql":
        return _computed_timing_here(as_of)
    sql = _TIMING_SQL.format(
        allocation=PaymentAllocation._meta.db_table,
        payment=Payment._meta.db_table,
        invoice=Invoice._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[str(status) for status in _RECEIVED], as_of])
        return _timing_of(cursor.fetchall())


def _computed_timing_here(as_of: date) -> PaymentTiming:
    rows = (
        PaymentAllocation.objects.filter(
            payment__status__in=_RECEIVED,
            payment__received_date__lte=as_of,
            invoice__due_date__isnull=False,
        )
        .values("invoice_id")
        .annotate(paid=Sum("amount"), last=Max("payment__received_date"))
        .values_list(
            "invoice__customer_id",
            "invoice__due_date",
            "invoice__total",
            "invoice__amount_credited",
            "paid",
            "last",
        )
        .order_by("invoice_id")
    )
    by_customer: dict[int, list[int]] = defaultdict(list)
    for customer_id, due, total, credited, paid, last in rows:
        if paid >= total - credited:
            by_customer[customer_id].append((last - due).days)
    return PaymentTiming(
        by_customer={c: DaysLate.of(days) for c, days in by_customer.items()},
        portfolio=DaysLate.of(chain.from_iterable(by_customer.values())),
    )


def _receipt(
    kind: str,
    due: date,
    amount: Decimal,
    history: DaysLate,
    as_of: date,
    ref: str,
    timing: PaymentTiming,
    parts: tuple[Decimal, ...] = (),
) -> CashEvent:
    """A receipt due on ``due`` (or several: ``parts``), not received by ``as_of``: only the
    days late beyond those already elapsed remain possible; none left (or no history at all),
    the first day."""
    first_day = as_of + timedelta(days=1)
    possible = timing.remaining(history, (as_of - due).days)
    if not possible:
        return CashEvent(kind, max(due, first_day), amount, reference=ref, parts=parts)
    return CashEvent(kind, due, amount, days_late=possible, reference=ref, parts=parts)


def _plans_live(as_of: date, currency: str | None) -> QuerySet[PaymentPlan]:
    """The plans (of ``currency``, or all) active at the end of ``as_of``."""
    plans = PaymentPlan.objects.filter(created_at__lt=day_start(as_of + timedelta(days=1)))
    if currency:
        plans = plans.filter(currency=currency)
    return plans.filter(Q(status=PaymentPlanStatus.ACTIVE) | Q(closed_at__gte=day_start(as_of)))


def _planned_invoices(as_of: date, currency: str | None) -> QuerySet[PaymentPlanInvoice, Any]:
    """The ids of the invoices a plan live at ``as_of`` covers."""
    return PaymentPlanInvoice.objects.filter(plan__in=_plans_live(as_of, currency)).values(
        "invoice_id"
    )


def _open_receivables(as_of: date, currency: str | None) -> QuerySet[Invoice]:
    """The invoices with something due at the end of ``as_of`` (``due_as_of``), less those
    a live payment plan covers (its installments are projected instead)."""
    return (
        receivables_open(as_of=as_of, currency=currency)
        .exclude(pk__in=_planned_invoices(as_of, currency))
        .select_related(None)
        .order_by()
    )


def overdue_beyond_timing(
    *, as_of: date, timing: PaymentTiming, currency: str | None = None
) -> dict[str, tuple[Decimal, int]]:
    """Per currency of the open AR at the end of ``as_of`` (every one a key): the amount and
    number of invoices overdue by at least the most days late any customer's timing holds.
    Every draw puts those on the first day, so they are one receipt. Added up from the open
    AR per due date (``open_receivables_by_due``: on the dashboard, the AR panel's own read;
    on a large book most open invoices are long overdue), less the invoices a live payment
    plan covers (their installments are projected instead)."""
    cutoff = as_of - timedelta(days=_latest_day_late(timing))
    found: dict[str, list[Any]] = {}
    for cur, due, amount, n in open_receivables_by_due(as_of=as_of):
        if currency and cur != currency:
            continue
        # [amount beyond, invoices beyond, open invoices]
        figures = found.setdefault(cur, [ZERO, 0, 0])
        figures[2] += n
        if due <= cutoff:
            figures[0] += amount
            figures[1] += n
    beyond = Q(due_date__lte=cutoff)
    # A few invoices at most (plans are rare): by id, so a past day's rebuild of the open
    # invoices (``receivables_open``) looks at those only.
    planned_ids = list(_planned_invoices(as_of, currency).values_list("invoice_id", flat=True))
    planned = (
        receivables_open(as_of=as_of, currency=currency)
        .filter(pk__in=planned_ids)
        .select_related(None)
        .order_by()
        .values("currency")
        .annotate(s=Sum("due_as_of", filter=beyond), n=Count("pk", filter=beyond), all=Count("pk"))
        .values_list("currency", "s", "n", "all")
    )
    for cur, amount, n, every in planned if planned_ids else ():
        figures = found[cur]
        figures[0] -= amount or ZERO
        figures[1] -= n
        figures[2] -= every
    return {cur: (amount, n) for cur, (amount, n, every) in found.items() if every > 0}


def receivables_within_timing(
    *, as_of: date, timing: PaymentTiming, currency: str | None = None
) -> dict[str, list[tuple[int, date, Decimal, int]]]:
    """Per currency, the open invoices (customer, due date, amount due, id) not overdue
    beyond every timing (``overdue_beyond_timing`` has the others), in due date order: one
    read for every currency, from the open-items index."""
    rows = (
        _open_receivables(as_of, currency)
        .filter(due_date__gt=as_of - timedelta(days=_latest_day_late(timing)))
        .order_by("due_date", "pk")
        .values_list("currency", "customer_id", "due_date", F("due_as_of"), "pk")
    )
    found: dict[str, list[tuple[int, date, Decimal, int]]] = defaultdict(list)
    for cur, customer_id, due, amount, pk in rows:
        found[cur].append((customer_id, due, amount, pk))
    return found


def receivable_events(
    *,
    as_of: date,
    currency: str,
    timing: PaymentTiming | None = None,
    overdue: dict[str, tuple[Decimal, int]] | None = None,
    within: dict[str, list[tuple[int, date, Decimal, int]]] | None = None,
) -> list[CashEvent]:
    """Expected receipts of the AR open at the end of ``as_of`` (each invoice's amount due
    then, as the aging has it), each with its customer's timing; the invoices due the same day
    with the same timing as one event of several receipts (``CashEvent.parts``: the customers
    judged by the portfolio's timing share it); the invoices overdue beyond every timing as one
    receipt on the first day. ``overdue`` (``overdue_beyond_timing``) and
    ``within`` (``receivables_within_timing``) are read once for all currencies by the
    caller; without them, here for ``currency``."""
    timing = timing or payment_timing(as_of=as_of)
    if overdue is None:
        overdue = overdue_beyond_timing(as_of=as_of, timing=timing, currency=currency)
    if within is None:
        within = receivables_within_timing(as_of=as_of, timing=timing, currency=currency)
    events = []
    amount, count = overdue.get(currency, (ZERO, 0))
    if count:
        events.append(
            CashEvent(
                "invoice",
                as_of + timedelta(days=1),
                amount,
                reference=f"{count} invoices overdue beyond every customer's timing",
            )
        )
    # (id of the timing, due date) -> [timing, amounts, invoice ids], in due date order
    groups: dict[tuple[int, date], tuple[DaysLate, list[Decimal], list[int]]] = {}
    for customer_id, due, open_amount, pk in within.get(currency, ()):
        history = timing.for_customer(customer_id)
        group = groups.get((id(history), due))
        if group is None:
            group = groups[(id(history), due)] = (history, [], [])
        group[1].append(open_amount)
        group[2].append(pk)
    for (_, due), (history, amounts, ids) in groups.items():
        parts: tuple[Decimal, ...] = ()
        if len(ids) == 1:
            ref = f"invoice id {ids[0]}"
        else:
            ref, parts = f"{len(ids)} invoices due {due.isoformat()}", tuple(amounts)
        amount = sum(amounts, ZERO)
        events.append(_receipt("invoice", due, amount, history, as_of, ref, timing, parts))
    return events


def _latest_day_late(timing: PaymentTiming) -> int:
    """The most days late any customer's timing holds (0 at least: an invoice not yet due
    is never past every possibility)."""
    own = [days.last for days in timing.by_customer.values() if len(days) >= MIN_OWN_HISTORY]
    return max([0, *own, *([timing.portfolio.last] if timing.portfolio else [])])


def installment_events(*, as_of: date, currency: str) -> list[CashEvent]:
    """Unpaid installments of the plans active at ``as_of``, on their due dates. Today, what
    the plan received beyond its paid installments is taken off the next ones (a plan is paid
    in sequence order)."""
    first_day = as_of + timedelta(days=1)
    live = as_of >= timezone.localdate()
    plans = _plans_live(as_of, currency).prefetch_related("installments").order_by("pk")
    events = []
    for plan in plans:
        installments = sorted(plan.installments.all(), key=lambda i: i.sequence)
        paid = InstallmentStatus.PAID
        credit = plan.amount_paid.amount - sum(
            (i.amount.amount for i in installments if i.status == paid), ZERO
        )
        for inst in installments:
            unpaid = inst.status in (InstallmentStatus.SCHEDULED, InstallmentStatus.OVERDUE)
            paid_later = (
                inst.status == paid and inst.paid_date is not None and (inst.paid_date > as_of)
            )
            if not (unpaid or paid_later):
                continue
            amount = inst.amount.amount
            if live and credit > 0:
                taken = min(credit, amount)
                amount -= taken
                credit -= taken
            if amount > 0:
                events.append(
                    CashEvent(
                        "installment",
                        max(inst.due_date, first_day),
                        amount,
                        reference=f"plan {plan.pk} installment {inst.sequence}",
                    )
                )
    return events


def _last_billed_ends(subs: Sequence[Subscription], as_of: date) -> dict[int, date] | None:
    """For a past ``as_of``: the end of each subscription's last period invoiced by then (its
    own pointer has moved on since). None for today or later: the pointer is right."""
    if as_of >= timezone.localdate():
        return None
    return dict(
        Invoice.objects.filter(
            subscription__in=subs, issue_date__lte=as_of, period_end__isnull=False
        )
        .exclude(status=InvoiceStatus.DRAFT)
        .values("subscription_id")
        .annotate(m=Max("period_end"))
        .values_list("subscription_id", "m")
        .order_by()
    )


def _subscription_gross(
    sub: Subscription, items: Sequence[SubscriptionItem], rate: Decimal
) -> Decimal:
    """What one full period invoices for the licensed items, tax included, as billing rounds it."""
    gross = ZERO
    for item in items:
        price = item.price
        if price.is_metered:
            continue
        amount = price_amount(
            type=price.type,
            quantity=item.quantity,
            unit_amount=price.unit_amount,
            package_size=price.package_size,
            tiers=price.tiers,
        )
        gross += line_amounts(
            quantity=Decimal(1),
            unit_price=amount,
            tax_rate=rate,
            currency=sub.currency,
            tax_inclusive=price.tax_inclusive,
        ).gross
    return gross


def customer_tax_rates(customers: Iterable[Customer]) -> dict[int, Decimal]:
    """Each customer's default tax rate, as billing gives it to a subscription's lines."""
    customers = list(customers)
    jurisdictions = {c.tax_jurisdiction for c in customers if c.tax_jurisdiction}
    rates = dict(
        TaxRate.objects.filter(jurisdiction__in=jurisdictions).values_list("jurisdiction", "rate")
    )
    return {
        c.pk: customer_tax_rate(
            tax_exempt=c.tax_exempt,
            reverse_charge=c.reverse_charge,
            jurisdiction_rate=rates.get(c.tax_jurisdiction) if c.tax_jurisdiction else None,
        )
        for c in customers
    }


def subscription_events(
    *, as_of: date, currency: str, until: date, timing: PaymentTiming | None = None
) -> list[CashEvent]:
    """Receipts of the subscription periods billed after ``as_of`` and by ``until``."""
    timing = timing or payment_timing(as_of=as_of)
    first_day = as_of + timedelta(days=1)
    subs = list(
        Subscription.objects.filter(
            currency=currency,
            status__in=BILLABLE,
            started_on__lte=until,
            created_at__lt=day_start(first_day),
        )
        .select_related("customer")
        .prefetch_related("items__price")
        .order_by("pk")
    )
    rates = customer_tax_rates({s.customer for s in subs})
    last_ends = _last_billed_ends(subs, as_of)
    default_terms = system_settings().billing.payment_terms
    events = []
    for sub in subs:
        items = list(sub.items.all())
        gross = _subscription_gross(sub, items, rates[sub.customer_id])
        terms = sub.customer.payment_terms
        terms = default_terms if terms is None else terms
        start = (
            sub.current_period_start if last_ends is None else last_ends.get(sub.pk, sub.started_on)
        )
        while True:
            if start == sub.current_period_start:
                end = sub.current_period_end  # a trial is a period of its own
            else:
                end = period_end(start, sub.interval, sub.anchor_day)
            billed_on = max(end, first_day)
            if billed_on > until:
                break
            in_trial = sub.trial_end is not None and start < sub.trial_end
            if gross > 0 and not in_trial:
                due = billed_on + timedelta(days=terms)
                events.append(
                    _receipt(
                        "subscription",
                        due,
                        gross,
                        timing.for_customer(sub.customer_id),
                        as_of,
                        f"subscription {sub.pk} {start.isoformat()}",
                        timing,
                    )
                )
            if sub.cancel_at_period_end:
                break
            start = end
    return events


def payable_events(*, as_of: date, currency: str) -> list[CashEvent]:
    """Disbursements: live payment runs on their payment dates, approved bills in none on
    their due (or discount) dates, approved expense reports in none on the first day."""
    first_day = as_of + timedelta(days=1)
    next_day = day_start(first_day)
    runs = PaymentRun.objects.filter(currency=currency, created_at__lt=next_day).filter(
        Q(status__in=_LIVE_RUN)
        | Q(status=PaymentRunStatus.PAID, payment_date__gt=as_of)
        | Q(status=PaymentRunStatus.CANCELLED, cancelled_at__gte=next_day)
    )
    events: list[CashEvent] = []
    in_runs: dict[int, Decimal] = defaultdict(Decimal)
    reports_in_runs: set[int] = set()
    items = (
        PaymentRunItem.objects.filter(run__in=runs)
        .select_related("run")
        .order_by("run__payment_date", "pk")
    )
    for item in items:
        events.append(
            CashEvent(
                "payment_run",
                max(item.run.payment_date, first_day),
                -item.amount.amount,
                reference=item.run.number,
            )
        )
        if item.bill_id is not None:
            in_runs[item.bill_id] += item.amount.amount + item.discount.amount
        if item.expense_report_id is not None:
            reports_in_runs.add(item.expense_report_id)
    settled = dict(
        PaymentRunItem.objects.filter(
            run__status=PaymentRunStatus.PAID, run__payment_date__lte=as_of, bill__isnull=False
        )
        .values("bill_id")
        .annotate(s=Sum("amount") + Sum("discount"))
        .values_list("bill_id", "s")
        .order_by()
    )
    bills = (
        Bill.objects.filter(
            currency=currency,
            status__in=(BillStatus.APPROVED, BillStatus.SCHEDULED, BillStatus.PAID),
            approved_at__lt=next_day,
        )
        .filter(Q(paid_at__isnull=True) | Q(paid_at__gte=day_start(as_of)))
        .select_related("vendor")
        .order_by("due_date", "pk")
    )
    policy: dict[int, bool] = {}
    for bill in bills:
        paid = settled.get(bill.pk, ZERO)
        due = bill.total.amount - paid - in_runs.get(bill.pk, ZERO)
        if due <= 0:
            continue
        if bill.vendor_id not in policy:
            policy[bill.vendor_id] = discount_pays_off(bill.vendor)
        discount = bill.discount_amount.amount
        if (
            bill.discount_date is not None
            and bill.discount_date >= first_day
            and discount > 0
            and paid == 0
            and bill.pk not in in_runs
            and policy[bill.vendor_id]
        ):
            events.append(
                CashEvent("bill", bill.discount_date, -(due - discount), reference=str(bill))
            )
        else:
            events.append(
                CashEvent("bill", max(bill.due_date, first_day), -due, reference=str(bill))
            )
    reports = ExpenseReport.objects.filter(currency=currency, approved_at__lt=next_day).filter(
        Q(status=ExpenseReportStatus.APPROVED)
        | Q(status=ExpenseReportStatus.REIMBURSED, reimbursed_at__gte=next_day)
    )
    for report in reports.exclude(pk__in=reports_in_runs).order_by("pk"):
        if report.amount_due > 0:
            events.append(
                CashEvent("expense_report", first_day, -report.amount_due, reference=report.number)
            )
    return events


def _cash_accounts() -> list[int]:
    return list(Account.objects.filter(role__in=CASH_ROLES).values_list("pk", flat=True))


def cash_position(*, as_of: date, currency: str) -> Decimal:
    """Cash at the end of ``as_of``: the ledger balance of the bank and processor-clearing
    accounts in ``currency``."""
    balances = accounts_balances(account_ids=_cash_accounts(), as_of=as_of)
    return sum((b.balance for (_, cur), b in balances.items() if cur == currency), ZERO)


def cash_movements(*, currency: str, date_from: date, date_to: date) -> dict[date, Decimal]:
    """What really came in and went out of cash per day (debits - credits of the cash
    accounts), for the back-test."""
    moved = accounts_daily_movements(
        account_ids=_cash_accounts(), date_from=date_from, date_to=date_to
    )
    return {day: b.balance for (cur, day), b in moved.items() if cur == currency}


def projection_currencies(*, as_of: date, receivables: Iterable[str] | None = None) -> list[str]:
    """Currencies with cash, open invoices (``receivables``: their currencies, when the
    caller has them), live subscriptions or open bills."""
    found = {cur for _, cur in accounts_balances(account_ids=_cash_accounts(), as_of=as_of)}
    documents: list[QuerySet[Any]] = [
        Subscription.objects.filter(status__in=BILLABLE),
        Bill.objects.filter(status__in=(BillStatus.APPROVED, BillStatus.SCHEDULED)),
    ]
    if receivables is None:
        documents.append(Invoice.objects.filter(status=InvoiceStatus.OPEN))
    else:
        found |= set(receivables)
    for qs in documents:
        # Distinct in the database: a large book has hundreds of thousands of open invoices.
        found |= set(qs.order_by().values_list("currency", flat=True).distinct())
    return sorted(found)


def projection_events(
    *,
    as_of: date,
    currency: str,
    until: date,
    timing: PaymentTiming | None = None,
    overdue: dict[str, tuple[Decimal, int]] | None = None,
    within: dict[str, list[tuple[int, date, Decimal, int]]] | None = None,
) -> list[CashEvent]:
    """Every expected receipt and payment of ``currency`` (``timing``: the customers' payment
    history, ``overdue`` and ``within``: the open AR, read once for all currencies by the
    caller)."""
    timing = timing or payment_timing(as_of=as_of)
    return [
        *receivable_events(
            as_of=as_of, currency=currency, timing=timing, overdue=overdue, within=within
        ),
        *subscription_events(as_of=as_of, currency=currency, until=until, timing=timing),
        *installment_events(as_of=as_of, currency=currency),
        *payable_events(as_of=as_of, currency=currency),
    ]


def _units(amount: Decimal) -> int:
    return int((amount / UNIT).to_integral_value())


def _decimal(units: int, currency: str) -> Decimal:
    return round_money(Decimal(units) * UNIT, currency)


def _quantile(ordered: Sequence[int], p: Decimal) -> int:
    """Nearest rank: the smallest value with at least ``p`` of the values at or below it."""
    rank = max(1, math.ceil(p * len(ordered)))
    return ordered[rank - 1]


def _edges(days_late: DaysLate, base: int, weeks: int) -> tuple[int, ...]:
    """For a receipt ``base`` days after the first day: how many of ``days_late`` (every
    invoice equally likely) land before the first day of each week k = 0..``weeks`` (the last
    one: before the horizon's end). Found by bisection, so the portfolio's history costs no
    more than a customer's own."""
    days, cumulative = days_late.days, days_late.cumulative
    first, last, count = days[0], days[-1], cumulative[-1]
    edges = []
    for k in range(weeks + 1):
        limit = 7 * k - base
        if limit <= first:
            edges.append(0)
        elif limit > last:
            edges.append(count)
        else:
            edges.append(cumulative[bisect_left(days, limit) - 1])
    return tuple(edges)


# The receipt lands in more than one place (before, a week, after): its week is drawn.
_DRAWN = -2


def _placed(edges: tuple[int, ...], count: int) -> int | None:
    """Where every one of ``count`` days late lands, given its ``edges``: a week's index, None
    (none within the weeks: before the first day or after the horizon), or ``_DRAWN`` when
    they land in more than one of those places."""
    if edges[0] == edges[-1]:
        return None
    for k in range(len(edges) - 1):
        if edges[k + 1] - edges[k] == count:
            return k
    return _DRAWN


def _spread(edges: tuple[int, ...], count: int) -> tuple[list[int | None], list[int]]:
    """The weeks a receipt with ``edges`` can land in (None: before or after them) and how
    many of its ``count`` days late land in each, cumulated: what a draw chooses from."""
    slots: list[int | None] = []
    cumulative: list[int] = []

    def add(where: int | None, upto: int) -> None:
        if upto > (cumulative[-1] if cumulative else 0):
            slots.append(where)
            cumulative.append(upto)

    add(None, edges[0])
    for k in range(len(edges) - 1):
        add(k, edges[k + 1])
    add(None, count)
    return slots, cumulative


def project_events(
    *,
    events: Sequence[CashEvent],
    as_of: date,
    currency: str,
    opening_cash: Decimal,
    weeks: int = 13,
    simulations: int = SIMULATIONS,
    seed: int = DEFAULT_SEED,
) -> CashFlowProjection:
    """The weekly projection of ``events`` (pure: no database): point estimate and bands."""
    first_day = as_of + timedelta(days=1)

    def week_of(day: date) -> int | None:
        index = (day - first_day).days // 7
        return index if 0 <= index < weeks else None

    def slot(offset: int) -> int | None:
        """The week of the day ``offset`` days after the first (None: outside)."""
        return offset // 7 if 0 <= offset < 7 * weeks else None

    receipts = [0] * weeks
    payments = [0] * weeks
    fixed = [0] * weeks
    # Receipts whose week depends on the draw, in a fixed order (the seed's draws follow it).
    drawn_events: list[CashEvent] = []
    # The median day late of each history (the point estimate's), worked out once.
    medians: dict[int, int] = {}
    for event in events:
        units = _units(event.amount)
        late = event.days_late
        if late.days:
            median = medians.get(id(late))
            if median is None:
                median = medians[id(late)] = late.median()
            index = week_of(event.on_date + timedelta(days=median))
        else:
            index = week_of(event.on_date)
        if index is not None:
            (receipts if units > 0 else payments)[index] += units
        base = (event.on_date - first_day).days
        # Days late are sorted: the earliest and the latest in the same week (or both
        # outside on the same side) put every draw there.
        if late and (
            slot(base + late.first) != slot(base + late.last)
            or (base + late.first < 0) != (base + late.last < 0)
        ):
            drawn_events.append(event)
        elif index is not None:
            fixed[index] += units
    # Each history and first day: where its draws land (edges per week) and whether they
    # land apart (drawn); receipts sharing both share it.
    placed: dict[tuple[int, int], tuple[tuple[int, ...], int, int | None]] = {}
    # (amount in units, key of ``placed``) of every receipt whose week is drawn, in a fixed
    # order (the seed's draws follow it).
    uncertain: list[tuple[int, tuple[int, int]]] = []
    for event in sorted(drawn_events, key=lambda e: (e.on_date, e.kind, e.reference, e.amount)):
        base = (event.on_date - first_day).days
        key = (id(event.days_late), base)
        found = placed.get(key)
        if found is None:
            edges = _edges(event.days_late, base, weeks)
            count = len(event.days_late)
            found = placed[key] = (edges, count, _placed(edges, count))
        where = found[2]
        if where == _DRAWN:
            uncertain.extend((_units(part), key) for part in event.receipts)
        elif where is not None:
            fixed[where] += _units(event.amount)
    opening = _units(opening_cash)
    if len(uncertain) * simulations > MAX_SIMULATED_DRAWS:
        method = NORMAL
        bands = _normal_bands(uncertain, placed, fixed, opening, weeks)
        runs_made = 0
    else:
        method = SIMULATION
        spreads = {key: _spread(*placed[key][:2]) for key in dict.fromkeys(k for _, k in uncertain)}
        bands, runs_made = _simulated_bands(
            [(units, *spreads[key]) for units, key in uncertain],
            fixed,
            opening,
            weeks,
            simulations,
            seed,
        )
    rows = []
    cash = opening
    for index in range(weeks):
        cash += receipts[index] + payments[index]
        p10, p50, p90 = bands[index]
        start = first_day + timedelta(days=7 * index)
        rows.append(
            ProjectionWeek(
                week=index + 1,
                start_date=start,
                end_date=start + timedelta(days=6),
                receipts=_decimal(receipts[index], currency),
                disbursements=_decimal(-payments[index], currency),
                net=_decimal(receipts[index] + payments[index], currency),
                closing_cash=_decimal(cash, currency),
                p10_closing_cash=_decimal(p10, currency),
                p50_closing_cash=_decimal(p50, currency),
                p90_closing_cash=_decimal(p90, currency),
            )
        )
    return CashFlowProjection(
        currency=currency,
        as_of=as_of,
        opening_cash=round_money(opening_cash, currency),
        weeks=tuple(rows),
        simulations=runs_made,
        seed=seed,
        bands=method,
    )


def _simulated_bands(
    uncertain: list[tuple[int, list[int | None], list[int]]],
    fixed: list[int],
    opening: int,
    weeks: int,
    simulations: int,
    seed: int,
) -> tuple[list[tuple[int, int, int]], int]:
    """P10/P50/P90 of each week's closing cash over ``simulations`` seeded runs, each receipt
    drawing its week; and how many runs were made (one when nothing is uncertain)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    runs = [list(fixed) for _ in range(simulations)] if uncertain else [list(fixed)]
    for units, slots, cumulative in uncertain:
        draws = rng.choices(slots, cum_weights=cumulative, k=len(runs))
        for run, drawn in zip(runs, draws, strict=True):
            if drawn is not None:
                run[drawn] += units
    closings: list[list[int]] = [[] for _ in range(weeks)]
    for run in runs:
        cash = opening
        for index in range(weeks):
            cash += run[index]
            closings[index].append(cash)
    bands = []
    for index in range(weeks):
        ordered = sorted(closings[index])
        p10, p50, p90 = (_quantile(ordered, Decimal(p)) for p in ("0.1", "0.5", "0.9"))
        bands.append((p10, p50, p90))
    return bands, len(runs)


def _normal_bands(
    uncertain: list[tuple[int, tuple[int, int]]],
    placed: dict[tuple[int, int], tuple[tuple[int, ...], int, int | None]],
    fixed: list[int],
    opening: int,
    weeks: int,
) -> list[tuple[int, int, int]]:
    """The bands of a book with too many uncertain receipts to simulate (``NORMAL``): each
    week's closing cash is the certain flows plus a sum of many independent receipts, each in
    by then with its probability p; its mean (sum of amount x p) and variance (sum of
    amount^2 x p x (1 - p)) are exact, and the 10th/50th/90th percentiles are read from the
    normal distribution with those moments (the central limit theorem: what the simulation
    would converge to). Receipts with the same history and first day are added up first."""
    groups: dict[tuple[int, int], list[int]] = {}
    for units, key in uncertain:
        group = groups.get(key)
        if group is None:
            group = groups[key] = [0, 0]
        group[0] += units
        group[1] += units * units
    mean = [0.0] * weeks
    variance = [0.0] * weeks
    for key, (total, squares) in groups.items():
        edges, count, _ = placed[key]
        before = edges[0]
        for index in range(weeks):
            # landed by the end of week ``index``, within the weeks
            p = (edges[index + 1] - before) / count
            mean[index] += total * p
            variance[index] += squares * p * (1 - p)
    z = NormalDist().inv_cdf(0.9)
    bands = []
    cash = opening
    for index in range(weeks):
        cash += fixed[index]
        centre = cash + mean[index]
        spread = z * math.sqrt(variance[index])
        bands.append((round(centre - spread), round(centre), round(centre + spread)))
    return bands


def cash_flow_projection(
    *,
    as_of: date | None = None,
    weeks: int = 13,
    currency: str | None = None,
    seed: int = DEFAULT_SEED,
    simulations: int = SIMULATIONS,
) -> list[CashFlowProjection]:
    """The projection of every currency (or of ``currency``) from the end of ``as_of``
    (today by default), with only what was known by then."""
    with _collector_paused():
        return _cash_flow_projection(
            as_of=as_of or timezone.localdate(),
            weeks=weeks,
            currency=currency,
            seed=seed,
            simulations=simulations,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a projection is worked out: it makes tens of
    thousands of small tuples and events, none in a cycle (reference counting frees them), and
    each collection they set off walks every object of the process (a quarter of the time at
    a million invoices). Turned back on after, if it was on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cash_flow_projection(
    *, as_of: date, weeks: int, currency: str | None, seed: int, simulations: int
) -> list[CashFlowProjection]:
    until = as_of + timedelta(days=7 * weeks)
    timing = payment_timing(as_of=as_of)
    overdue = overdue_beyond_timing(as_of=as_of, timing=timing, currency=currency)
    within = receivables_within_timing(as_of=as_of, timing=timing, currency=currency)
    currencies = [currency] if currency else projection_currencies(as_of=as_of, receivables=overdue)
    return [
        project_events(
            events=projection_events(
                as_of=as_of,
                currency=cur,
                until=until,
                timing=timing,
                overdue=overdue,
                within=within,
            ),
            as_of=as_of,
            currency=cur,
            opening_cash=cash_position(as_of=as_of, currency=cur),
            weeks=weeks,
            simulations=simulations,
            seed=seed,
        )
        for cur in currencies
    ]


@dataclass(frozen=True, slots=True)
class BacktestWeek:
    week: int
    start_date: date
    end_date: date
    # The projected net flow of the week and the cash that really moved (None: not over yet).
    projected: Decimal
    actual: Decimal | None

    @property
    def error(self) -> Decimal | None:
        """Projected minus actual: positive when the projection was too hopeful."""
        return None if self.actual is None else self.projected - self.actual


@dataclass(frozen=True, slots=True)
class Backtest:
    currency: str
    as_of: date
    opening_cash: Decimal
    weeks: tuple[BacktestWeek, ...]

    @property
    def mean_absolute_error(self) -> Decimal | None:
        errors = [abs(w.error) for w in self.weeks if w.error is not None]
        if not errors:
            return None
        return round_money(sum(errors, ZERO) / len(errors), self.currency)


def projection_backtest(
    *,
    as_of: date,
    weeks: int = 13,
    currency: str | None = None,
    today: date | None = None,
) -> list[Backtest]:
    """The projection as it would have been made at the end of ``as_of`` (invoices issued and
    payments received by then), each week's net against the cash the ledger shows moved in it.
    Weeks not over by ``today`` have no actual figure."""
    today = today or timezone.localdate()
    results = []
    for projection in cash_flow_projection(as_of=as_of, weeks=weeks, currency=currency):
        moved = cash_movements(
            currency=projection.currency,
            date_from=as_of + timedelta(days=1),
            date_to=as_of + timedelta(days=7 * weeks),
        )
        rows = []
        for week in projection.weeks:
            actual = None
            if week.end_date < today:
                actual = sum(
                    (v for day, v in moved.items() if week.start_date <= day <= week.end_date),
                    ZERO,
                )
                actual = round_money(actual, projection.currency)
            rows.append(BacktestWeek(week.week, week.start_date, week.end_date, week.net, actual))
        results.append(Backtest(projection.currency, as_of, projection.opening_cash, tuple(rows)))
    return results
