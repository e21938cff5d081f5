"""The billing run: every subscription period that has ended gets exactly one invoice.

Two paths write the same invoices. ``subscription_bill_period`` bills one period in its own
transaction with the subscription row locked (small runs, fallbacks, cancel and change).
``billing_run`` bills due subscriptions in chunks: one transaction per chunk, the chunk's
rows locked with SKIP LOCKED so concurrent runs split the work, look-ups and usage read once
per chunk, numbers taken as one consecutive block, postings in one ledger batch, rows
written by COPY. Either way a crash loses at most the transaction in progress (rolled back,
billed by the next run), a repeated or concurrent run finds the period already advanced, and
the database refuses a second invoice for the same subscription and period. Missed periods
are caught up in order. PDFs and emails follow after commit, by workers.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, QuerySet, Sum
from django.utils import timezone

from billing.enums import Aggregation, PriceType, SubscriptionStatus
from billing.models import (
    Customer,
    Invoice,
    InvoiceLine,
    PendingItem,
    Price,
    Subscription,
    SubscriptionItem,
    TaxRate,
    UsageEvent,
)
from billing.models.subscriptions import BILLABLE
from billing.postings import invoice_issue_lines
from billing.pricing import period_end, price_amount, prorate
from billing.services.autopay import autopay_queue, autopay_schedule
from billing.services.bulk import copy_insert, history_insert
from billing.services.invoices import (
    INVOICE_SERIES,
    LineInput,
    _accounts,
    _snapshot,
    invoice_create,
    invoice_issue,
    invoice_lines_build,
)
from billing.services.links import invoice_links_create
from billing.tax import customer_tax_rate
from core.commit import after_commit
from core.events.services import events_batch
from core.exceptions import DomainError
from core.fx import fx_rate_get
from core.ledger.enums import AccountRole
from core.ledger.services import EntrySpec, journal_post_batch
from core.money import minor_unit_exponent, round_money
from core.numbering import document_numbers_take
from core.system_settings import system_settings

ZERO = Decimal(0)
logger = logging.getLogger(__name__)


def _boundary(day: date) -> datetime:
    """Midnight starting ``day`` in the billing time zone: usage before it is in the period."""
    tz = zoneinfo.ZoneInfo(getattr(settings, "BILLING_TIME_ZONE", settings.TIME_ZONE))
    return datetime.combine(day, time.min, tzinfo=tz)


def _pending_line(pending: PendingItem) -> LineInput:
    """A proration credit or charge waiting for the invoice, as one line of it."""
    return LineInput(
        description=pending.description,
        quantity=Decimal(1),
        unit_price=pending.amount,
        tax_inclusive=pending.tax_inclusive,
    )


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


@dataclass(frozen=True, slots=True)
class _Usage:
    """A metered item's unbilled usage in a period: its aggregate and the events in it."""

    quantity: Decimal
    event_ids: list[int]


def _collect(sub: Subscription, start: date, end: date, *, days_used: int | None = None) -> _Lines:
    """The lines of one period, read for this subscription alone (see ``_period_lines``)."""
    until = end if days_used is None else start + timedelta(days=days_used)
    items = list(sub.items.select_related("price__product").order_by("pk"))
    usage = {}
    for item in items:
        if not item.price.is_metered:
            continue
        events = UsageEvent.objects.filter(
            item=item, invoice__isnull=True, occurred_at__lt=_boundary(until)
        )
        quantity = _usage_quantity(item, events)
        if quantity is not None:
            usage[item.pk] = _Usage(quantity, list(events.values_list("pk", flat=True)))
    pending = list(
        PendingItem.objects.filter(subscription=sub, invoice__isnull=True).order_by("pk")
    )
    return _period_lines(sub, start, end, items, usage, pending, days_used=days_used)


