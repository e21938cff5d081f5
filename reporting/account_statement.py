"""A customer's statement of account: what they owed at the start of a period, every document
that changed it (invoices, payments, credit notes, refunds, voids, write-offs, reversed
payments, credit applied), a running balance and what they owe at its end, in the customer's
currency.

The balance is what the customer owes on open invoices less the credit they hold with us, so
the closing balance of a period ending today equals ``sum(open invoices' amount due) -
credit_balance``: each movement is signed by its effect on that figure (a credit note counts
whole, whether it went to the invoice or to the credit balance; credit applied moves money
from one side to the other and changes nothing, so it is listed without an amount).

Reads only billing's and the ledger's models. ``account_statement_email`` sends the PDF with
``django.core.mail.EmailMessage`` and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from billing.enums import InvoiceStatus, PaymentStatus
from billing.models import (
    CreditApplication,
    CreditNote,
    Customer,
    Invoice,
    Payment,
    Refund,
)
from billing.selectors import open_invoice_pay_links
from core.admin_confirm import amount_text
from core.company import company_details
from core.exceptions import NotFound
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry, JournalLine
from reporting.report_files import Amount, ReportRow, ReportTable
from reporting.statements import period_check

ZERO = Decimal(0)
PDF_TEMPLATE = "reporting/account_statement_pdf.html"
EMAIL_TEMPLATE = "reporting/account_statement_email.txt"
# A payment reversed by billing.services.payment_reversal keeps its row with this code.
REVERSED = "reversed"

# Order of the kinds within one day: what was charged before what settled it.
KINDS: dict[str, str] = {
    "invoice": "Invoice",
    "credit_note": "Credit note",
    "credit_applied": "Credit applied",
    "payment": "Payment",
    "payment_reversed": "Payment reversed",
    "refund": "Refund",
    "void": "Invoice voided",
    "write_off": "Written off",
}
_ORDER = {kind: n for n, kind in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class Movement:
    """One line of the statement. ``charge`` raises what the customer owes, ``credit``
    lowers it; ``memo_amount`` is an amount shown for information only (credit applied)."""

    entry_date: date
    kind: str
    reference: str
    description: str
    charge: Decimal = ZERO
    credit: Decimal = ZERO
    memo_amount: Decimal | None = None
    balance: Decimal = ZERO
    sort_id: int = 0

    @property
    def effect(self) -> Decimal:
        return self.charge - self.credit

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class AccountStatement:
    customer: Customer
    currency: str
    date_from: date
    date_to: date
    opening: Decimal
    movements: list[Movement]
    closing: Decimal
    # Documents of this customer in other currencies, left out of the statement.
    other_currencies: list[str] = field(default_factory=list)

    @property
    def charges(self) -> Decimal:
        return sum((m.charge for m in self.movements), ZERO)

    @property
    def credits(self) -> Decimal:
        return sum((m.credit for m in self.movements), ZERO)


def customer_for_statement(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", field="customer")
    return customer


def _reversal_dates(entry_ids: list[int]) -> dict[int, date]:
    """The date of the entry reversing each of ``entry_ids`` (voids, reversed payments)."""
    return dict(
        JournalEntry.objects.filter(reversal_of_id__in=entry_ids).values_list(
            "reversal_of_id", "entry_date"
        )
    )


def _write_offs(invoice_ids: list[int]) -> dict[int, tuple[date, Decimal]]:
    """Each written-off invoice's write-off entry: its date and what it took off AR."""
    keys = {f"billing.invoice:{pk}:write-off": pk for pk in invoice_ids}
    found: dict[int, tuple[date, Decimal]] = {}
    for key, entry_date, credit in JournalLine.objects.filter(
        entry__idempotency_key__in=list(keys),
        account__role=AccountRole.ACCOUNTS_RECEIVABLE,
        credit__gt=0,
    ).values_list("entry__idempotency_key", "entry__entry_date", "credit"):
        pk = keys[str(key)]
        day, amount = found.get(pk, (entry_date, ZERO))
        found[pk] = (day, amount + credit)
    return found


