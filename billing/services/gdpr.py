"""GDPR for customers: the export of everything held about one (art. 15 and 20) and its
erasure by pseudonymisation (art. 17) while the invoices the law requires are kept.

Erasure replaces the customer's personal data (name, emails, address, tax id, free-text
notes) with a pseudonym, here and in every history row of the customer, and removes its
saved payment methods (each marked removed, as ``payment_method_remove`` does, a Stripe card
or PayPal wallet then detached at the processor after commit) with their holder names,
account numbers and wallet logins erased: the operator need not remove them first. Invoices,
credit notes, payments, refunds and their ledger entries are untouched (amounts, numbers,
and what an issued invoice showed: tax law keeps them), so invoices still balance and
``ledger_check`` stays clean. It is refused (409 ``erasure_open_items``) while business is
open with the customer. A second erasure answers the erased customer and changes nothing;
an erased customer is never edited again (``customer_update`` refuses).

Apps above billing (receivables: payment plans, disputes, collections) add their part with
``register_customer_gdpr_part`` (open items, export section, erasure of their own rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.enums import InvoiceStatus, PaymentStatus, SubscriptionStatus
from billing.exceptions import CustomerErased
from billing.models import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceLink,
    Payment,
    PaymentMethod,
    ProcessorAttempt,
    Refund,
    Subscription,
)
from billing.models.processors import OPEN_ATTEMPT
from billing.services.links import invoice_links_withdraw
from billing.services.payment_methods import _detached_at_processor, _queue_processor_detach
from core.commit import after_commit
from core.exceptions import NotFound
from core.gdpr import (
    ERASED,
    ERASURE,
    EXPORT,
    erasure_change_reason,
    erasure_reason_clean,
    history_data,
    open_items_refuse,
    personal_data_log,
    plain,
    record_data,
    require,
)
from core.history_guard import history_erasure_allow


@dataclass(frozen=True)
class CustomerGdprPart:
    """What an app above billing holds about a customer: ``open_items`` (kind -> count) that
    block an erasure, an ``export`` section, and the ``erase`` of its own rows (called in the
    erasure's transaction, history writes allowed)."""

    name: str
    open_items: Callable[[Customer], dict[str, int]] | None = None
    export: Callable[[Customer], Any] | None = None
    erase: Callable[[Customer], None] | None = None


_PARTS: dict[str, CustomerGdprPart] = {}


def register_customer_gdpr_part(part: CustomerGdprPart) -> None:
    _PARTS[part.name] = part


def customer_pseudonym(customer_id: int) -> dict[str, Any]:
    """What stands in for the customer's personal data once erased."""
    return {
        "name": f"Erased customer {customer_id}",
        "email": f"erased-customer-{customer_id}@erased.invalid",
        "cc_emails": [],
        "address_line1": "",
        "address_line2": "",
        "city": "",
        "region": "",
        "postal_code": "",
        "tax_id": "",
    }


# Saved methods: who holds the account, its number and the wallet's login are personal; the
# processor's token stays so the processor can be told to detach it.
_METHOD_ERASED = {"bank_account_holder": "", "bank_account_number": "", "processor_account": ""}


def _customer(customer_id: int, *, lock: bool = False) -> Customer:
    qs = Customer.objects.select_for_update() if lock else Customer.objects
    customer = qs.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id}.")
    return customer


def customer_open_items(customer: Customer) -> dict[str, int]:
    """What must be settled or closed before the customer can be erased, kind -> count."""
    items = {
        "draft_invoices": customer.invoices.filter(status=InvoiceStatus.DRAFT).count(),
        "open_invoices": customer.invoices.filter(status=InvoiceStatus.OPEN).count(),
        "credit_balance": 1 if customer.credit_balance.amount else 0,
        "active_subscriptions": customer.subscriptions.exclude(
            status=SubscriptionStatus.CANCELED
        ).count(),
        "pending_payments": customer.payments.filter(
            status__in=(PaymentStatus.PENDING, PaymentStatus.UNKNOWN)
        ).count()
        + ProcessorAttempt.objects.filter(customer=customer, status__in=OPEN_ATTEMPT).count(),
    }
    for part in _PARTS.values():
        if part.open_items is not None:
            items.update(part.open_items(customer))
    return items


# ----------------------------------------------------------------------------- export


def _method_data(method: PaymentMethod) -> dict[str, Any]:
    # As the API shows a saved method: the account number only masked, no processor token.
    data = record_data(
        method,
        only={
            "id",
            "type",
            "processor",
            "card_brand",
            "card_last4",
            "card_exp_month",
            "card_exp_year",
            "processor_account",
            "bank_account_holder",
            "bank_routing_number",
            "bank_account_last4",
            "is_default",
            "created_at",
            "detached_at",
        },
    )
    data["bank_account_masked"] = method.bank_account_masked
    return data


