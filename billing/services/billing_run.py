"""The billing run: every subscription period that has ended gets exactly one invoice.

Each period is billed in its own transaction with the subscription row locked: a crash
loses at most the period in progress (rolled back, billed by the next run), a repeated or
concurrent run finds the period already advanced, and the database refuses a second
invoice for the same subscription and period. Missed periods are caught up in order.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone

from billing.enums import Aggregation, PriceType, SubscriptionStatus
from billing.models import Invoice, PendingItem, Subscription, SubscriptionItem, UsageEvent
from billing.models.subscriptions import BILLABLE
from billing.pricing import period_end, price_amount, prorate
from billing.services.invoices import LineInput, invoice_create, invoice_issue
from core.exceptions import DomainError
from core.money import round_money

ZERO = Decimal(0)


def _boundary(day: date) -> datetime:
    """Midnight starting ``day`` in the billing time zone: usage before it is in the period."""
    tz = zoneinfo.ZoneInfo(getattr(settings, "BILLING_TIME_ZONE", settings.TIME_ZONE))
    return datetime.combine(day, time.min, tzinfo=tz)


def _period_label(start: date, end: date) -> str:
    return f"{start.isoformat()} to {end.isoformat()}"


def _usage_quantity(item: SubscriptionItem, events: Any) -> Decimal | None:
    aggregation = item.price.aggregation
    if not events.exists():
        return None
    if aggregation == Aggregation.SUM:
        return events.aggregate(q=Sum("quantity"))["q"]
    if aggregation == Aggregation.MAX:
        return events.aggregate(q=Max("quantity"))["q"]
    if aggregation == Aggregation.LAST:
        return events.order_by("-occurred_at", "-pk").values_list("quantity", flat=True).first()
    return Decimal(events.aggregate(q=Count("value", distinct=True))["q"])


def _line_for(
    item: SubscriptionItem, quantity: Decimal, amount: Decimal, label: str, currency: str
) -> LineInput:
    price = item.price
    name = price.nickname or price.product.name
    if price.type == PriceType.PER_UNIT and amount == quantity * (price.unit_amount or ZERO):
        return LineInput(
            description=f"{name} ({label})",
            quantity=quantity,
            unit_price=price.unit_amount or ZERO,
            tax_inclusive=price.tax_inclusive,
        )
    return LineInput(
        description=f"{name} x {quantity.normalize():f} ({label})",
        quantity=Decimal(1),
        unit_price=round_money(amount, currency),
        tax_inclusive=price.tax_inclusive,
    )


@dataclass(slots=True)
class _Lines:
    lines: list[LineInput] = field(default_factory=list)
    usage_ids: list[int] = field(default_factory=list)
    pending_ids: list[int] = field(default_factory=list)


def _collect(sub: Subscription, start: date, end: date, *, days_used: int | None = None) -> _Lines:
    """The lines of one period: licensed prices (none while trialing; prorated by
    ``days_used`` for a final partial period), metered usage not yet billed that happened
    before the period's end (late events of closed periods included), pending items."""
    out = _Lines()
    until = end if days_used is None else start + timedelta(days=days_used)
    label = _period_label(start, until)
    trial = sub.trial_end is not None and start < sub.trial_end
    days_total = (end - start).days
    for item in sub.items.select_related("price__product").order_by("pk"):
        price = item.price
        if price.is_metered:
            events = UsageEvent.objects.filter(
                item=item, invoice__isnull=True, occurred_at__lt=_boundary(until)
            )
            quantity = _usage_quantity(item, events)
            if quantity is None:
                continue
            out.usage_ids.extend(events.values_list("pk", flat=True))
            amount = price_amount(
                type=price.type,
                quantity=quantity,
                unit_amount=price.unit_amount,
                package_size=price.package_size,
                tiers=price.tiers,
            )
            out.lines.append(_line_for(item, quantity, amount, f"usage {label}", sub.currency))
        elif not trial:
            amount = price_amount(
                type=price.type,
                quantity=item.quantity,
                unit_amount=price.unit_amount,
                package_size=price.package_size,
                tiers=price.tiers,
            )
            if days_used is not None and days_used < days_total:
                amount = prorate(amount, days_used=days_used, days_in_period=days_total)
                out.lines.append(
                    LineInput(
                        description=f"{price.nickname or price.product.name} x "
                        f"{item.quantity.normalize():f} ({days_used} of {days_total} days, "
                        f"{label})",
                        quantity=Decimal(1),
                        unit_price=round_money(amount, sub.currency),
                        tax_inclusive=price.tax_inclusive,
                    )
                )
            else:
                out.lines.append(_line_for(item, item.quantity, amount, label, sub.currency))
    for pending in PendingItem.objects.filter(subscription=sub, invoice__isnull=True).order_by(
        "pk"
    ):
        out.pending_ids.append(pending.pk)
        out.lines.append(
            LineInput(
                description=pending.description,
                quantity=Decimal(1),
                unit_price=pending.amount,
                tax_inclusive=pending.tax_inclusive,
            )
        )
    if not out.lines:
        note = "Trial period" if trial else "No charges for this period"
        out.lines.append(
            LineInput(description=f"{note} ({label})", quantity=Decimal(1), unit_price=ZERO)
        )
    return out


