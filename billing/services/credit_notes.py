"""Credit notes: reverse revenue and tax for part or all of an issued invoice, applied to
what the invoice still has due and, past that, to the customer's credit balance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, CurrencyMismatch, InvalidTransition
from billing.models import CreditNote, CreditNoteLine, Customer, Invoice
from billing.postings import ar_functional_change, invoice_settled
from billing.tax import line_amounts
from core.dates import DateKind, date_check
from core.exceptions import PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec, journal_post
from core.money import check_amount, format_amount, round_storage
from core.numbering import document_number_next

ZERO = Decimal(0)
CREDIT_NOTE_SERIES = "CN"


@dataclass(frozen=True, slots=True)
class CreditLineInput:
    description: str
    amount: Decimal  # net of tax, in the invoice's currency
    tax_rate: Decimal | None = None  # default: the invoice's rate when it has one rate


def _invoice_rate(invoice: Invoice) -> Decimal | None:
    rates = set(invoice.lines.values_list("tax_rate", flat=True))
    return rates.pop() if len(rates) == 1 else None


def credit_note_issue(
    *,
    actor: Any,
    invoice_id: int,
    reason: str,
    lines: Sequence[CreditLineInput] | None = None,
    issue_date: date | None = None,
    income_role: str = AccountRole.REVENUE,
) -> CreditNote:
    """Credit all of an invoice (``lines`` None: its own lines) or part of it.

    The credit reduces the invoice's amount due first (the invoice is paid when nothing is
    left); what exceeds it goes to the customer's credit balance. Posts Dr revenue, Dr tax
    payable / Cr AR (and Cr customer credit) at the rate AR carries the invoice.
    ``income_role``: the income account the invoice was issued to (late-fee income for a
    late-fee invoice), debited instead of revenue.
    """
    if actor is not None and not actor.has_perm("billing.add_creditnote"):
        raise PermissionDeniedError("Your role does not allow issuing credit notes.")
    if not reason.strip():
        raise BillingError("A credit note needs a reason.", code="reason_required")
    if issue_date is not None:
        date_check(issue_date, field="issue_date", kind=DateKind.DOCUMENT)
    on = issue_date or timezone.localdate()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
            raise InvalidTransition(
                f"Invoice {invoice} is {invoice.status}; only open or paid invoices are credited."
            )
        if invoice.issue_date and on < invoice.issue_date:
            raise BillingError(
                f"A credit note cannot be dated before its invoice ({invoice.issue_date}).",
                code="invalid_date",
                field="issue_date",
            )
        currency = invoice.currency
        if lines is None:
            rows = [
                (line.description, line.amount.amount, line.tax_rate, line.tax_amount.amount)
                for line in invoice.lines.all()
                if line.amount.amount or line.tax_amount.amount
            ]
        else:
            default_rate = _invoice_rate(invoice)
            rows = []
            for n, line in enumerate(lines, start=1):
                field = f"lines[{n - 1}]"
                rate = line.tax_rate if line.tax_rate is not None else default_rate
                if rate is None:
                    raise BillingError(
                        f"Line {n}: the invoice has several tax rates; give this line's rate.",
                        field=f"{field}.tax_rate",
                    )
                # Posted as given: 1.0005 KWD or 10.5 JPY are refused, never rounded.
                check_amount(line.amount, currency, field=f"{field}.amount")
                if line.amount <= 0:
                    raise BillingError(
                        f"Line {n}: a credited amount must be positive.", field=f"{field}.amount"
                    )
                amounts = line_amounts(
                    quantity=Decimal(1), unit_price=line.amount, tax_rate=rate, currency=currency
                )
                rows.append((line.description, amounts.amount, rate, amounts.tax))
        subtotal = sum((r[1] for r in rows), ZERO)
        tax = sum((r[3] for r in rows), ZERO)
        total = subtotal + tax
        if total <= 0:
            raise BillingError("A credit note must credit a positive amount.", field="lines")
        already = sum((c.total.amount for c in invoice.credit_notes.all()), ZERO)
        if already + total > invoice.total.amount:
            raise BillingError(
                f"{format_amount(total, currency)} would credit more than the invoice's "
                f"{format_amount(invoice.total.amount - already, currency)} not yet credited.",
                code="over_credit",
                field="lines",
            )
        to_invoice = min(total, invoice.amount_due.amount)
        to_balance = total - to_invoice
        customer = Customer.objects.select_for_update().get(pk=invoice.customer_id)
        if to_balance and customer.currency != currency:
            raise CurrencyMismatch(
                f"{format_amount(to_balance, currency)} would go to a credit balance kept in "
                f"{customer.currency}."
            )
        note = CreditNote.objects.create(
            number=document_number_next(series=CREDIT_NOTE_SERIES, on_date=on),
            invoice=invoice,
            customer=customer,
            currency=currency,
            subtotal=Money(subtotal, currency),
            tax=Money(tax, currency),
            total=Money(total, currency),
            applied_to_invoice=Money(to_invoice, currency),
            applied_to_balance=Money(to_balance, currency),
            reason=reason,
            issue_date=on,
            issued_by=actor if getattr(actor, "pk", None) else None,
        )
        CreditNoteLine.objects.bulk_create(
            [
                CreditNoteLine(
                    credit_note=note,
                    currency=currency,
                    description=d,
                    amount=Money(a, currency),
                    tax_rate=r,
                    tax_amount=Money(t, currency),
                )
                for d, a, r, t in rows
            ]
        )
        if to_invoice:
            invoice.amount_credited = invoice.amount_credited + Money(to_invoice, currency)
            if invoice.amount_due.amount == 0 and invoice.status == InvoiceStatus.OPEN:
                invoice.mark_paid()
            invoice.save(update_fields=["amount_credited", "status", "closed_at"])
        if to_balance:
            customer.credit_balance = customer.credit_balance + Money(to_balance, currency)
            customer.save(update_fields=["credit_balance"])
        note.ledger_entry = _post(
            note, invoice, subtotal, tax, to_invoice, to_balance, actor, income_role
        )
        note.save(update_fields=["ledger_entry"])
    return note


def _post(
    note: CreditNote,
    invoice: Invoice,
    subtotal: Decimal,
    tax: Decimal,
    to_invoice: Decimal,
    to_balance: Decimal,
    actor: Any,
    income_role: str = AccountRole.REVENUE,
) -> Any:
    rate = invoice.fx_rate or Decimal(1)
    accounts = {a.role: a for a in Account.objects.exclude(role=None)}
    cur = note.currency
    f_subtotal, f_tax = round_storage(subtotal * rate), round_storage(tax * rate)
    # The credit was applied to the invoice already: it settles from (now - to_invoice).
    settled = invoice_settled(invoice)
    f_invoice = ar_functional_change(
        settled_before=settled - to_invoice, settled_after=settled, rate=rate
    )
    if to_balance:
        # The balance part takes the rounding remainder so the entry balances to the last place.
        f_balance = f_subtotal + f_tax - f_invoice
    else:
        # All of it comes off AR: income (or tax, without income) takes the remainder.
        f_balance = ZERO
        if subtotal:
            f_subtotal = f_invoice - f_tax
        else:
            f_tax = f_invoice
    lines = []
    if subtotal:
        lines.append(LineSpec(accounts[income_role], cur, debit=subtotal, functional=f_subtotal))
    if tax:
        lines.append(LineSpec(accounts[AccountRole.TAX_PAYABLE], cur, debit=tax, functional=f_tax))
    if to_invoice:
        lines.append(
            LineSpec(
                accounts[AccountRole.ACCOUNTS_RECEIVABLE],
                cur,
                credit=to_invoice,
                functional=f_invoice,
            )
        )
    if to_balance:
        lines.append(
            LineSpec(
                accounts[AccountRole.CUSTOMER_CREDIT], cur, credit=to_balance, functional=f_balance
            )
        )
    return journal_post(
        lines=lines,
        entry_date=note.issue_date,
        description=f"Credit note {note.number} on invoice {invoice.number}: {note.reason}",
        source=f"billing.credit_note:{note.pk}",
        idempotency_key=f"billing.credit_note:{note.pk}",
        actor=actor if getattr(actor, "pk", None) else None,
    )