def _period_lines(
    sub: Subscription,
    start: date,
    end: date,
    items: Sequence[SubscriptionItem],
    usage: dict[int, _Usage],
    pending: Sequence[PendingItem],
    *,
    days_used: int | None = None,
) -> _Lines:
    """The lines of one period: licensed prices (none while trialing; prorated by
    ``days_used`` for a final partial period), metered usage not yet billed that happened
    before the period's end (late events of closed periods included), pending items.

    Pure: both billing paths read the same rows their own way and build lines here, so a
    period gets the same invoice whichever path bills it."""
    out = _Lines()
    until = end if days_used is None else start + timedelta(days=days_used)
    label = _period_label(start, until)
    trial = sub.trial_end is not None and start < sub.trial_end
    days_total = (end - start).days
    for item in items:
        price = item.price
        if price.is_metered:
            used = usage.get(item.pk)
            if used is None:
                continue
            out.usage_ids.extend(used.event_ids)
            amount = price_amount(
                type=price.type,
                quantity=used.quantity,
                unit_amount=price.unit_amount,
                package_size=price.package_size,
                tiers=price.tiers,
            )
            out.lines.append(_line_for(item, used.quantity, amount, f"usage {label}", sub.currency))
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
    for pending_item in pending:
        out.pending_ids.append(pending_item.pk)
        out.lines.append(_pending_line(pending_item))
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
        collected.lines.append(_pending_line(pending))
    return _invoice(subscription, collected, actor=actor, on_date=on_date, period=None)


@dataclass(slots=True)
class BillingRunResult:
    as_of: date
    invoices: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)


# Subscriptions billed per chunk transaction: enough to amortise the look-ups and round trips,
# few enough that a chunk holds the invoice counter row briefly and a crash redoes little.
CHUNK_SIZE = 500
# Fewer due subscriptions than this are billed period by period: as cheap at that size, and
# each invoice commits on its own.
BATCH_MIN = 20


def billing_run(
    *,
    as_of: date | None = None,
    actor: Any = None,
    chunk_size: int = CHUNK_SIZE,
    batch_min: int = BATCH_MIN,
) -> BillingRunResult:
    """Bill every period that has ended by ``as_of`` (today by default); each
    subscription's periods oldest first.

    Due subscriptions are billed in chunks of ``chunk_size``, one transaction and one
    period per subscription each, until none is due (missed periods are caught up one pass
    at a time). A subscription that fails (no FX rate, closed period...) is reported and
    skipped; the others go on. Safe to run again or concurrently: concurrent runs lock
    disjoint chunks, and a period is billed once."""
    as_of = as_of or timezone.localdate()
    result = BillingRunResult(as_of=as_of)
    due = Subscription.objects.filter(status__in=BILLABLE, current_period_end__lte=as_of)
    if (
        connection.vendor != "postgresql"
        or not _may_bill(actor)
        or due[:batch_min].count() < batch_min
    ):
        # Period by period, each in its own transaction; refusals recorded per subscription.
        for subscription_id in list(
            due.order_by("current_period_end", "pk").values_list("pk", flat=True)
        ):
            _bill_one_by_one(subscription_id, as_of=as_of, actor=actor, result=result)
        return result
    # Billed one by one in this run (after a refusal): no chunk takes them again.
    by_hand: set[int] = set()
    while True:
        chunk = _bill_chunk(as_of=as_of, actor=actor, size=chunk_size, skip=by_hand)
        if chunk is None:
            break
        result.invoices.extend(chunk.invoices)
        for subscription_id in chunk.by_hand:
            by_hand.add(subscription_id)
            _bill_one_by_one(subscription_id, as_of=as_of, actor=actor, result=result)
    return result


def _may_bill(actor: Any) -> bool:
    """Whether ``actor`` may create and issue invoices (the system itself may)."""
    return actor is None or (
        actor.has_perm("billing.add_invoice") and actor.has_perm("billing.issue_invoice")
    )


def _bill_one_by_one(
    subscription_id: int, *, as_of: date, actor: Any, result: BillingRunResult
) -> None:
    """Every due period of one subscription, one transaction each, oldest first."""
    while True:
        try:
            invoice = subscription_bill_period(
                subscription_id=subscription_id, as_of=as_of, actor=actor
            )
        except DomainError as exc:
            result.failures[subscription_id] = exc.message
            return
        if invoice is None:
            return
        result.invoices.append(invoice.pk)