def _movements(customer: Customer, currency: str, date_to: date) -> list[Movement]:
    """Every movement of the customer's account in ``currency`` up to ``date_to``, unsorted
    and without balances."""
    moves: list[Movement] = []
    invoices = list(
        Invoice.objects.filter(customer=customer, currency=currency, issue_date__lte=date_to)
        .exclude(status=InvoiceStatus.DRAFT)
        .order_by("issue_date", "pk")
    )
    for inv in invoices:
        due = f", due {inv.due_date.isoformat()}" if inv.due_date else ""
        moves.append(
            Movement(
                inv.issue_date or date_to,
                "invoice",
                inv.number or "",
                f"Invoice {inv.number}{due}",
                charge=inv.total.amount,
                sort_id=inv.pk,
            )
        )
    voided = [i for i in invoices if i.status == InvoiceStatus.VOID]
    void_dates = _reversal_dates(
        [i.ledger_entry_id for i in voided if i.ledger_entry_id is not None]
    )
    for inv in voided:
        day = void_dates.get(inv.ledger_entry_id or 0) or (
            timezone.localdate(inv.closed_at) if inv.closed_at else inv.issue_date or date_to
        )
        if day <= date_to and inv.total.amount:
            moves.append(
                Movement(
                    day,
                    "void",
                    inv.number or "",
                    f"Invoice {inv.number} voided",
                    credit=inv.total.amount,
                    sort_id=inv.pk,
                )
            )
    written_off = _write_offs([i.pk for i in invoices if i.status == InvoiceStatus.UNCOLLECTIBLE])
    numbers = {i.pk: i.number or "" for i in invoices}
    for pk, (day, amount) in written_off.items():
        if day <= date_to:
            moves.append(
                Movement(
                    day,
                    "write_off",
                    numbers[pk],
                    f"Invoice {numbers[pk]} written off as uncollectible",
                    credit=amount,
                    sort_id=pk,
                )
            )
    payments = list(
        Payment.objects.filter(
            customer=customer,
            currency=currency,
            status__in=(PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED),
            received_date__lte=date_to,
        ).order_by("received_date", "pk")
    )
    for pay in payments:
        ref = pay.reference or f"Payment {pay.pk}"
        moves.append(
            Movement(
                pay.received_date,
                "payment",
                ref,
                f"Payment received ({pay.get_method_display()})",
                credit=pay.amount.amount,
                sort_id=pay.pk,
            )
        )
    reversed_payments = [p for p in payments if p.failure_code == REVERSED]
    reversal_dates = _reversal_dates(
        [p.ledger_entry_id for p in reversed_payments if p.ledger_entry_id is not None]
    )
    for pay in reversed_payments:
        day = reversal_dates.get(pay.ledger_entry_id or 0, pay.received_date)
        if day <= date_to:
            moves.append(
                Movement(
                    day,
                    "payment_reversed",
                    pay.reference or f"Payment {pay.pk}",
                    f"Payment {pay.pk} reversed: {pay.failure_message}",
                    charge=pay.amount.amount,
                    sort_id=pay.pk,
                )
            )
    for note in CreditNote.objects.filter(
        customer=customer, currency=currency, issue_date__lte=date_to
    ).select_related("invoice"):
        moves.append(
            Movement(
                note.issue_date,
                "credit_note",
                note.number,
                f"Credit note on invoice {note.invoice.number}: {note.reason}",
                credit=note.total.amount,
                sort_id=note.pk,
            )
        )
    for refund in Refund.objects.filter(
        customer=customer, currency=currency, refund_date__lte=date_to
    ):
        moves.append(
            Movement(
                refund.refund_date,
                "refund",
                f"Refund {refund.pk}",
                f"Refund: {refund.reason}",
                charge=refund.amount.amount,
                sort_id=refund.pk,
            )
        )
    for applied in CreditApplication.objects.filter(
        customer=customer, currency=currency, applied_date__lte=date_to
    ).select_related("invoice"):
        moves.append(
            Movement(
                applied.applied_date,
                "credit_applied",
                applied.invoice.number or "",
                f"Credit balance of {amount_text(applied.amount.amount, currency)} applied to "
                f"invoice {applied.invoice.number}",
                memo_amount=applied.amount.amount,
                sort_id=applied.pk,
            )
        )
    return moves


