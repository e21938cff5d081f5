"""Catalog, subscriptions (create, change with proration, pause, cancel) and usage intake."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from billing.enums import Aggregation, PriceType, SubscriptionStatus
from billing.events import subscription_updated
from billing.exceptions import BillingError, CurrencyMismatch, InvalidTransition
from billing.models import (
    Customer,
    PendingItem,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    UsageEvent,
)
from billing.pricing import PricingError, _tiers, period_end, price_amount, prorate
from billing.services.credit import credit_check
from core.exceptions import PermissionDeniedError
from core.money import minor_unit_exponent, round_money

ZERO = Decimal(0)


def _require(actor: Any, perm: str, what: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow you to {what}.")


# --- Catalog ---------------------------------------------------------------------------------


def product_create(*, actor: Any, name: str, description: str = "") -> Product:
    _require(actor, "billing.add_product", "change the catalog")
    return Product.objects.create(name=name, description=description)


def price_create(
    *,
    actor: Any,
    product_id: int,
    currency: str,
    type: str,
    interval: str,
    unit_amount: Decimal | None = None,
    package_size: int | None = None,
    tiers: list[dict[str, Any]] | None = None,
    tax_inclusive: bool = False,
    metric: str = "",
    aggregation: str = "",
    nickname: str = "",
) -> Price:
    """A price, checked for what its type needs (tiers ordered and open-ended, a package
    size, a unit amount, an aggregation for a metered price)."""
    _require(actor, "billing.add_price", "change the catalog")
    minor_unit_exponent(currency)
    if type not in PriceType.values:
        raise BillingError(f"Unknown price type {type!r}.", field="type")
    if type in (PriceType.TIERED_GRADUATED, PriceType.TIERED_VOLUME):
        try:
            _tiers(tiers or [])
        except PricingError as exc:
            raise BillingError(f"Invalid tiers: {exc}.", field="tiers") from None
    elif unit_amount is None or unit_amount < 0:
        raise BillingError("This price type needs a unit amount of 0 or more.", field="unit_amount")
    if type == PriceType.PACKAGE and not package_size:
        raise BillingError("A package price needs a package size.", field="package_size")
    if metric and aggregation not in Aggregation.values:
        raise BillingError("A metered price needs an aggregation.", field="aggregation")
    if metric and type == PriceType.FLAT:
        raise BillingError("A metered price cannot be a flat fee.", field="type")
    return Price.objects.create(
        product_id=product_id,
        currency=currency,
        type=type,
        interval=interval,
        unit_amount=unit_amount,
        package_size=package_size,
        tiers=tiers or [],
        tax_inclusive=tax_inclusive,
        metric=metric,
        aggregation=aggregation if metric else "",
        nickname=nickname,
    )


def product_update(
    *, actor: Any, product_id: int, description: str | None = None, is_active: bool | None = None
) -> Product:
    """Change what never alters past bills: the description and whether it is sold."""
    _require(actor, "billing.change_product", "change the catalog")
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product_id)
        if description is not None:
            product.description = description
        if is_active is not None:
            product.is_active = is_active
        product.save(update_fields=["description", "is_active"])
    return product


def price_update(
    *, actor: Any, price_id: int, nickname: str | None = None, is_active: bool | None = None
) -> Price:
    """Prices are immutable once created (invoices were computed from them); only the
    nickname and whether new subscriptions may use it change."""
    _require(actor, "billing.change_price", "change the catalog")
    with transaction.atomic():
        price = Price.objects.select_for_update().get(pk=price_id)
        if nickname is not None:
            price.nickname = nickname
        if is_active is not None:
            price.is_active = is_active
        price.save(update_fields=["nickname", "is_active"])
    return price


# --- Subscriptions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemInput:
    price_id: int
    quantity: Decimal = Decimal(1)


def _prices(items: Sequence[ItemInput]) -> dict[int, Price]:
    prices = Price.objects.select_related("product").in_bulk([i.price_id for i in items])
    for item in items:
        price = prices.get(item.price_id)
        if price is None or not price.is_active:
            raise BillingError(f"Price {item.price_id} does not exist or is not active.")
        if item.quantity < 0:
            raise BillingError("Quantities must not be negative.", field="items")
    return prices


def subscription_create(
    *,
    actor: Any,
    customer_id: int,
    items: Sequence[ItemInput],
    start_date: date | None = None,
    trial_days: int = 0,
    override_credit_limit: bool = False,
    autopay: bool | None = None,
) -> Subscription:
    """Start a subscription: periods anchored on the start day (or the trial's end).
    ``autopay``: whether its invoices are charged automatically (None: as the customer is).

    Passes the customer's credit check with the first paid period's licensed amount
    (``billing.services.credit``): refused on hold or beyond the limit unless
    ``override_credit_limit`` by an approver; the override is kept in the history."""
    _require(actor, "billing.add_subscription", "start subscriptions")
    if not items:
        raise BillingError("A subscription needs at least one price.", field="items")
    prices = _prices(items)
    currencies = {p.currency for p in prices.values()}
    intervals = {p.interval for p in prices.values()}
    if len(currencies) != 1 or len(intervals) != 1:
        raise CurrencyMismatch("All prices of a subscription share one currency and interval.")
    start = start_date or timezone.localdate()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        (currency,), (interval,) = currencies, intervals
        first_period = sum(
            (_licensed_amount(None, prices[i.price_id], i.quantity) for i in items), ZERO
        )
        overridden_by = credit_check(
            customer_id=customer.pk,
            amount=round_money(first_period, currency),
            currency=currency,
            actor=actor,
            override=override_credit_limit,
            what="This subscription's first period",
        )
        trial_end = start + timedelta(days=trial_days) if trial_days > 0 else None
        first_start = trial_end or start
        subscription = Subscription(
            autopay=autopay,
            status=SubscriptionStatus.TRIALING if trial_end else SubscriptionStatus.ACTIVE,
            customer=customer,
            currency=currency,
            interval=interval,
            anchor_day=first_start.day,
            started_on=start,
            trial_end=trial_end,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        if trial_end:
            # The trial is a period of its own, billed at nothing.
            subscription.current_period_start, subscription.current_period_end = start, trial_end
        else:
            subscription.current_period_start = start
            subscription.current_period_end = period_end(start, interval, start.day)
        if overridden_by is not None:
            # The history row of the creation records who let it past the credit limit.
            subscription._change_reason = f"credit limit overridden by {overridden_by}"[:100]  # type: ignore[attr-defined]
        subscription.save()
        SubscriptionItem.objects.bulk_create(
            [
                SubscriptionItem(
                    subscription=subscription, price_id=i.price_id, quantity=i.quantity
                )
                for i in items
            ]
        )
    return subscription


def _licensed_amount(item: SubscriptionItem | None, price: Price, quantity: Decimal) -> Decimal:
    if price.is_metered:
        return ZERO
    return price_amount(
        type=price.type,
        quantity=quantity,
        unit_amount=price.unit_amount,
        package_size=price.package_size,
        tiers=price.tiers,
    )


def subscription_change(
    *,
    actor: Any,
    subscription_id: int,
    items: Sequence[ItemInput],
    on_date: date | None = None,
    prorate_now: bool = False,
) -> Subscription:
    """Replace the subscription's prices and quantities from ``on_date``.

    The unused days of the old licensed prices are credited and the new ones charged for
    the same days, exact to the day (days left / days in the period), each rounded to the
    currency. The items wait for the next invoice, or are invoiced at once (``prorate_now``).
    """
    _require(actor, "billing.change_subscription", "change subscriptions")
    prices = _prices(items)
    on = on_date or timezone.localdate()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        if sub.status == SubscriptionStatus.CANCELED:
            raise InvalidTransition("A canceled subscription cannot change.")
        if any(p.currency != sub.currency or p.interval != sub.interval for p in prices.values()):
            raise CurrencyMismatch(
                "New prices must share the subscription's currency and interval."
            )
        if not sub.current_period_start <= on < sub.current_period_end:
            raise BillingError(
                f"{on.isoformat()} is outside the current period "
                f"{sub.current_period_start.isoformat()} to {sub.current_period_end.isoformat()}.",
                field="on_date",
            )
        days_total = (sub.current_period_end - sub.current_period_start).days
        days_left = (sub.current_period_end - on).days
        trialing = sub.status == SubscriptionStatus.TRIALING
        pending = []
        old_items = list(sub.items.select_related("price__product"))
        if not trialing:
            for old in old_items:
                amount = _licensed_amount(old, old.price, old.quantity)
                credit = round_money(
                    prorate(amount, days_used=days_left, days_in_period=days_total), sub.currency
                )
                if credit:
                    pending.append(
                        PendingItem(
                            subscription=sub,
                            currency=sub.currency,
                            description=f"Unused time on {old.price} x {old.quantity:f} "
                            f"from {on.isoformat()}",
                            amount=-credit,
                            tax_inclusive=old.price.tax_inclusive,
                            period_start=on,
                            period_end=sub.current_period_end,
                        )
                    )
            for new in items:
                price = prices[new.price_id]
                amount = _licensed_amount(None, price, new.quantity)
                charge = round_money(
                    prorate(amount, days_used=days_left, days_in_period=days_total), sub.currency
                )
                if charge:
                    pending.append(
                        PendingItem(
                            subscription=sub,
                            currency=sub.currency,
                            description=f"Remaining time on {price} x {new.quantity:f} "
                            f"from {on.isoformat()}",
                            amount=charge,
                            tax_inclusive=price.tax_inclusive,
                            period_start=on,
                            period_end=sub.current_period_end,
                        )
                    )
        # Licensed items are replaced. A metered item keeps its row (its usage points at it):
        # updated when its price stays, removed when it goes and has no usage yet.
        wanted = {i.price_id for i in items}
        kept = {}
        for old in old_items:
            if old.price.is_metered and old.price_id in wanted:
                kept[old.price_id] = old
            elif not old.price.is_metered or not old.usage.exists():
                old.delete()
        for new in items:
            if new.price_id in kept:
                kept[new.price_id].quantity = new.quantity
                kept[new.price_id].save(update_fields=["quantity"])
            else:
                SubscriptionItem.objects.create(
                    subscription=sub, price_id=new.price_id, quantity=new.quantity
                )
        PendingItem.objects.bulk_create(pending)
        subscription_updated(sub)
        if prorate_now and pending:
            from billing.services.billing_run import pending_items_invoice

            pending_items_invoice(subscription=sub, actor=actor, on_date=on)
    return sub


def subscription_pause(*, actor: Any, subscription_id: int) -> Subscription:
    _require(actor, "billing.change_subscription", "pause subscriptions")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        if not can_proceed(sub.pause):
            raise InvalidTransition(f"A {sub.status} subscription cannot be paused.")
        sub.pause()
        sub.save(update_fields=["status", "paused_at"])
    return sub


def subscription_resume(*, actor: Any, subscription_id: int) -> Subscription:
    _require(actor, "billing.change_subscription", "resume subscriptions")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        if not can_proceed(sub.resume):
            raise InvalidTransition(f"A {sub.status} subscription cannot be resumed.")
        sub.resume()
        sub.save(update_fields=["status", "paused_at"])
    return sub


def subscription_cancel(
    *, actor: Any, subscription_id: int, at_period_end: bool = True, on_date: date | None = None
) -> Subscription:
    """Cancel at the end of the current period, or now: then the days used so far and the
    usage to date are invoiced at once."""
    _require(actor, "billing.change_subscription", "cancel subscriptions")
    on = on_date or timezone.localdate()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        if not can_proceed(sub.cancel):
            raise InvalidTransition(f"A {sub.status} subscription cannot be canceled.")
        if at_period_end:
            sub.cancel_at_period_end = True
            sub.save(update_fields=["cancel_at_period_end"])
            subscription_updated(sub)
            return sub
        if not sub.current_period_start <= on <= sub.current_period_end:
            raise BillingError("Cancel within the current period.", field="on_date")
        from billing.services.billing_run import subscription_bill_final

        subscription_bill_final(subscription=sub, actor=actor, ended_on=on)
    return sub


# --- Usage -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageInput:
    subscription_item_id: int
    metric: str
    quantity: Decimal
    occurred_at: datetime
    idempotency_key: str
    value: str = ""


def usage_ingest(*, actor: Any, events: Sequence[UsageInput]) -> tuple[int, int]:
    """Record a batch of usage events; all or none. Returns (recorded, already known):
    an event whose idempotency key was seen before is not counted again."""
    _require(actor, "billing.add_usageevent", "report usage")
    items = SubscriptionItem.objects.select_related("price", "subscription").in_bulk(
        {e.subscription_item_id for e in events}
    )
    rows = []
    for n, event in enumerate(events):
        item = items.get(event.subscription_item_id)
        if item is None:
            raise BillingError(
                f"Event {n}: subscription item {event.subscription_item_id} not found."
            )
        if not item.price.is_metered or item.price.metric != event.metric:
            raise BillingError(
                f"Event {n}: metric {event.metric!r} is not metered by subscription item {item.pk}."
            )
        if event.quantity < 0 or not event.quantity.is_finite():
            raise BillingError(f"Event {n}: quantity must be 0 or more.")
        if item.price.aggregation == Aggregation.UNIQUE and not event.value:
            raise BillingError(f"Event {n}: a unique-count metric needs the counted value.")
        if timezone.is_naive(event.occurred_at):
            raise BillingError(f"Event {n}: the timestamp needs a time zone.")
        if (
            item.subscription.status == SubscriptionStatus.CANCELED
            and item.subscription.ended_on
            and (event.occurred_at.date() >= item.subscription.ended_on)
        ):
            raise BillingError(
                f"Event {n}: the subscription ended on {item.subscription.ended_on}."
            )
        rows.append(
            UsageEvent(
                item=item,
                metric=event.metric,
                quantity=event.quantity,
                value=event.value,
                occurred_at=event.occurred_at,
                idempotency_key=event.idempotency_key,
            )
        )
    keys = [r.idempotency_key for r in rows]
    if len(set(keys)) != len(keys):
        raise BillingError("The batch repeats an idempotency key.")
    with transaction.atomic():
        known = set(
            UsageEvent.objects.filter(idempotency_key__in=keys).values_list(
                "idempotency_key", flat=True
            )
        )
        fresh = [r for r in rows if r.idempotency_key not in known]
        UsageEvent.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh), len(known)