# --- The chunked path -------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    invoices: list[int] = field(default_factory=list)
    # Refused by the batch: billed (or reported) one by one after the chunk commits.
    by_hand: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Draft:
    """One invoice (a period's, or a system charge's), built in memory before it is written."""

    sub: Subscription | None
    invoice: Invoice
    lines: list[InvoiceLine]
    collected: _Lines | None = None


def _bill_chunk(*, as_of: date, actor: Any, size: int, skip: set[int]) -> _Chunk | None:
    """Bill the current period of up to ``size`` due subscriptions in one transaction: the
    same invoices, lines, numbers, postings and snapshots as ``subscription_bill_period``,
    read and written in bulk. None when no unlocked subscription is due.

    Rows locked by another run are skipped (it bills them). A subscription the batch
    refuses is left as it is and returned in ``by_hand``; a refusal of the whole chunk
    (the ledger's) rolls it back and returns every subscription in ``by_hand``."""
    chunk = _Chunk()
    locked: list[int] = []
    try:
        with transaction.atomic():
            subs = list(
                Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer")
                .filter(status__in=BILLABLE, current_period_end__lte=as_of)
                .exclude(pk__in=skip)
                .order_by("pk")[:size]
            )
            if not subs:
                return None
            locked = [sub.pk for sub in subs]
            billed, chunk.by_hand = _write_chunk(subs, as_of=as_of, actor=actor)
            chunk.invoices = billed
    except DomainError:
        return _Chunk(by_hand=locked)
    return chunk


def _write_chunk(
    subs: list[Subscription], *, as_of: date, actor: Any
) -> tuple[list[int], list[int]]:
    """Inside the chunk's transaction, with ``subs`` locked: (invoices, refused subs)."""
    ids = [sub.pk for sub in subs]
    existing = {
        (subscription_id, start): pk
        for pk, subscription_id, start in Invoice.objects.filter(
            subscription_id__in=ids,
            period_start__in={sub.current_period_start for sub in subs},
        ).values_list("pk", "subscription_id", "period_start")
    }
    items: dict[int, list[SubscriptionItem]] = defaultdict(list)
    chunk_items = list(SubscriptionItem.objects.filter(subscription_id__in=ids).order_by("pk"))
    # A few prices serve many subscriptions: each read once.
    prices = Price.objects.select_related("product").in_bulk({i.price_id for i in chunk_items})
    for item in chunk_items:
        item.price = prices[item.price_id]
        items[item.subscription_id].append(item)
    pending: dict[int, list[PendingItem]] = defaultdict(list)
    for pending_item in PendingItem.objects.filter(
        subscription_id__in=ids, invoice__isnull=True
    ).order_by("pk"):
        pending[pending_item.subscription_id].append(pending_item)
    usage = _chunk_usage(subs, items)
    rates = _Rates(as_of)
    default_rates = _default_rates([sub.customer for sub in subs])
    terms_default = system_settings().billing.payment_terms

    refused: list[int] = []
    advanced: list[Subscription] = []
    billed: list[int] = []
    drafts: list[_Draft] = []
    for sub in subs:
        start, end = sub.current_period_start, sub.current_period_end
        known = existing.get((sub.pk, start))
        if known is None:
            try:
                drafts.append(
                    _draft(
                        sub,
                        _period_lines(sub, start, end, items[sub.pk], usage, pending[sub.pk]),
                        actor=actor,
                        on_date=as_of,
                        fx_rate=rates.get(sub.currency),
                        default_rate=default_rates[sub.customer_id],
                        terms_default=terms_default,
                    )
                )
            except DomainError:
                refused.append(sub.pk)
                continue
        else:
            billed.append(known)
        _advance(sub)
        advanced.append(sub)

    _issue(drafts, actor=actor, on_date=as_of)
    billed.extend(d.invoice.pk for d in drafts)
    _mark_billed(UsageEvent, [(i, d.invoice.pk) for d in drafts for i in d.collected.usage_ids])
    _mark_billed(PendingItem, [(i, d.invoice.pk) for d in drafts for i in d.collected.pending_ids])
    _save_advanced(advanced, actor=actor)
    if drafts:
        # After commit, never inline: workers render and send (see invoice_issue).
        after_commit(_queue_deliveries, [str(d.invoice.pk) for d in drafts])
    return billed, refused


