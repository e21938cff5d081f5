"""Open receivables and their aging, computed by the database.

``as_of`` gives the picture on that date: invoices issued by then and not closed before it,
with what was still due after the payments received, credit notes issued and refunds made
up to that day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
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

from billing.enums import InvoiceStatus
from billing.models import CreditNote, Invoice, PaymentAllocation, RefundAllocation
from receivables.enums import AgingBucket

ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=19, decimal_places=4))
BUCKETS = [b.value for b in AgingBucket]


def _sum_for_invoice(qs: QuerySet, field: str) -> Coalesce:
    summed = qs.filter(invoice=OuterRef("pk")).values("invoice").annotate(s=Sum(field)).values("s")
    return Coalesce(
        Subquery(summed, output_field=DecimalField(max_digits=19, decimal_places=4)), ZERO
    )


def receivables_open(
    *,
    as_of: date,
    customer: int | None = None,
    currency: str | None = None,
    bucket: str | None = None,
    min_amount: Decimal | None = None,
) -> QuerySet[Invoice]:
    """Invoices open on ``as_of`` annotated with ``due_as_of`` and ``bucket``."""
    qs = Invoice.objects.filter(issue_date__lte=as_of).exclude(status=InvoiceStatus.DRAFT)
    # Voided or written off before the date: no longer a receivable then.
    qs = qs.exclude(
        Q(status__in=[InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE])
        & Q(closed_at__date__lte=as_of)
    )
    if customer:
        qs = qs.filter(customer_id=customer)
    if currency:
        qs = qs.filter(currency=currency)
    qs = qs.annotate(
        due_as_of=F("total")
        - _sum_for_invoice(
            PaymentAllocation.objects.filter(payment__received_date__lte=as_of), "amount"
        )
        - _sum_for_invoice(CreditNote.objects.filter(issue_date__lte=as_of), "applied_to_invoice")
        + _sum_for_invoice(
            RefundAllocation.objects.filter(refund__refund_date__lte=as_of), "amount"
        ),
        bucket=Case(
            When(due_date__gte=as_of, then=Value(AgingBucket.CURRENT.value)),
            When(due_date__gte=as_of - timedelta(days=30), then=Value(AgingBucket.DAYS_1_30.value)),
            When(
                due_date__gte=as_of - timedelta(days=60), then=Value(AgingBucket.DAYS_31_60.value)
            ),
            When(
                due_date__gte=as_of - timedelta(days=90), then=Value(AgingBucket.DAYS_61_90.value)
            ),
            default=Value(AgingBucket.DAYS_90_PLUS.value),
            output_field=CharField(),
        ),
    ).filter(due_as_of__gt=0)
    if bucket:
        qs = qs.filter(bucket=bucket)
    if min_amount is not None:
        qs = qs.filter(due_as_of__gte=min_amount)
    return qs.select_related("customer").order_by("due_date", "pk")


def receivables_totals(qs: QuerySet[Invoice]) -> dict[str, dict[str, Decimal]]:
    """Per currency: the amount due in each bucket and in all, over the whole filtered set."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {**{b: Decimal(0) for b in BUCKETS}, "total": Decimal(0)}
    )
    for row in qs.order_by().values("currency", "bucket").annotate(s=Sum("due_as_of")):
        totals[row["currency"]][row["bucket"]] += row["s"]
        totals[row["currency"]]["total"] += row["s"]
    return dict(sorted(totals.items()))
