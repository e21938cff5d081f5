"""Open receivables and their aging, computed by the database.

``as_of`` gives the picture on that date: invoices issued by then and not closed before it,
with what was still due after the payments received, credit notes issued and refunds made
up to that day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import (
    CreditApplication,
    CreditNote,
    Invoice,
    PaymentAllocation,
    RefundAllocation,
)
from core.aging import aging_bucket_case, aging_totals
from receivables.models import (
    CollectionEvent,
    CollectionPause,
    CustomerDunningPolicy,
    DunningPolicy,
    DunningStep,
)
from receivables.models_disputes import ACTIVE_DISPUTE_STATUSES, Dispute
from receivables.models_plans import PaymentPlanInvoice, PaymentPlanStatus

# Invoices read per query by id (the settled-since part of a past day's totals).
_CHUNK = 5000
ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=19, decimal_places=4))


def _sum_for_invoice(qs: QuerySet, field: str) -> Coalesce:
    summed = qs.filter(invoice=OuterRef("pk")).values("invoice").annotate(s=Sum(field)).values("s")
    return Coalesce(
        Subquery(summed, output_field=DecimalField(max_digits=19, decimal_places=4)), ZERO
    )


def _settled_after(as_of: date) -> tuple[tuple[QuerySet, str, int], ...]:
    """What changed invoices' amounts due after ``as_of``, each source with its amount field
    and its sign: payments received, customer credit applied, credit notes issued (less what
    the amount due falls by) and refunds made (more). An invoice's ``amount_paid`` is its
    allocations and credit applications less its refunds, ``amount_credited`` its credit
    notes; so the amount due on the day is today's plus what these put back."""
    return (
        (PaymentAllocation.objects.filter(payment__received_date__gt=as_of), "amount", 1),
        (CreditApplication.objects.filter(applied_date__gt=as_of), "amount", 1),
        (
            CreditNote.objects.filter(issue_date__gt=as_of, applied_to_invoice__gt=0),
            "applied_to_invoice",
            1,
        ),
        (RefundAllocation.objects.filter(refund__refund_date__gt=as_of), "amount", -1),
    )


def receivables_open(
    *,
    as_of: date,
    customer: int | None = None,
    currency: str | None = None,
    bucket: str | None = None,
    min_amount: Decimal | None = None,
) -> QuerySet[Invoice]:
    """Invoices open on ``as_of`` annotated with ``due_as_of`` and ``bucket``.

    For today (or later) the invoices' own balances are used, which the partial covering
    index ``billing_invoice_open_aging`` serves without touching the table. A past date takes
    today's balances and puts back the payments, credit applied, credit notes and refunds
    dated after it (``_settled_after``): a few index lookups for the invoices they touch,
    rather than every invoice's whole history.
    """
    if as_of >= timezone.localdate():
        qs = Invoice.objects.filter(status=InvoiceStatus.OPEN, issue_date__lte=as_of)
        due = F("total") - F("amount_paid") - F("amount_credited")
    else:
        # Voided or written off before the date: no longer a receivable then.
        qs = (
            Invoice.objects.filter(issue_date__lte=as_of)
            .exclude(status=InvoiceStatus.DRAFT)
            .exclude(
                Q(status__in=[InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE])
                & Q(closed_at__date__lte=as_of)
            )
        )
        changed = _settled_after(as_of)
        changed_q = Q()
        for source, _field, _sign in changed:
            changed_q |= Q(pk__in=source.values("invoice_id"))
        # What is due today, with what was settled after the day put back: only invoices
        # open today, voided or written off after the day, or settled after it can have had
        # something due then (a paid invoice settled by the day had nothing due).
        qs = qs.filter(
            Q(status__in=[InvoiceStatus.OPEN, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE])
            | changed_q
        )
        put_back: Any = ZERO
        for source, field, sign in changed:
            summed = _sum_for_invoice(source, field)
            put_back = put_back + summed if sign > 0 else put_back - summed
        due = (
            F("total")
            - F("amount_paid")
            - F("amount_credited")
            + Case(When(changed_q, then=put_back), default=ZERO)
        )
    if customer:
        qs = qs.filter(customer_id=customer)
    if currency:
        qs = qs.filter(currency=currency)
    qs = qs.annotate(
        due_as_of=due,
        bucket=aging_bucket_case(as_of),
    ).filter(due_as_of__gt=0)
    if bucket:
        qs = qs.filter(bucket=bucket)
    if min_amount is not None:
        qs = qs.filter(due_as_of__gte=min_amount)
    return qs.select_related("customer").order_by("due_date", "pk")


