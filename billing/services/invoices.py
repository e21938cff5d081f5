"""Invoices: draft, issue (number, ledger, PDF, email), void, write-off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, cast

from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed
from djmoney.money import Money

from billing.documents import company_details
from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, InvalidTransition, InvoiceNotEditable
from billing.models import Customer, Invoice, InvoiceLine, TaxRate
from billing.postings import (
    ar_functional_change,
    invoice_issue_lines,
    invoice_settled,
    invoice_write_off_lines,
)
from billing.services.autopay import autopay_queue, autopay_schedule
from billing.services.credit import credit_check
from billing.services.links import invoice_links_create
from billing.tax import customer_tax_rate, line_amounts
from core.commit import after_commit
from core.dates import DateKind, add_days, date_check
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import journal_post, journal_reverse
from core.money import (
    check_limit,
    minor_unit_exponent,
    round_money,
    round_storage,
    unit_price_text,
)
from core.numbering import document_number_next
from core.system_settings import system_settings

ZERO = Decimal(0)
INVOICE_SERIES = "INV"
LINE_DESCRIPTION_LENGTH = 500


@dataclass(frozen=True, slots=True)
class LineInput:
    description: str
    quantity: Decimal
    # Empty with a ``price_id``: the catalog price's amount for the quantity.
    unit_price: Decimal | None = None
    tax_rate: Decimal | None = None
    tax_inclusive: bool = False
    period_start: date | None = None
    period_end: date | None = None
    price_id: int | None = None


def _from_price(line: LineInput, currency: str) -> LineInput:
    """A line priced from the catalog: the price's currency must be the invoice's."""
    from billing.models import Price
    from billing.pricing import price_amount

    # Only lines that name a price come here.
    price = Price.objects.select_related("product").filter(pk=cast(int, line.price_id)).first()
    if price is None:
        raise BillingError(f"Price {line.price_id} does not exist.", field="lines")
    if price.currency != currency:
        raise BillingError(
            f"Price {price.pk} is in {price.currency}, the invoice in {currency}.", field="lines"
        )
    description = line.description or price.nickname or price.product.name
    if line.unit_price is not None:
        return replace(line, description=description)
    if price.type == "per_unit":
        return replace(
            line,
            description=description,
            unit_price=price.unit_amount or ZERO,
            tax_inclusive=price.tax_inclusive,
        )
    amount = price_amount(
        type=price.type,
        quantity=line.quantity,
        unit_amount=price.unit_amount,
        package_size=price.package_size,
        tiers=price.tiers,
    )
    return replace(
        line,
        description=f"{description} x {line.quantity.normalize():f}",
        quantity=Decimal(1),
        unit_price=round_money(amount, currency),
        tax_inclusive=price.tax_inclusive,
    )


def _require(actor: Any, perm: str, what: str) -> None:
    """``actor=None`` is the system itself (the billing run, a webhook); people and
    integrations always come with their user, whose role must allow the operation."""
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow you to {what}.")


def _accounts() -> dict[str, Account]:
    return {a.role: a for a in Account.objects.exclude(role=None) if a.role is not None}


def _default_rate(customer: Customer) -> Decimal:
    jurisdiction_rate = None
    if customer.tax_jurisdiction:
        jurisdiction_rate = (
            TaxRate.objects.filter(jurisdiction=customer.tax_jurisdiction)
            .values_list("rate", flat=True)
            .first()
        )
    return customer_tax_rate(
        tax_exempt=customer.tax_exempt,
        reverse_charge=customer.reverse_charge,
        jurisdiction_rate=jurisdiction_rate,
    )


def _line_check(line: LineInput, position: int, field: str) -> None:
    """Refuse a line whose figures cannot be a real line: the refusal names the input."""
    if not line.quantity.is_finite() or line.quantity < 0:
        raise BillingError(
            f"Line {position}: quantity must not be negative.", field=f"{field}.quantity"
        )
    check_limit(line.quantity, field=f"{field}.quantity")
    price = cast(Decimal, line.unit_price)
    check_limit(price, field=f"{field}.unit_price")
    if price != round_storage(price):
        raise BillingError(
            f"Line {position}: a unit price has at most 4 decimal places.",
            code="invalid_amount",
            field=f"{field}.unit_price",
        )
    # Checked before rounding: a product of 30 digits cannot be quantized.
    check_limit(line.quantity * price, field=f"{field}.unit_price")
    if line.period_start and line.period_end and line.period_end < line.period_start:
        raise BillingError(
            f"Line {position}: the period ends ({line.period_end.isoformat()}) before it "
            f"starts ({line.period_start.isoformat()}).",
            code="invalid_period",
            field=f"{field}.period_end",
        )
    if len(line.description) > LINE_DESCRIPTION_LENGTH:
        raise BillingError(
            f"Line {position}: the description is longer than {LINE_DESCRIPTION_LENGTH} "
            "characters.",
            field=f"{field}.description",
        )


def invoice_lines_build(
    invoice: Invoice, lines: Sequence[LineInput], *, customer: Customer, default_rate: Decimal
) -> list[InvoiceLine]:
    """The invoice's lines, unsaved, with its totals set: each line rounded to the currency
    (the written tax rule), totals the sums of the rounded lines. Pure but for catalog prices;
    the billing run uses it too, so both paths price a period the same way."""
    if not lines:
        raise BillingError("An invoice needs at least one line.", code="no_lines")
    currency = invoice.currency
    subtotal = tax = ZERO
    objects = []
    for position, given in enumerate(lines, start=1):
        field = f"lines[{position - 1}]"
        line = _from_price(given, currency) if given.price_id else given
        if line.unit_price is None:
            raise BillingError(
                f"Line {position}: give a unit price or a catalog price.",
                field=f"{field}.unit_price",
            )
        rate = default_rate if line.tax_rate is None else line.tax_rate
        if customer.tax_exempt or customer.reverse_charge:
            rate = ZERO
        if not ZERO <= rate <= 1:
            raise BillingError(
                f"Line {position}: tax rate {rate} is not between 0 and 1.",
                field=f"{field}.tax_rate",
            )
        _line_check(line, position, field)
        amounts = line_amounts(
            quantity=line.quantity,
            unit_price=line.unit_price,
            tax_rate=rate,
            currency=currency,
            tax_inclusive=line.tax_inclusive,
        )
        subtotal += amounts.amount
        tax += amounts.tax
        objects.append(
            InvoiceLine(
                invoice=invoice,
                position=position,
                currency=currency,
                description=line.description,
                quantity=line.quantity,
                unit_price=Money(line.unit_price, currency),
                tax_rate=rate,
                amount=Money(amounts.amount, currency),
                tax_amount=Money(amounts.tax, currency),
                period_start=line.period_start,
                period_end=line.period_end,
            )
        )
    if subtotal + tax < 0:
        raise BillingError(
            "The invoice total must not be negative; issue a credit note instead.",
            field="lines",
        )
    check_limit(subtotal + tax, field="lines")
    invoice.subtotal = Money(subtotal, currency)
    invoice.tax = Money(tax, currency)
    invoice.total = Money(subtotal + tax, currency)
    return objects


def _write_lines(invoice: Invoice, lines: Sequence[LineInput], customer: Customer) -> None:
    """Replace the draft's lines and recompute its totals."""
    objects = invoice_lines_build(
        invoice, lines, customer=customer, default_rate=_default_rate(customer)
    )
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(objects)


