"""Applying a customer's credit balance to one of their open invoices.

The balance is kept in the customer's currency (overpayments, credit notes past what their
invoice had due). Applying it settles the invoice as a payment would, with money already held:
Dr customer credit at the application date's rate (as a refund takes credit out) / Cr AR at the
rate the invoice carries (``ar_functional_change``); the difference is realized FX.
Lock order as ``payment_record``: the customer, then the invoice, so applications and payments
on the same balance or invoice queue rather than overdraw either.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, CurrencyMismatch, InvalidTransition
from billing.models import CreditApplication, Customer, Invoice
from billing.postings import ar_functional_change, invoice_settled
from core.dates import DateKind, date_check
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.services import LineSpec, journal_post
from core.money import check_amount, format_amount, round_storage
from core.system_settings import system_settings

ZERO = Decimal(0)
PERMISSION = "billing.record_payment"


def credit_available(invoice: Invoice) -> Decimal:
    """What of the customer's credit balance could go to ``invoice`` now (0 when none can:
    another currency, or the invoice is not open)."""
    customer = invoice.customer
    if invoice.status != InvoiceStatus.OPEN or customer.currency != invoice.currency:
        return ZERO
    return min(customer.credit_balance.amount, invoice.amount_due.amount)


def customer_credit_apply(
    *,
    actor: Any,
    invoice_id: int,
    amount: Decimal | None = None,
    applied_date: date | None = None,
) -> CreditApplication:
    """Apply ``amount`` of the customer's credit balance to the invoice (None: as much as the
    balance and the amount due allow). Refused, with nothing changed, past either of them, in
    another currency, on an invoice that is not open, or in a locked period."""
    if actor is not None and not actor.has_perm(PERMISSION):
        raise PermissionDeniedError("Your role does not allow applying customer credit.")
    if applied_date is not None and actor is not None:
        date_check(applied_date, field="applied_date", kind=DateKind.RECEIVED)
    on = applied_date or timezone.localdate()
    customer_id = Invoice.objects.values_list("customer_id", flat=True).get(pk=invoice_id)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        currency = invoice.currency
        if invoice.status != InvoiceStatus.OPEN:
            raise InvalidTransition(
                f"Invoice {invoice} is {invoice.get_status_display().lower()}; credit is "
                "applied to open invoices only."
            )
        if customer.currency != currency:
            raise CurrencyMismatch(
                f"{customer.name}'s credit balance is kept in {customer.currency}; invoice "
                f"{invoice} is in {currency}.",
                field="invoice",
            )
        balance = customer.credit_balance.amount
        due = invoice.amount_due.amount
        if balance <= 0:
            raise BillingError(
                f"{customer.name} has no credit balance to apply.",
                code="no_credit_balance",
                field="amount",
            )
        if amount is None:
            amount = min(balance, due)
        check_amount(amount, currency, field="amount")
        if amount <= 0:
            raise BillingError(
                "The amount to apply must be positive.", code="invalid_amount", field="amount"
            )
        if amount > balance:
            raise BillingError(
                f"{format_amount(amount, currency)} is more than {customer.name}'s credit "
                f"balance of {format_amount(balance, currency)}.",
                code="insufficient_credit",
                field="amount",
            )
        if amount > due:
            raise BillingError(
                f"{format_amount(amount, currency)} is more than the "
                f"{format_amount(due, currency)} invoice {invoice} still has due.",
                code="over_allocation",
                field="amount",
            )
        if invoice.issue_date and on < invoice.issue_date:
            raise BillingError(
                f"Credit cannot be applied before the invoice's date ({invoice.issue_date}).",
                code="invalid_date",
                field="applied_date",
            )
        settled = invoice_settled(invoice)
        ar_f = ar_functional_change(
            settled_before=settled, settled_after=settled + amount, rate=invoice.fx_rate
        )
        application = CreditApplication.objects.create(
            customer=customer,
            invoice=invoice,
            currency=currency,
            amount=Money(amount, currency),
            applied_date=on,
            applied_by=actor if getattr(actor, "pk", None) else None,
        )
        invoice.amount_paid = invoice.amount_paid + Money(amount, currency)
        if invoice.amount_due.amount == 0:
            invoice.mark_paid()
        invoice.save(update_fields=["amount_paid", "status", "closed_at"])
        customer.credit_balance = customer.credit_balance - Money(amount, currency)
        customer.save(update_fields=["credit_balance"])
        application.ledger_entry = _post(application, invoice, ar_f)
        application.save(update_fields=["ledger_entry"])
    return application


def _post(application: CreditApplication, invoice: Invoice, ar_f: Decimal) -> JournalEntry:
    currency = application.currency
    amount = application.amount.amount
    rate = fx_rate_get(
        base=currency, quote=system_settings().functional_currency, on_date=application.applied_date
    )
    credit_f = round_storage(amount * rate)
    accounts = {a.role: a for a in Account.objects.exclude(role=None)}
    credit, ar = accounts[AccountRole.CUSTOMER_CREDIT], accounts[AccountRole.ACCOUNTS_RECEIVABLE]
    lines = [
        LineSpec(credit, currency, debit=amount, functional=credit_f),
        LineSpec(ar, currency, credit=amount, functional=ar_f),
    ]
    difference = credit_f - ar_f
    if difference:
        # Positive: the credit taken out is worth more than the AR it clears (a gain).
        lines.append(
            LineSpec.functional_only(
                accounts[AccountRole.FX_GAIN_LOSS],
                currency,
                credit=difference if difference > 0 else ZERO,
                debit=-difference if difference < 0 else ZERO,
                memo="Realized FX gain/loss",
            )
        )
    entry: JournalEntry = journal_post(
        lines=lines,
        entry_date=application.applied_date,
        description=f"Credit balance of {application.customer.name} applied to invoice "
        f"{invoice.number}",
        source=f"billing.credit_application:{application.pk}",
        idempotency_key=f"billing.credit_application:{application.pk}",
        actor=application.applied_by,
    )
    return entry
