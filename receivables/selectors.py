"""Open receivables and their aging, computed by the database.

``as_of`` gives the picture on that date: invoices issued by then and not closed before it,
with what was still due after the payments received, customer credit applied, credit notes
issued and refunds made up to that day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
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
    Payment,
    PaymentAllocation,
    Refund,
    RefundAllocation,
)
from billing.selectors import autopay_holds
from core.aging import aging_bucket_case, aging_totals
from core.money import round_storage
from receivables.models import (
    CollectionEvent,
    CollectionPause,
    CustomerDunningPolicy,
    DunningPolicy,
    DunningStep,
)
from receivables.models_disputes import ACTIVE_DISPUTE_STATUSES, Dispute
from receivables.models_plans import Installment, PaymentPlanInvoice, PaymentPlanStatus

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
    the same filters. The database sums per currency and due date (``receivables_by_due_date``
    without a per-item amount filter); the buckets are added up here from those groups.
    """
    if min_amount is None:
        rows = receivables_by_due_date(as_of=as_of, customer=customer, currency=currency)
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


def receivables_by_due_date(
    *,
    as_of: date,
    customer: int | None = None,
    currency: str | None = None,
    due_from: date | None = None,
) -> list[tuple[str, date, Decimal, int]]:
    """``receivables_open``'s amounts due and items summed per currency and due date (a few
    hundred rows), what the aging totals and every figure of open AR by due date add up.
    For today it sums the invoices' own columns: an open invoice always has something due
    (the payment, credit-note and refund services close it at zero), so no per-row test is
    needed. A past day reads today's balances of the invoices nothing has settled since
    (``_past_rows``). A due date may come in more than one row. ``due_from``: only those due
    on or after it (today's read is then a short range of the open-items index)."""
    if as_of < timezone.localdate():
        rows = _past_rows(as_of=as_of, customer=customer, currency=currency)
        return [row for row in rows if due_from is None or row[1] >= due_from]
    base = Invoice.objects.filter(status=InvoiceStatus.OPEN, issue_date__lte=as_of)
    if due_from is not None:
        base = base.filter(due_date__gte=due_from)
    if customer:
        base = base.filter(customer_id=customer)
    if currency:
        base = base.filter(currency=currency)
    return [
        (cur, due_date, t - p - c, n)
        for cur, due_date, t, p, c, n in base.order_by()
        .values("currency", "due_date")
        .annotate(t=Sum("total"), p=Sum("amount_paid"), c=Sum("amount_credited"), n=Count("pk"))
        .values_list("currency", "due_date", "t", "p", "c", "n")
    ]


def _past_rows(
    *, as_of: date, customer: int | None, currency: str | None
) -> list[tuple[str, date, Decimal, int]]:
    """``receivables_totals_and_count``'s (currency, due date, amount, items) rows for a past
    day: what is due today, per currency and due date (open invoices from the open-items
    index; those voided or written off since the day from theirs), corrected by the invoices
    settled since (``_settled_since_rows``)."""
    base = Invoice.objects.filter(issue_date__lte=as_of)
    if customer:
        base = base.filter(customer_id=customer)
    if currency:
        base = base.filter(currency=currency)
    due = F("total") - F("amount_paid") - F("amount_credited")
    rows: list[tuple[str, date, Decimal, int]] = []
    for part in (
        base.filter(status=InvoiceStatus.OPEN),
        base.filter(
            Q(closed_at__isnull=True) | Q(closed_at__gte=_day_after_start(as_of)),
            status__in=[InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE],
            total__gt=F("amount_paid") + F("amount_credited"),
        ),
    ):
        rows.extend(
            part.order_by()
            .values("currency", "due_date")
            .annotate(s=Sum(due), n=Count("pk"))
            .values_list("currency", "due_date", "s", "n")
        )
    rows.extend(_settled_since_rows(as_of=as_of, customer=customer, currency=currency))
    return rows