def _advance(sub: Subscription) -> None:
    """Move to the next period, as ``subscription_bill_period`` does (in memory)."""
    end = sub.current_period_end
    sub.current_period_start = end
    sub.current_period_end = period_end(end, sub.interval, sub.anchor_day)
    if sub.status == SubscriptionStatus.TRIALING and sub.trial_end and end >= sub.trial_end:
        sub.end_trial()
    if sub.cancel_at_period_end:
        sub.cancel(ended_on=end)


# The fields ``_advance`` changes, written for the whole chunk in one statement.
_ADVANCE_SQL = (
    "UPDATE {table} AS s SET current_period_start = v.period_start, "
    "current_period_end = v.period_end, status = v.status, canceled_at = v.canceled_at, "
    "ended_on = v.ended_on "
    "FROM UNNEST(%s::bigint[], %s::date[], %s::date[], %s::varchar[], %s::timestamptz[], "
    "%s::date[]) AS v(id, period_start, period_end, status, canceled_at, ended_on) "
    "WHERE s.id = v.id"
)


def _save_advanced(subs: list[Subscription], *, actor: Any) -> None:
    """Save the advanced subscriptions and their history rows (what ``sub.save()`` writes
    in the per-period path), in two statements."""
    if not subs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _ADVANCE_SQL.format(table=Subscription._meta.db_table),
            [
                [s.pk for s in subs],
                [s.current_period_start for s in subs],
                [s.current_period_end for s in subs],
                [s.status for s in subs],
                [s.canceled_at for s in subs],
                [s.ended_on for s in subs],
            ],
        )
    history_insert(Subscription, subs, history_type="~", actor=actor)


class _Rates:
    """FX rates to the functional currency on one day, read once per currency; a missing
    rate is raised for each subscription in that currency."""

    def __init__(self, on_date: date) -> None:
        self.on_date = on_date
        self.functional = system_settings().functional_currency
        self._found: dict[str, Decimal | DomainError] = {}

    def get(self, currency: str) -> Decimal:
        if currency not in self._found:
            try:
                self._found[currency] = fx_rate_get(
                    base=currency, quote=self.functional, on_date=self.on_date
                )
            except DomainError as exc:
                self._found[currency] = exc
        found = self._found[currency]
        if isinstance(found, DomainError):
            raise found
        return found


def _default_rates(customers: Sequence[Customer]) -> dict[int, Decimal]:
    """Each customer's default tax rate, as ``invoices._default_rate`` gives it."""
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


# One grouped query per aggregation kind over the chunk's metered items, each item with its
# own boundary; the ids of the events aggregated come with it, so exactly those are marked.
_USAGE_AGGREGATES = {
    Aggregation.SUM: "SUM(e.quantity)",
    Aggregation.MAX: "MAX(e.quantity)",
    Aggregation.LAST: "(ARRAY_AGG(e.quantity ORDER BY e.occurred_at DESC, e.id DESC))[1]",
    Aggregation.UNIQUE: "COUNT(DISTINCT e.value)",
}
_USAGE_SQL = (
    "SELECT e.item_id, {aggregate}, ARRAY_AGG(e.id ORDER BY e.id) "
    "FROM {table} e JOIN UNNEST(%s::bigint[], %s::timestamptz[]) AS b(item_id, until) "
    "ON e.item_id = b.item_id "
    "WHERE e.invoice_id IS NULL AND e.occurred_at < b.until "
    "GROUP BY e.item_id"
)


