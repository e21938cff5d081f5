"""Receivables' part of a customer's GDPR requests (``billing.services.gdpr``): payment
plans and disputes still open block an erasure; the export lists plans, disputes, collection
pauses and collection steps; the erasure replaces the free text that addresses or describes
the person (collection and reminder emails, dispute reasons and notes, pause reasons), in
the rows and their history. Amounts, dates and states stay: they are the books'."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from billing.models import Customer
from billing.services.gdpr import CustomerGdprPart, register_customer_gdpr_part
from core.gdpr import ERASED, record_data
from receivables.models import CollectionEvent, CollectionPause
from receivables.models_disputes import ACTIVE_DISPUTE_STATUSES, Dispute
from receivables.models_plans import InstallmentReminder, PaymentPlan, PaymentPlanStatus


def _open_items(customer: Customer) -> dict[str, int]:
    return {
        "open_payment_plans": PaymentPlan.objects.filter(
            customer=customer, status=PaymentPlanStatus.ACTIVE
        ).count(),
        "open_disputes": Dispute.objects.filter(
            customer=customer, status__in=ACTIVE_DISPUTE_STATUSES
        ).count(),
    }


def _pauses(customer: Customer) -> Any:
    return CollectionPause.objects.filter(Q(customer=customer) | Q(invoice__customer=customer))


def _export(customer: Customer) -> dict[str, Any]:
    return {
        "payment_plans": [
            {
                **record_data(
                    plan, only={"id", "status", "total", "amount_paid", "first_due_date"}
                ),
                "installments": [
                    record_data(i, only={"id", "sequence", "due_date", "amount", "status"})
                    for i in plan.installments.order_by("pk")
                ],
            }
            for plan in PaymentPlan.objects.filter(customer=customer).order_by("pk")
        ],
        "disputes": [
            record_data(
                d,
                only={
                    "id",
                    "invoice",
                    "amount",
                    "reason",
                    "status",
                    "opened_at",
                    "resolved_at",
                    "resolution_note",
                },
            )
            for d in Dispute.objects.filter(customer=customer).order_by("pk")
        ],
        "collection_pauses": [
            record_data(
                p,
                only={"id", "kind", "invoice", "reason", "start_date", "until_date", "lifted_at"},
            )
            for p in _pauses(customer).order_by("pk")
        ],
        "collection_steps": [
            record_data(
                e,
                only={
                    "id",
                    "invoice",
                    "action",
                    "outcome",
                    "scheduled_date",
                    "run_date",
                    "email_to",
                    "email_subject",
                },
            )
            for e in CollectionEvent.objects.filter(invoice__customer=customer).order_by("pk")
        ],
    }


def _erase(customer: Customer) -> None:
    CollectionEvent.objects.filter(invoice__customer=customer).exclude(
        email_to="", email_body=""
    ).update(email_to="", email_body=ERASED)
    InstallmentReminder.objects.filter(installment__plan__customer=customer).update(
        email_to="", email_body=ERASED
    )
    disputes = list(Dispute.objects.filter(customer=customer).values_list("pk", flat=True))
    for rows in (
        Dispute.objects.filter(pk__in=disputes),
        Dispute.history.filter(id__in=disputes),
    ):
        rows.update(reason=ERASED)
        rows.exclude(resolution_note="").update(resolution_note=ERASED)
    pauses = list(_pauses(customer).values_list("pk", flat=True))
    CollectionPause.objects.filter(pk__in=pauses).update(reason=ERASED)
    CollectionPause.history.filter(id__in=pauses).update(reason=ERASED)


def register() -> None:
    register_customer_gdpr_part(
        CustomerGdprPart(name="receivables", open_items=_open_items, export=_export, erase=_erase)
    )