def _day_after_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def _settled_since_rows(
    *, as_of: date, customer: int | None, currency: str | None
) -> list[tuple[str, date, Decimal, int]]:
    """For the invoices something settled after ``as_of`` (``_settled_after``'s sources),
    per currency and due date: what they had due on the day (where something) less what
    ``_past_rows``' first part counted for them today, and the same for the item count. One
    statement, the settlements summed per invoice and joined to the invoices (a million
    allocations to look through on a large book, not one lookup per invoice)."""
    tables = {
        "allocation": PaymentAllocation._meta.db_table,
        "payment": Payment._meta.db_table,
        "application": CreditApplication._meta.db_table,
        "note": CreditNote._meta.db_table,
        "refund_allocation": RefundAllocation._meta.db_table,
        "refund": Refund._meta.db_table,
        "invoice": Invoice._meta.db_table,
    }
    next_day = connection.ops.adapt_datetimefield_value(_day_after_start(as_of))
    filters, params = "", [as_of] * 4 + [as_of, next_day]
    if customer:
        filters += " AND i.customer_id = %s"
        params.append(customer)
    if currency:
        filters += " AND i.currency = %s"
        params.append(currency)
    sql = """
        WITH back AS (
            SELECT a.invoice_id, a.amount FROM {allocation} a
              JOIN {payment} p ON p.id = a.payment_id WHERE p.received_date > %s
            UNION ALL
            SELECT c.invoice_id, c.amount FROM {application} c WHERE c.applied_date > %s
            UNION ALL
            SELECT n.invoice_id, n.applied_to_invoice FROM {note} n
             WHERE n.issue_date > %s AND n.applied_to_invoice > 0
            UNION ALL
            SELECT r.invoice_id, -r.amount FROM {refund_allocation} r
              JOIN {refund} f ON f.id = r.refund_id WHERE f.refund_date > %s
        ), changed AS (
            SELECT invoice_id, SUM(amount) AS amount FROM back GROUP BY invoice_id
        ), dues AS (
            SELECT i.currency, i.due_date,
                   i.total - i.amount_paid - i.amount_credited AS today,
                   i.total - i.amount_paid - i.amount_credited + c.amount AS then_due,
                   CASE WHEN i.status = 'open' OR (i.status IN ('void', 'uncollectible')
                        AND i.total > i.amount_paid + i.amount_credited) THEN 1 ELSE 0 END
                       AS counted
              FROM changed c JOIN {invoice} i ON i.id = c.invoice_id
             WHERE i.issue_date <= %s AND i.status <> 'draft'
               AND (i.status IN ('open', 'paid') OR i.closed_at IS NULL OR i.closed_at >= %s)
               {filters}
        )
        SELECT currency, due_date,
               SUM(CASE WHEN then_due > 0 THEN then_due ELSE 0 END)
                   - SUM(CASE WHEN counted = 1 THEN today ELSE 0 END),
               SUM(CASE WHEN then_due > 0 THEN 1 ELSE 0 END) - SUM(counted)
          FROM dues GROUP BY currency, due_date
    """.format(filters=filters, **tables)  # noqa: S608  # nosec B608  # model tables; values bound
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    # SQLite (the quick start) sums decimals as floats: back to the columns' four places.
    return [
        (
            cur,
            due_date if isinstance(due_date, date) else date.fromisoformat(due_date),
            round_storage(Decimal(str(amount))),
            int(count),
        )
        for cur, due_date, amount, count in found
        if count or amount
    ]


# --- Collections -------------------------------------------------------------------------------


def invoice_in_dispute(invoice: Invoice) -> bool:
    """Whether an open or under-review dispute covers the invoice; dunning and late fees
    pause while one does. The collections run asks it for every invoice it would act on."""
    return Dispute.objects.filter(
        invoice_id=invoice.pk, status__in=ACTIVE_DISPUTE_STATUSES
    ).exists()


def invoices_held_from_dunning(invoice_ids: list[int]) -> set[int]:
    """Of these invoices, those dunning leaves alone: under an open or under-review dispute,
    covered by an active payment plan (the plan's own reminders and schedule apply), or with
    an autopay try scheduled (a retry may still pay it). One query each, for a whole
    collections run."""
    disputed = Dispute.objects.filter(
        invoice_id__in=invoice_ids, status__in=ACTIVE_DISPUTE_STATUSES
    ).values_list("invoice_id", flat=True)
    planned = PaymentPlanInvoice.objects.filter(
        invoice_id__in=invoice_ids, plan__status=PaymentPlanStatus.ACTIVE
    ).values_list("invoice_id", flat=True)
    return set(disputed) | set(planned) | autopay_holds(invoice_ids)


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


def collections_paused_overdue(*, as_of: date) -> int:
    """How many open invoices past due on ``as_of`` the collections worklist leaves out for
    a pause: the worklist's length is the overdue invoices (an open invoice always has
    something due) less these, a count the dashboard makes from its AR read."""
    customers, invoices = collection_pauses_active(as_of=as_of)
    if not (customers or invoices):
        return 0
    return (
        Invoice.objects.filter(status=InvoiceStatus.OPEN, due_date__lt=as_of)
        .filter(Q(customer_id__in=customers) | Q(pk__in=invoices))
        .count()
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


def customer_installments(*, customer_id: int) -> QuerySet[Installment]:
    """The installments of the customer's active plans, in due order (the customer portal)."""
    return (
        Installment.objects.filter(
            plan__customer_id=customer_id, plan__status=PaymentPlanStatus.ACTIVE
        )
        .select_related("plan")
        .order_by("due_date", "sequence")
    )


def customer_disputes(*, customer_id: int) -> QuerySet[Dispute]:
    """The customer's disputes, newest first, with their invoice (the customer portal)."""
    return (
        Dispute.objects.filter(customer_id=customer_id)
        .select_related("invoice")
        .order_by("-opened_at", "-pk")
    )