def _draft_check(
    *, issue_date: date | None, due_date: date | None, memo: str, lines: Sequence[LineInput]
) -> None:
    """The header of a draft from a person or an integration: dates in the window of the
    system settings, due not before issue, a memo and a line count within the limits."""
    limits = system_settings().limits
    if issue_date:
        date_check(issue_date, field="issue_date", kind=DateKind.DOCUMENT)
    if due_date:
        date_check(due_date, field="due_date", kind=DateKind.DOCUMENT)
    if issue_date and due_date and due_date < issue_date:
        raise BillingError(
            "The due date is before the issue date.", code="invalid_date", field="due_date"
        )
    if len(memo) > limits.memo_length:
        raise BillingError(
            f"The memo is longer than {limits.memo_length} characters.",
            code="too_long",
            field="memo",
        )
    if len(lines) > limits.document_lines:
        raise BillingError(
            f"An invoice has at most {limits.document_lines} lines; this one has {len(lines)}.",
            code="too_many_lines",
            field="lines",
        )


def invoice_create(
    *,
    actor: Any,
    customer_id: int,
    lines: Sequence[LineInput],
    currency: str | None = None,
    issue_date: date | None = None,
    due_date: date | None = None,
    memo: str = "",
    issue: bool = False,
    subscription_id: int | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
    override_credit_limit: bool = False,
) -> Invoice:
    """A draft invoice (issued at once when ``issue``); totals rounded to the currency."""
    _require(actor, "billing.add_invoice", "create invoices")
    customer = Customer.objects.get(pk=customer_id)
    currency = currency or customer.currency
    minor_unit_exponent(currency)
    _draft_check(issue_date=issue_date, due_date=due_date, memo=memo, lines=lines)
    with transaction.atomic():
        invoice = Invoice(
            customer=customer,
            currency=currency,
            issue_date=issue_date,
            due_date=due_date,
            memo=memo,
            created_by=actor,
            subscription_id=subscription_id,
            period_start=period_start,
            period_end=period_end,
        )
        invoice.save()
        _write_lines(invoice, lines, customer)
        invoice.save(update_fields=["subtotal", "tax", "total", "currency"])
        if issue:
            invoice = invoice_issue(
                actor=actor, invoice_id=invoice.pk, override_credit_limit=override_credit_limit
            )
    return invoice