def receivables_totals_and_count(
    *,
    as_of: date,
    customer: int | None = None,
    currency: str | None = None,
    bucket: str | None = None,
    min_amount: Decimal | None = None,
) -> tuple[dict[str, dict[str, Decimal]], int]:
    """The per-currency bucket totals and the number of items of ``receivables_open`` with
    the same filters. The database sums per currency and due date (a few hundred groups);
    the buckets are added up here from those groups. For today, with no per-item amount
    filter, it sums the invoices' own columns: an open invoice always has something due (the
    payment, credit-note and refund services close it at zero), so no per-row test is needed.
    A past day, likewise without the amount filter, reads today's balances of the invoices
    nothing has settled since (``_past_rows``).
    """
    past = as_of < timezone.localdate()
    if min_amount is None and not past:
        base = Invoice.objects.filter(status=InvoiceStatus.OPEN, issue_date__lte=as_of)
        if customer:
            base = base.filter(customer_id=customer)
        if currency:
            base = base.filter(currency=currency)
        rows = [
            (cur, due_date, t - p - c, n)
            for cur, due_date, t, p, c, n in base.order_by()
            .values("currency", "due_date")
            .annotate(t=Sum("total"), p=Sum("amount_paid"), c=Sum("amount_credited"), n=Count("pk"))
            .values_list("currency", "due_date", "t", "p", "c", "n")
        ]
    elif min_amount is None:
        rows = _past_rows(as_of=as_of, customer=customer, currency=currency)
    else:
        rows = list(
            receivables_open(
                as_of=as_of, customer=customer, currency=currency, min_amount=min_amount
            )
            .order_by()
            .values("currency", "due_date")
            .annotate(s=Sum("due_as_of"), n=Count("pk"))
            .values_list("currency", "due_date", "s", "n")
        )
    return aging_totals(rows, as_of=as_of, bucket=bucket)


def _past_rows(
    *, as_of: date, customer: int | None, currency: str | None
) -> list[tuple[str, date, Decimal, int]]:
    """``receivables_totals_and_count``'s (currency, due date, amount, items) rows for a past
    day, in three parts. Invoices nothing has settled since the day had then what they have
    due today: open ones are summed per currency and due date from the open-items index, and
    those voided or written off since (few, from their own index) likewise. The invoices
    settled since (the payments, credits and refunds of the days after, so as many as that
    period saw) are read one by one with what the day after put back."""
    sums = [
        source.order_by()
        .values("invoice_id")
        .annotate(s=Sum(field), sign=Value(sign))
        .values_list("invoice_id", "s", "sign")
        for source, field, sign in _settled_after(as_of)
    ]
    put_back: dict[int, Decimal] = defaultdict(Decimal)
    for invoice_id, amount, sign in sums[0].union(*sums[1:], all=True):
        put_back[invoice_id] += amount if sign > 0 else -amount
    base = Invoice.objects.filter(issue_date__lte=as_of)
    if customer:
        base = base.filter(customer_id=customer)
    if currency:
        base = base.filter(currency=currency)
    unchanged = base
    for source, _field, _sign in _settled_after(as_of):
        unchanged = unchanged.exclude(pk__in=source.values("invoice_id"))
    due = F("total") - F("amount_paid") - F("amount_credited")
    not_closed_then = Q(closed_at__isnull=True) | Q(closed_at__date__gt=as_of)
    rows: list[tuple[str, date, Decimal, int]] = []
    for part in (
        unchanged.filter(status=InvoiceStatus.OPEN),
        unchanged.filter(
            not_closed_then, status__in=[InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE]
        ).filter(total__gt=F("amount_paid") + F("amount_credited")),
    ):
        rows.extend(
            part.order_by()
            .values("currency", "due_date")
            .annotate(s=Sum(due), n=Count("pk"))
            .values_list("currency", "due_date", "s", "n")
        )
    ids = sorted(put_back)
    for start in range(0, len(ids), _CHUNK):
        changed = (
            base.filter(pk__in=ids[start : start + _CHUNK])
            .exclude(status=InvoiceStatus.DRAFT)
            .filter(Q(status__in=[InvoiceStatus.OPEN, InvoiceStatus.PAID]) | not_closed_then)
            .values_list("pk", "currency", "due_date", "total", "amount_paid", "amount_credited")
            .order_by()
        )
        for pk, cur, due_date, total, paid, credited in changed:
            then = total - paid - credited + put_back[pk]
            if then > 0:
                rows.append((cur, due_date, then, 1))
    return rows