def customer_export(*, actor: Any, customer_id: int) -> dict[str, Any]:
    """Everything held about the customer as JSON: the record, saved payment methods (masked
    as the API shows them), summaries of its invoices, credit notes, payments, refunds and
    subscriptions, what other apps hold (payment plans, disputes, collections), and every
    history row of the customer and its methods. Logged as an export by ``actor``."""
    require(actor, "billing.export_customer", "exporting a customer's personal data")
    customer = _customer(customer_id)
    methods = list(customer.payment_methods.order_by("pk"))
    data: dict[str, Any] = {
        "subject": {"type": "customer", "id": customer.pk},
        "exported_at": plain(timezone.now()),
        "exported_by": actor.get_username(),
        "customer": record_data(customer),
        "payment_methods": [_method_data(m) for m in methods],
        "invoices": [
            record_data(
                invoice,
                only={
                    "id",
                    "number",
                    "status",
                    "currency",
                    "issue_date",
                    "due_date",
                    "subtotal",
                    "tax",
                    "total",
                    "amount_paid",
                    "amount_credited",
                    "memo",
                    "period_start",
                    "period_end",
                },
            )
            for invoice in Invoice.objects.filter(customer=customer).order_by("pk")
        ],
        "credit_notes": [
            record_data(note, only={"id", "number", "invoice", "issue_date", "total", "reason"})
            for note in CreditNote.objects.filter(customer=customer).order_by("pk")
        ],
        "payments": [
            record_data(
                payment,
                only={
                    "id",
                    "amount",
                    "amount_allocated",
                    "method",
                    "status",
                    "received_date",
                    "reference",
                    "processor",
                },
            )
            for payment in Payment.objects.filter(customer=customer).order_by("pk")
        ],
        "refunds": [
            record_data(refund, only={"id", "payment", "amount", "reason", "refund_date"})
            for refund in Refund.objects.filter(customer=customer).order_by("pk")
        ],
        "subscriptions": [
            {
                **record_data(
                    sub,
                    only={
                        "id",
                        "status",
                        "interval",
                        "currency",
                        "started_on",
                        "current_period_start",
                        "current_period_end",
                        "canceled_at",
                        "ended_on",
                    },
                ),
                "items": [
                    {"price": item.price_id, "quantity": plain(item.quantity)}
                    for item in sub.items.order_by("pk")
                ],
            }
            for sub in Subscription.objects.filter(customer=customer).order_by("pk")
        ],
    }
    for part in _PARTS.values():
        if part.export is not None:
            data[part.name] = part.export(customer)
    data["history"] = {
        "customer": history_data(Customer, [customer.pk]),
        "payment_methods": history_data(
            PaymentMethod, [m.pk for m in methods], exclude={"processor_token"}
        ),
    }
    with transaction.atomic():
        personal_data_log(actor=actor, target=customer, action=EXPORT)
    return data


# ----------------------------------------------------------------------------- erasure


def customer_erase(*, actor: Any, customer_id: int, reason: str) -> Customer:
    """Pseudonymise the customer's personal data here and in its history rows, remove its
    saved payment methods, keep its invoices and ledger entries as they are; refused while
    open items remain. Idempotent: an erased customer is answered as it is."""
    require(actor, "billing.erase_customer", "erasing a customer's personal data")
    reason = erasure_reason_clean(reason)
    with transaction.atomic():
        customer = _customer(customer_id, lock=True)
        if customer.erased_at is not None:
            return customer
        open_items_refuse(customer_open_items(customer), subject=f"Customer {customer.pk}")
        history_erasure_allow()
        now = timezone.now()
        methods = list(customer.payment_methods.select_for_update().order_by("pk"))
        for method in methods:
            fields = list(_METHOD_ERASED)
            if method.detached_at is None:
                method.detached_at = now
                method.is_default = False
                fields += ["detached_at", "is_default"]
                if _detached_at_processor(method):
                    after_commit(_queue_processor_detach, method.pk)
            for name, value in _METHOD_ERASED.items():
                setattr(method, name, value)
            method._change_reason = erasure_change_reason(reason)  # type: ignore[attr-defined]
            method._history_user = actor  # type: ignore[attr-defined]
            method.save(update_fields=fields)
        PaymentMethod.history.filter(id__in=[m.pk for m in methods]).update(**_METHOD_ERASED)
        # The other apps' rows first: the customer still holds its address, which they may
        # need to find theirs.
        for part in _PARTS.values():
            if part.erase is not None:
                part.erase(customer)
        # Hosted invoice pages show the invoice as issued (kept by law): nobody opens them
        # from an old email any more.
        invoice_links_withdraw(
            InvoiceLink.objects.filter(invoice__customer=customer),
            actor=actor,
            why=erasure_change_reason(reason),
        )
        pseudonym = customer_pseudonym(customer.pk)
        for name, value in pseudonym.items():
            setattr(customer, name, value)
        if customer.credit_hold_reason:
            customer.credit_hold_reason = ERASED
        customer.autopay = False
        customer.erased_at = now
        customer._change_reason = erasure_change_reason(reason)  # type: ignore[attr-defined]
        customer._history_user = actor  # type: ignore[attr-defined]
        customer.save()
        history = Customer.history.filter(id=customer.pk)
        history.update(**pseudonym)
        history.exclude(credit_hold_reason="").update(credit_hold_reason=ERASED)
        personal_data_log(actor=actor, target=customer, action=ERASURE, reason=reason)
    return customer


def customer_erased_refuse(customer: Customer) -> None:
    """An erased customer is never edited again (its data would come back)."""
    if customer.erased_at is not None:
        raise CustomerErased(
            f"Customer {customer.pk}'s personal data was erased (GDPR); it cannot be edited."
        )