def invoice_update_draft(
    *,
    actor: Any,
    invoice_id: int,
    lines: Sequence[LineInput],
    currency: str | None = None,
    issue_date: date | None = None,
    due_date: date | None = None,
    memo: str = "",
) -> Invoice:
    """Replace a draft's content. An issued invoice is immutable: 409 with the way out."""
    _require(actor, "billing.change_invoice", "edit invoices")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice_id)
        if invoice.status != InvoiceStatus.DRAFT:
            raise InvoiceNotEditable(
                f"Invoice {invoice.number} is {invoice.status} and can no longer be edited; "
                "issue a credit note to correct it.",
                status=invoice.status,
            )
        if currency:
            minor_unit_exponent(currency)
            invoice.currency = currency
        _draft_check(issue_date=issue_date, due_date=due_date, memo=memo, lines=lines)
        invoice.issue_date = issue_date
        invoice.due_date = due_date
        invoice.memo = memo
        _write_lines(invoice, lines, invoice.customer)
        invoice.save()
    return invoice


def _snapshot(invoice: Invoice) -> dict[str, Any]:
    """Everything the PDF shows, frozen at issue."""
    c = invoice.customer
    places = minor_unit_exponent(invoice.currency)

    def fmt(value: Decimal) -> str:
        return f"{round_money(value, invoice.currency):.{places}f}"

    return {
        "number": invoice.number,
        "currency": invoice.currency,
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "customer": {
            "name": c.name,
            "email": c.email,
            "address": [
                x
                for x in (
                    c.address_line1,
                    c.address_line2,
                    " ".join(p for p in (c.postal_code, c.city) if p),
                    c.region,
                    c.country,
                )
                if x
            ],
            "tax_id": c.tax_id,
            "reverse_charge": c.reverse_charge,
        },
        "lines": [
            {
                "description": line.description,
                "quantity": f"{line.quantity.normalize():f}",
                "unit_price": unit_price_text(line.unit_price.amount, invoice.currency),
                "tax_rate": f"{(line.tax_rate * 100).normalize():f}",
                "amount": fmt(line.amount.amount),
                "tax": fmt(line.tax_amount.amount),
            }
            for line in invoice.lines.all()
        ],
        "subtotal": fmt(invoice.subtotal.amount),
        "tax": fmt(invoice.tax.amount),
        "total": fmt(invoice.total.amount),
        "memo": invoice.memo,
        # The seller as printed on this invoice, frozen with it.
        "company": company_details(),
    }