# --- Collections -------------------------------------------------------------------------------


def invoice_in_dispute(invoice: Invoice) -> bool:
    """Whether an open or under-review dispute covers the invoice; dunning and late fees
    pause while one does. The collections run asks it for every invoice it would act on."""
    return Dispute.objects.filter(
        invoice_id=invoice.pk, status__in=ACTIVE_DISPUTE_STATUSES
    ).exists()


def invoices_held_from_dunning(invoice_ids: list[int]) -> set[int]:
    """Of these invoices, those dunning leaves alone: under an open or under-review dispute,
    or covered by an active payment plan (the plan's own reminders and schedule apply).
    One query each, for a whole collections run."""
    disputed = Dispute.objects.filter(
        invoice_id__in=invoice_ids, status__in=ACTIVE_DISPUTE_STATUSES
    ).values_list("invoice_id", flat=True)
    planned = PaymentPlanInvoice.objects.filter(
        invoice_id__in=invoice_ids, plan__status=PaymentPlanStatus.ACTIVE
    ).values_list("invoice_id", flat=True)
    return set(disputed) | set(planned)


def dunning_policy_default() -> DunningPolicy | None:
    return DunningPolicy.objects.filter(is_default=True).prefetch_related("steps").first()


def dunning_policies_by_customer(customer_ids: set[int]) -> dict[int, DunningPolicy]:
    """The policy each customer is chased under (their own, or the default)."""
    policies = {p.pk: p for p in DunningPolicy.objects.prefetch_related("steps")}
    default = next((p for p in policies.values() if p.is_default), None)
    chosen = dict(
        CustomerDunningPolicy.objects.filter(customer_id__in=customer_ids).values_list(
            "customer_id", "policy_id"
        )
    )
    result = {}
    for customer_id in customer_ids:
        policy = policies.get(chosen[customer_id]) if customer_id in chosen else default
        if policy is not None:
            result[customer_id] = policy
    return result


def collection_pauses_active(*, as_of: date) -> tuple[set[int], set[int]]:
    """Customers and invoices paused (or under a promise to pay) on ``as_of``."""
    rows = (
        CollectionPause.objects.filter(start_date__lte=as_of, lifted_at__isnull=True)
        .filter(Q(until_date__isnull=True) | Q(until_date__gte=as_of))
        .values_list("customer_id", "invoice_id")
    )
    customers, invoices = set(), set()
    for customer_id, invoice_id in rows:
        if customer_id:
            customers.add(customer_id)
        if invoice_id:
            invoices.add(invoice_id)
    return customers, invoices


def collections_worklist(*, as_of: date, queryset: QuerySet | None = None) -> QuerySet[Invoice]:
    """What to chase today: open invoices past due and not paused, largest and oldest first,
    annotated with ``amount_due_value`` and the last step done
    (``last_step_name``, ``last_step_date``). Late-fee invoices are listed too."""
    customers, invoices = collection_pauses_active(as_of=as_of)
    last = CollectionEvent.objects.filter(invoice=OuterRef("pk")).order_by("-scheduled_date", "-pk")
    base = Invoice.objects.all() if queryset is None else queryset
    return (
        base.filter(status=InvoiceStatus.OPEN, due_date__lt=as_of)
        .exclude(customer_id__in=customers)
        .exclude(pk__in=invoices)
        .annotate(
            amount_due_value=F("total") - F("amount_paid") - F("amount_credited"),
            last_step_name=Subquery(last.values("step__name")[:1]),
            last_step_date=Subquery(last.values("scheduled_date")[:1]),
        )
        .filter(amount_due_value__gt=0)
        .select_related("customer")
        .order_by("-amount_due_value", "due_date", "pk")
    )


def invoice_next_step(
    *, invoice: Invoice, policy: DunningPolicy | None, done_step_ids: set[int]
) -> tuple[DunningStep, date] | None:
    """The first step of the policy not yet on the invoice's timeline, with its date."""
    if policy is None or invoice.due_date is None:
        return None
    for step in sorted(policy.steps.all(), key=lambda s: s.offset_days):
        if step.pk not in done_step_ids:
            return step, invoice.due_date + timedelta(days=step.offset_days)
    return None