def _chunk_usage(
    subs: Sequence[Subscription], items: dict[int, list[SubscriptionItem]]
) -> dict[int, _Usage]:
    """Unbilled usage before each subscription's period end, by item (as ``_collect``)."""
    by_kind: dict[str, tuple[list[int], list[datetime]]] = defaultdict(lambda: ([], []))
    for sub in subs:
        until = _boundary(sub.current_period_end)
        for item in items[sub.pk]:
            if item.price.is_metered:
                item_ids, boundaries = by_kind[item.price.aggregation]
                item_ids.append(item.pk)
                boundaries.append(until)
    usage = {}
    with connection.cursor() as cursor:
        for kind, (item_ids, boundaries) in by_kind.items():
            cursor.execute(
                _USAGE_SQL.format(
                    aggregate=_USAGE_AGGREGATES[Aggregation(kind)],
                    table=UsageEvent._meta.db_table,
                ),
                [item_ids, boundaries],
            )
            for item_id, quantity, event_ids in cursor.fetchall():
                usage[item_id] = _Usage(Decimal(quantity), event_ids)
    return usage


def _draft(
    sub: Subscription,
    collected: _Lines,
    *,
    actor: Any,
    on_date: date,
    fx_rate: Decimal,
    default_rate: Decimal,
    terms_default: int,
) -> _Draft:
    """The period's invoice as ``invoice_create`` and ``invoice_issue`` make it, unsaved and
    without its number: lines and totals rounded per line, dates from the customer's terms,
    the issue date's rate. Raises what those services raise for the same content."""
    customer = sub.customer
    currency = sub.currency
    minor_unit_exponent(currency)
    invoice = Invoice(
        customer=customer,
        currency=currency,
        created_by=actor,
        subscription=sub,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
        issue_date=on_date,
        due_date=on_date
        + timedelta(
            days=terms_default if customer.payment_terms is None else customer.payment_terms
        ),
        fx_rate=fx_rate,
    )
    lines = invoice_lines_build(
        invoice, collected.lines, customer=customer, default_rate=default_rate
    )
    return _Draft(sub=sub, invoice=invoice, lines=lines, collected=collected)


def _issue(
    drafts: list[_Draft],
    *,
    actor: Any,
    on_date: date,
    income_role: str = AccountRole.REVENUE,
) -> None:
    """Number, issue, post and write the drafts as ``invoice_issue`` would, in bulk: numbers
    as one consecutive block, postings in one ``journal_post_batch``, the issue-date rate, the
    outbound events written together."""
    if not drafts:
        return
    with events_batch():
        _issue_rows(drafts, actor=actor, on_date=on_date, income_role=income_role)


def _issue_rows(drafts: list[_Draft], *, actor: Any, on_date: date, income_role: str) -> None:
    numbers = document_numbers_take(series=INVOICE_SERIES, on_date=on_date, count=len(drafts))
    with connection.cursor() as cursor:
        # Ids first: the postings' keys name the invoices, the invoices their postings.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Invoice._meta.db_table, len(drafts)],
        )
        pks = [row[0] for row in cursor.fetchall()]
    accounts = _accounts()
    entries: list[EntrySpec] = []
    posted: list[Invoice] = []
    for draft, pk, number in zip(drafts, pks, numbers, strict=True):
        invoice = draft.invoice
        invoice.pk = pk
        invoice.number = number
        invoice.issue(by=actor)
        if invoice.total.amount > 0:
            posted.append(invoice)
            entries.append(
                EntrySpec(
                    lines=invoice_issue_lines(
                        currency=invoice.currency,
                        subtotal=invoice.subtotal.amount,
                        tax=invoice.tax.amount,
                        total=invoice.total.amount,
                        accounts=accounts,
                        income_role=income_role,
                    ),
                    entry_date=on_date,
                    description=f"Invoice {number} to {invoice.customer.name}",
                    source=f"billing.invoice:{pk}",
                    idempotency_key=f"billing.invoice:{pk}:issue",
                )
            )
        else:
            invoice.mark_paid()
        _cache_lines(invoice, draft.lines)
        invoice.snapshot = _snapshot(invoice)
    for invoice, entry in zip(
        posted, journal_post_batch(entries=entries, actor=actor) if entries else [], strict=True
    ):
        invoice.ledger_entry = entry
    invoices = [d.invoice for d in drafts]
    copy_insert(Invoice, invoices, with_pk=True, history_type="+", actor=actor)
    for line in (lines := [line for d in drafts for line in d.lines]):
        line.invoice_id = line.invoice.pk
    copy_insert(InvoiceLine, lines, with_pk=False)
    invoice_links_create(invoices)
    scheduled = autopay_schedule(invoices)
    if scheduled:
        after_commit(autopay_queue, scheduled)