def invoice_issue(
    *,
    actor: Any,
    invoice_id: int,
    on_date: date | None = None,
    income_role: str = AccountRole.REVENUE,
    override_credit_limit: bool = False,
) -> Invoice:
    """Issue a draft: gapless number, due date from terms, Dr AR / Cr revenue / Cr tax at
    the issue-date rate, a frozen snapshot; the PDF and email follow after commit.

    ``income_role``: the income account credited instead of revenue (receivables issues
    late-fee invoices with ``AccountRole.LATE_FEE_INCOME``).

    New revenue invoices pass the customer's credit check (``billing.services.credit``):
    refused on hold or beyond the limit unless ``override_credit_limit`` by an approver.
    A subscription period's invoice and late fees are not new credit and are not checked."""
    _require(actor, "billing.issue_invoice", "issue invoices")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice_id)
        if not can_proceed(invoice.issue):
            raise InvalidTransition(
                f"Invoice {invoice} is {invoice.status}; only drafts are issued."
            )
        if invoice.subscription_id is None and income_role == AccountRole.REVENUE:
            invoice.credit_override_by = credit_check(
                customer_id=invoice.customer_id,
                amount=invoice.total.amount,
                currency=invoice.currency,
                actor=actor,
                override=override_credit_limit,
                what=f"Invoice {invoice}",
            )
        issue_date = invoice.issue_date or on_date or timezone.localdate()
        date_check(issue_date, field="issue_date", kind=DateKind.DOCUMENT)
        terms = invoice.customer.payment_terms
        if terms is None:
            terms = system_settings().billing.payment_terms
        invoice.issue_date = issue_date
        invoice.due_date = invoice.due_date or add_days(issue_date, terms, field="issue_date")
        invoice.fx_rate = fx_rate_get(
            base=invoice.currency, quote=system_settings().functional_currency, on_date=issue_date
        )
        invoice.number = document_number_next(series=INVOICE_SERIES, on_date=issue_date)
        invoice.issue(by=actor)
        if invoice.total.amount > 0:
            invoice.ledger_entry = journal_post(
                lines=invoice_issue_lines(
                    currency=invoice.currency,
                    subtotal=invoice.subtotal.amount,
                    tax=invoice.tax.amount,
                    total=invoice.total.amount,
                    accounts=_accounts(),
                    income_role=income_role,
                ),
                entry_date=issue_date,
                description=f"Invoice {invoice.number} to {invoice.customer.name}",
                source=f"billing.invoice:{invoice.pk}",
                idempotency_key=f"billing.invoice:{invoice.pk}:issue",
                actor=actor,
            )
        else:
            invoice.mark_paid()
        invoice.snapshot = _snapshot(invoice)
        invoice.save()
        invoice_links_create([invoice])
        scheduled = autopay_schedule([invoice])
        if scheduled:
            after_commit(autopay_queue, scheduled)
        invoice_id_str = str(invoice.pk)
        # Robust: a failing mail server must not turn an issued, committed invoice into an
        # error for the caller (eager mode); the task retries by itself with a broker.
        after_commit(_queue_documents, invoice_id_str)
    return invoice


def _queue_documents(invoice_id: str) -> None:
    from billing.tasks import invoice_deliver_task

    invoice_deliver_task.delay(invoice_id=invoice_id)


def invoice_void(*, actor: Any, invoice_id: int, reason: str) -> Invoice:
    """Void an open invoice nobody has paid: its issue posting is reversed."""
    _require(actor, "billing.void_invoice", "void invoices")
    if not reason.strip():
        raise BillingError("Voiding an invoice needs a reason.", code="reason_required")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if not can_proceed(invoice.void):
            raise InvalidTransition(
                f"Invoice {invoice} is {invoice.status}; only open invoices are voided."
            )
        if invoice.amount_paid.amount or invoice.amount_credited.amount:
            raise InvalidTransition(
                f"Invoice {invoice} has payments or credits; refund or credit them first.",
            )
        invoice.void(by=actor, reason=reason)
        if invoice.ledger_entry_id:
            journal_reverse(
                entry_id=invoice.ledger_entry_id,
                actor=actor,
                reason=f"invoice {invoice.number} voided: {reason}",
                entry_date=timezone.localdate(),
                authorized_by_caller=True,
            )
        invoice.save()
    return invoice


def invoice_mark_uncollectible(*, actor: Any, invoice_id: int, reason: str) -> Invoice:
    """Write off what is left to collect: Dr bad debt / Cr AR."""
    _require(actor, "billing.write_off_invoice", "write off invoices")
    if not reason.strip():
        raise BillingError("A write-off needs a reason.", code="reason_required")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if not can_proceed(invoice.write_off):
            raise InvalidTransition(
                f"Invoice {invoice} is {invoice.status}; only open invoices are written off."
            )
        due = invoice.amount_due.amount
        invoice.write_off(by=actor, reason=reason)
        if due > 0:
            journal_post(
                lines=invoice_write_off_lines(
                    currency=invoice.currency,
                    amount=due,
                    # What AR still carries of it: nothing of a cent's fraction stays behind.
                    functional=ar_functional_change(
                        settled_before=invoice_settled(invoice),
                        settled_after=invoice.total.amount,
                        rate=invoice.fx_rate,
                    ),
                    accounts=_accounts(),
                ),
                entry_date=timezone.localdate(),
                description=f"Write-off of invoice {invoice.number}: {reason}",
                source=f"billing.invoice:{invoice.pk}",
                idempotency_key=f"billing.invoice:{invoice.pk}:write-off",
                actor=actor,
            )
        invoice.save()
    return invoice