def account_statement(*, customer_id: int, date_from: date, date_to: date) -> AccountStatement:
    """The customer's statement of account for the period, both days included, in their
    currency: opening balance, movements in date order with the running balance, closing
    balance (opening + charges - credits). NotFound for an unknown customer; InvalidPeriod
    for a period that runs backwards or spans more than 20 years."""
    period_check(date_from, date_to, field_from="date_from", field_to="date_to")
    customer = customer_for_statement(customer_id)
    currency = customer.currency
    moves = sorted(
        _movements(customer, currency, date_to),
        key=lambda m: (m.entry_date, _ORDER[m.kind], m.sort_id),
    )
    opening = sum((m.effect for m in moves if m.entry_date < date_from), ZERO)
    balance = opening
    shown: list[Movement] = []
    for move in moves:
        if move.entry_date < date_from:
            continue
        balance += move.effect
        shown.append(
            Movement(
                move.entry_date,
                move.kind,
                move.reference,
                move.description,
                move.charge,
                move.credit,
                move.memo_amount,
                balance,
                move.sort_id,
            )
        )
    others = sorted(
        set(
            Invoice.objects.filter(customer=customer)
            .exclude(status=InvoiceStatus.DRAFT)
            .exclude(currency=currency)
            .values_list("currency", flat=True)
        )
        | set(
            Payment.objects.filter(customer=customer)
            .exclude(currency=currency)
            .values_list("currency", flat=True)
        )
    )
    return AccountStatement(
        customer=customer,
        currency=currency,
        date_from=date_from,
        date_to=date_to,
        opening=opening,
        movements=shown,
        closing=balance,
        other_currencies=others,
    )


def customer_balance_now(customer: Customer) -> Decimal:
    """What the customer owes today in their currency: open invoices' amount due less their
    credit balance (the figure a statement ending today closes at)."""
    due = ZERO
    for inv in Invoice.objects.filter(
        customer=customer, currency=customer.currency, status=InvoiceStatus.OPEN
    ):
        due += inv.amount_due.amount
    return due - customer.credit_balance.amount


# ---------------------------------------------------------------------------------- files


def _address(customer: Customer) -> list[str]:
    return [
        x
        for x in (
            customer.address_line1,
            customer.address_line2,
            " ".join(p for p in (customer.postal_code, customer.city) if p),
            customer.region,
            customer.country,
        )
        if x
    ]


def statement_table(statement: AccountStatement) -> ReportTable:
    """The statement as a report table (the screen, the CSV and the XLSX)."""
    c = statement.currency

    def money(value: Decimal | None) -> Amount | None:
        return None if value is None else Amount(value, c)

    rows = [
        ReportRow(
            [statement.date_from, "", "", "Opening balance", None, None, money(statement.opening)],
            "total",
        )
    ]
    for m in statement.movements:
        rows.append(
            ReportRow(
                [
                    m.entry_date,
                    m.kind_label,
                    m.reference,
                    m.description,
                    money(m.charge) if m.charge else None,
                    money(m.credit) if m.credit else None,
                    money(m.balance),
                ]
            )
        )
    rows.append(
        ReportRow(
            [
                statement.date_to,
                "",
                "",
                "Closing balance",
                money(statement.charges),
                money(statement.credits),
                money(statement.closing),
            ],
            "total",
        )
    )
    notes = [
        "Balance: what the customer owes on open invoices less the credit they hold with us "
        "(a negative balance is money we owe the customer). Credit applied moves credit onto "
        "an invoice and does not change the balance."
    ]
    if statement.other_currencies:
        notes.append(
            "Documents in other currencies are not on this statement: "
            + ", ".join(statement.other_currencies)
            + "."
        )
    customer = statement.customer
    return ReportTable(
        title=f"Statement of account: {customer.name}",
        parameters=[
            ("Customer", f"{customer.name} (#{customer.pk})"),
            ("Period", f"{statement.date_from.isoformat()} to {statement.date_to.isoformat()}"),
            ("Currency", c),
            ("Opening balance", amount_text(statement.opening, c)),
            ("Closing balance", amount_text(statement.closing, c)),
        ],
        headers=["Date", "Type", "Reference", "Description", "Charges", "Credits", "Balance"],
        rows=rows,
        notes=notes,
        filename=(
            f"statement-{customer.pk}-{statement.date_from.isoformat()}-"
            f"{statement.date_to.isoformat()}"
        ),
    )