@dataclass(frozen=True, slots=True)
class InvoiceSpec:
    """A system charge to invoice (a late fee): the customer (its terms), the currency and
    the lines."""

    customer: Customer
    currency: str
    lines: Sequence[LineInput]
    memo: str = ""


def invoices_issue_batch(
    *,
    specs: Sequence[InvoiceSpec],
    on_date: date,
    actor: Any = None,
    income_role: str = AccountRole.REVENUE,
) -> list[Invoice]:
    """Create and issue many system-charge invoices in the caller's transaction, with the
    same lines, totals, numbers, postings and snapshots as ``invoice_create`` and
    ``invoice_issue`` (``income_role`` credited, no credit check: such charges are not new
    credit), written in bulk: numbers as one block, postings through ``journal_post_batch``,
    rows and history by COPY, delivery queued after commit. Raises, writing nothing, what
    those services raise for the same content."""
    if not specs:
        return []
    rate = _Rates(on_date)
    default_rates = _default_rates([spec.customer for spec in specs])
    terms_default = system_settings().billing.payment_terms
    drafts = []
    for spec in specs:
        customer = spec.customer
        terms = terms_default if customer.payment_terms is None else customer.payment_terms
        invoice = Invoice(
            customer=customer,
            currency=spec.currency,
            created_by=_user(actor),
            issue_date=on_date,
            due_date=on_date + timedelta(days=terms),
            fx_rate=rate.get(spec.currency),
            memo=spec.memo,
        )
        lines = invoice_lines_build(
            invoice, spec.lines, customer=customer, default_rate=default_rates[customer.pk]
        )
        drafts.append(_Draft(sub=None, invoice=invoice, lines=lines))
    _issue(drafts, actor=actor, on_date=on_date, income_role=income_role)
    after_commit(_queue_deliveries, [str(d.invoice.pk) for d in drafts])
    return [d.invoice for d in drafts]


def _cache_lines(invoice: Invoice, lines: list[InvoiceLine]) -> None:
    """Make ``invoice.lines.all()`` the unsaved ``lines`` (as a prefetch would), so the
    snapshot is built by the same function as ``invoice_issue``'s without a query."""
    queryset: QuerySet[InvoiceLine] = QuerySet(InvoiceLine)
    queryset._result_cache = lines
    queryset._prefetch_done = True
    invoice._prefetched_objects_cache = {"lines": queryset}


def _mark_billed(model: type[UsageEvent | PendingItem], pairs: list[tuple[int, int]]) -> None:
    """Point each row (id, invoice id) at the invoice that bills it, in one statement."""
    if not pairs:
        return
    row_ids, invoice_ids = zip(*pairs, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} AS t SET invoice_id = v.invoice_id "  # noqa: S608  # nosec B608  # the model's own table; ids bound
            "FROM UNNEST(%s::bigint[], %s::bigint[]) AS v(id, invoice_id) WHERE t.id = v.id",
            [list(row_ids), list(invoice_ids)],
        )


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) else None


def _queue_deliveries(invoice_ids: list[str]) -> None:
    """One delivery task per invoice, published through one broker connection. Each is
    queued on its own: a refused message is logged and the others still go (as a robust
    ``on_commit`` per invoice would), and the committed invoices stand either way."""
    from billing.tasks import invoice_deliver_task

    with invoice_deliver_task.app.producer_or_acquire() as producer:
        for invoice_id in invoice_ids:
            try:
                invoice_deliver_task.apply_async(
                    kwargs={"invoice_id": invoice_id}, producer=producer
                )
            except Exception:
                logger.exception("Could not queue the delivery of invoice %s.", invoice_id)