def _invoice(
    sub: Subscription,
    collected: _Lines,
    *,
    actor: Any,
    on_date: date,
    period: tuple[date, date] | None,
) -> Invoice:
    invoice = invoice_create(
        actor=actor,
        customer_id=sub.customer_id,
        currency=sub.currency,
        lines=collected.lines,
        subscription_id=sub.pk if period else None,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
    )
    UsageEvent.objects.filter(pk__in=collected.usage_ids).update(invoice=invoice)
    PendingItem.objects.filter(pk__in=collected.pending_ids).update(invoice=invoice)
    return invoice_issue(actor=actor, invoice_id=invoice.pk, on_date=on_date)


def subscription_bill_period(
    *, subscription_id: int, as_of: date, actor: Any = None
) -> Invoice | None:
    """Invoice the subscription's current period if it has ended by ``as_of``, and move on
    to the next period. None when there is nothing to bill (yet)."""
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        if sub.status not in BILLABLE or sub.current_period_end > as_of:
            return None
        start, end = sub.current_period_start, sub.current_period_end
        invoice = Invoice.objects.filter(subscription=sub, period_start=start).first()
        if invoice is None:
            invoice = _invoice(
                sub, _collect(sub, start, end), actor=actor, on_date=as_of, period=(start, end)
            )
        sub.current_period_start = end
        sub.current_period_end = period_end(end, sub.interval, sub.anchor_day)
        if sub.status == SubscriptionStatus.TRIALING and sub.trial_end and end >= sub.trial_end:
            sub.end_trial()
        if sub.cancel_at_period_end:
            sub.cancel(ended_on=end)
        sub.save()
    return invoice


def subscription_bill_final(*, subscription: Subscription, actor: Any, ended_on: date) -> Invoice:
    """Cancel now: invoice the days used of the current period and its usage, then cancel.
    Runs inside the caller's transaction, with the subscription locked."""
    start, end = subscription.current_period_start, subscription.current_period_end
    collected = _collect(subscription, start, end, days_used=(ended_on - start).days)
    invoice = _invoice(
        subscription, collected, actor=actor, on_date=ended_on, period=(start, ended_on)
    )
    subscription.cancel(ended_on=ended_on)
    subscription.save()
    return invoice


def pending_items_invoice(*, subscription: Subscription, actor: Any, on_date: date) -> Invoice:
    """Invoice the subscription's pending items now (a plan change prorated immediately)."""
    collected = _Lines()
    for pending in PendingItem.objects.filter(subscription=subscription, invoice__isnull=True):
        collected.pending_ids.append(pending.pk)
        collected.lines.append(
            LineInput(
                description=pending.description,
                quantity=Decimal(1),
                unit_price=pending.amount,
                tax_inclusive=pending.tax_inclusive,
            )
        )
    return _invoice(subscription, collected, actor=actor, on_date=on_date, period=None)


@dataclass(slots=True)
class BillingRunResult:
    as_of: date
    invoices: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)


def billing_run(*, as_of: date | None = None, actor: Any = None) -> BillingRunResult:
    """Bill every period that has ended by ``as_of`` (today by default), oldest first.

    A subscription that fails (no FX rate, closed period...) is reported and skipped; the
    others go on. Safe to run again or concurrently."""
    as_of = as_of or timezone.localdate()
    result = BillingRunResult(as_of=as_of)
    due = (
        Subscription.objects.filter(status__in=BILLABLE, current_period_end__lte=as_of)
        .order_by("current_period_end", "pk")
        .values_list("pk", flat=True)
    )
    for subscription_id in list(due):
        while True:
            try:
                invoice = subscription_bill_period(
                    subscription_id=subscription_id, as_of=as_of, actor=actor
                )
            except DomainError as exc:
                result.failures[subscription_id] = exc.message
                break
            if invoice is None:
                break
            result.invoices.append(invoice.pk)
    return result