def _display_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _pdf_context(statement: AccountStatement) -> dict[str, Any]:
    c = statement.currency
    customer = statement.customer

    def text(value: Decimal) -> str:
        return amount_text(value, c).rsplit(" ", 1)[0]

    return {
        "company": company_details(),
        "currency": c,
        "date_from": _display_date(statement.date_from),
        "date_to": _display_date(statement.date_to),
        "date_from_iso": statement.date_from.isoformat(),
        "customer": {
            "name": customer.name,
            "email": customer.email,
            "address": _address(customer),
            "tax_id": customer.tax_id,
        },
        "opening": text(statement.opening),
        "closing": text(statement.closing),
        "charges": text(statement.charges),
        "credits": text(statement.credits),
        "lines": [
            {
                "date": m.entry_date.isoformat(),
                "kind": m.kind_label,
                "reference": m.reference,
                "description": m.description,
                "charge": text(m.charge) if m.charge else "",
                "credit": text(m.credit) if m.credit else "",
                "balance": text(m.balance),
            }
            for m in statement.movements
        ],
        "other_currencies": statement.other_currencies,
        "generated": _display_date(timezone.localdate()),
    }


def statement_pdf(statement: AccountStatement) -> bytes:
    """The statement on paper in the invoice's look (its stylesheet, masthead and table);
    offline: only ``file:`` and ``data:`` URLs are fetched, as for invoices."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string(PDF_TEMPLATE, _pdf_context(statement))
    document = HTML(
        string=html,
        base_url=str(settings.BASE_DIR),
        url_fetcher=URLFetcher(allowed_protocols=("file", "data")),
    )
    pdf: bytes = document.write_pdf()
    return pdf


def statement_file_name(statement: AccountStatement) -> str:
    return f"{statement_table(statement).file_stem()}.pdf"


def account_statement_email(statement: AccountStatement) -> str:
    """Send the statement's PDF to the customer's address (and their invoice copies) with
    Django's mail; writes nothing. Returns the address it was sent to."""
    customer = statement.customer
    if not customer.email:
        raise NotFound(f"Customer {customer.name} has no email address.", field="email")
    company = company_details()
    body = render_to_string(
        EMAIL_TEMPLATE,
        {
            "company": company,
            "customer_name": customer.name,
            "date_from": _display_date(statement.date_from),
            "date_to": _display_date(statement.date_to),
            "closing": amount_text(statement.closing, statement.currency),
            "pay_links": [
                {
                    "number": invoice.number,
                    "due": amount_text(invoice.amount_due.amount, invoice.currency),
                    "url": url,
                }
                for invoice, url in open_invoice_pay_links(customer_id=customer.pk)
                if url
            ],
        },
    )
    message = EmailMessage(
        subject=f"Statement of account from {company['name']}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[customer.email],
        cc=[email for email in customer.cc_emails or [] if email],
        reply_to=[company["email"]] if company.get("email") else None,
    )
    message.attach(statement_file_name(statement), statement_pdf(statement), "application/pdf")
    message.send(fail_silently=False)
    return customer.email
