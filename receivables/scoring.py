"""Credit score of a customer from its payment history, with the factors that explain it.

``credit_figures_get`` reads the figures; ``credit_score`` is a pure function of them. The
score starts at 100 and each factor takes off up to its weight in points, in proportion to
how bad it is, so a person sees why a customer scores what it does. It is monotonic: paying
later, paying late more often, more disputes, a shorter tenure or a higher utilisation never
raise it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.apps import apps
from django.db.models import Max
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice
from billing.services.credit import Exposure, customer_exposure

ZERO = Decimal(0)
ONE = Decimal(1)
POINT = Decimal("0.1")

# Points each factor can take off (they sum to 100) and where it reaches its full weight.
WEIGHTS = {
    "average_days_late": 30,
    "share_paid_late": 25,
    "disputes": 15,
    "tenure": 10,
    "utilisation": 20,
}
DAYS_LATE_FULL = 60
DISPUTES_FULL = 5
TENURE_FULL_DAYS = 730


@dataclass(frozen=True, slots=True)
class CreditFigures:
    """What the score is computed from."""

    # Days late of each settled or overdue invoice (0: paid on time); open invoices not yet
    # due are not counted.
    days_late: tuple[int, ...]
    disputes: int
    tenure_days: int
    exposure: Decimal
    # Empty: no limit (utilisation does not count).
    credit_limit: Decimal | None


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    value: Decimal
    weight: int
    # Points taken off the score (0 or negative), to 0.1.
    contribution: Decimal
    explanation: str


@dataclass(frozen=True, slots=True)
class CreditScore:
    score: int
    factors: tuple[Factor, ...]


def _factor(name: str, value: Decimal, bad: Decimal, full: Decimal, explanation: str) -> Factor:
    """The points ``name`` takes off: its weight in proportion to ``bad / full`` (capped at
    the whole weight), computed as ``bad * weight / full`` so it is exact before rounding."""
    weight = WEIGHTS[name]
    points = min(max(bad, ZERO) * weight / full, Decimal(weight)) if full > 0 else Decimal(weight)
    contribution = -points.quantize(POINT, rounding=ROUND_HALF_UP)
    return Factor(name, value, weight, contribution + 0, explanation)


def credit_score(figures: CreditFigures) -> CreditScore:
    """The score (0-100, higher is better) and its factors, from ``figures`` alone. The
    score is 100 plus the contributions shown, so the factors add up to it."""
    count = len(figures.days_late)
    days = sum(max(d, 0) for d in figures.days_late)
    late = sum(1 for d in figures.days_late if d > 0)
    average = (Decimal(days) / count).quantize(POINT, rounding=ROUND_HALF_UP) if count else ZERO
    share_late = (Decimal(late) / count).quantize(Decimal("0.0001")) if count else ZERO
    tenure = Decimal(max(figures.tenure_days, 0))
    exposure = max(figures.exposure, ZERO)
    limit = figures.credit_limit
    if limit is None:
        utilisation = ZERO
        usage = "no credit limit"
    elif limit > 0:
        utilisation = (exposure / limit).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        usage = f"{(exposure * 100 / limit).quantize(POINT)}% of the credit limit in use"
    else:
        # A zero limit: any exposure uses all of it.
        utilisation = ONE if exposure > 0 else ZERO
        usage = "a zero credit limit" + (" with exposure" if exposure > 0 else "")
    factors = (
        _factor(
            "average_days_late",
            average,
            Decimal(days),
            Decimal(count * DAYS_LATE_FULL),
            f"{average} days late on average over {count} paid or overdue invoices "
            f"(full weight at {DAYS_LATE_FULL} days)",
        )
        if count
        else Factor("average_days_late", ZERO, WEIGHTS["average_days_late"], ZERO, "no history"),
        _factor(
            "share_paid_late",
            share_late,
            Decimal(late),
            Decimal(count),
            f"{late} of {count} invoices paid late or overdue",
        )
        if count
        else Factor("share_paid_late", ZERO, WEIGHTS["share_paid_late"], ZERO, "no history"),
        _factor(
            "disputes",
            Decimal(figures.disputes),
            Decimal(figures.disputes),
            Decimal(DISPUTES_FULL),
            f"{figures.disputes} disputes (full weight at {DISPUTES_FULL})",
        ),
        _factor(
            "tenure",
            tenure,
            Decimal(TENURE_FULL_DAYS) - min(tenure, Decimal(TENURE_FULL_DAYS)),
            Decimal(TENURE_FULL_DAYS),
            f"customer for {tenure} days (no deduction from {TENURE_FULL_DAYS} days)",
        ),
        _factor(
            "utilisation",
            utilisation,
            ZERO if limit is None else exposure if limit > 0 else utilisation,
            ONE if limit is None or limit == 0 else limit,
            usage,
        ),
    )
    total = Decimal(100) + sum((f.contribution for f in factors), ZERO)
    score = int(total.quantize(ONE, rounding=ROUND_HALF_UP))
    return CreditScore(score=min(max(score, 0), 100), factors=factors)


def _disputes(customer_id: int) -> int:
    """Disputes raised by the customer; 0 until the receivables dispute model exists."""
    try:
        model = apps.get_model("receivables", "Dispute")
    except LookupError:
        return 0
    names = {f.name for f in model._meta.get_fields()}
    if "customer" in names:
        return int(model.objects.filter(customer_id=customer_id).count())
    if "invoice" in names:
        return int(model.objects.filter(invoice__customer_id=customer_id).count())
    return 0


def credit_figures_get(
    *, customer: Customer, as_of: date, exposure: Exposure | None = None
) -> CreditFigures:
    """The customer's payment history as of ``as_of``: days late of each invoice paid,
    written off or overdue (paid on the latest payment's received date, else when closed),
    its disputes, tenure and exposure."""
    rows = (
        Invoice.objects.filter(
            customer_id=customer.pk,
            status__in=[InvoiceStatus.PAID, InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE],
            issue_date__lte=as_of,
            total__gt=0,
        )
        .order_by()
        .annotate(paid_on=Max("allocations__payment__received_date"))
        .values_list("status", "due_date", "paid_on", "closed_at")
    )
    days_late = []
    for status, due_date, paid_on, closed_at in rows:
        if status == InvoiceStatus.OPEN:
            if due_date < as_of:
                days_late.append((as_of - due_date).days)
            continue
        settled = paid_on if status == InvoiceStatus.PAID and paid_on else None
        settled = settled or (timezone.localdate(closed_at) if closed_at else as_of)
        late = max((settled - due_date).days, 0)
        # A write-off is late however early it came.
        days_late.append(max(late, 1) if status == InvoiceStatus.UNCOLLECTIBLE else late)
    exposure = exposure or customer_exposure(customer=customer)
    return CreditFigures(
        days_late=tuple(days_late),
        disputes=_disputes(customer.pk),
        tenure_days=max((as_of - customer.acquired_on).days, 0),
        exposure=exposure.total,
        credit_limit=customer.credit_limit,
    )


@dataclass(frozen=True, slots=True)
class CustomerCredit:
    """What the credit panel shows (API and admin): score with its factors, limit,
    exposure and hold, as of one day."""

    customer: Customer
    as_of: date
    score: CreditScore
    exposure: Exposure

    @property
    def available(self) -> Decimal | None:
        """What may still be issued before the limit; never below zero; None: no limit."""
        limit = self.customer.credit_limit
        return None if limit is None else max(limit - self.exposure.total, ZERO)


def customer_credit_get(*, customer: Customer, as_of: date | None = None) -> CustomerCredit:
    as_of = as_of or timezone.localdate()
    exposure = customer_exposure(customer=customer, on_date=as_of)
    score = credit_score(credit_figures_get(customer=customer, as_of=as_of, exposure=exposure))
    return CustomerCredit(customer=customer, as_of=as_of, score=score, exposure=exposure)
