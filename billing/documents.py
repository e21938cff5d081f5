"""Invoice documents: the PDF rendered once from the frozen snapshot, stored with its hash, and
the email that delivers it.

``invoice_pdf_render`` is pure: it sees only the snapshot taken at issue and the company
details, never live rows, so the document a customer received can always be reproduced and
never drifts. The services below it store that PDF once and send it, each idempotent under
task retries.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice
from billing.services.links import invoice_url
from core.company import company_details
from core.exceptions import Conflict
from core.money import minor_unit_exponent, round_money

PDF_TEMPLATE = "billing/invoice_pdf.html"
EMAIL_TEMPLATE = "billing/invoice_email.txt"
PDF_MIMETYPE = "application/pdf"


class InvoiceNotIssued(Conflict):
    code = "invoice_not_issued"


class InvoiceNotSendable(Conflict):
    code = "invoice_not_sendable"


class InvoicePdfIntegrityError(Exception):
    """The stored PDF is missing or no longer matches its recorded SHA-256: never re-rendered
    silently, because the customer holds the original."""


# --- Pure rendering ---------------------------------------------------------------------------


def _date_display(value: str | None) -> str:
    if not value:
        return ""
    day = date.fromisoformat(value)
    return f"{day:%B} {day.day}, {day.year}"


def _amount_display(value: str | None) -> str:
    """Thousands separators on an already rounded amount string, keeping its places."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return value
    places = max(0, -amount.as_tuple().exponent)  # type: ignore[operator]
    return f"{amount:,.{places}f}"


def _rate_display(value: str | None) -> str:
    return f"{value}%" if value not in (None, "") else ""


def _pdf_context(snapshot: dict[str, Any], company: dict[str, Any]) -> dict[str, Any]:
    customer = snapshot.get("customer") or {}
    return {
        "company": company,
        "number": snapshot.get("number") or "",
        "currency": snapshot.get("currency") or "",
        "issue_date": _date_display(snapshot.get("issue_date")),
        "due_date": _date_display(snapshot.get("due_date")),
        "customer": {
            "name": customer.get("name", ""),
            "email": customer.get("email", ""),
            "address": customer.get("address") or [],
            "tax_id": customer.get("tax_id", ""),
            "reverse_charge": bool(customer.get("reverse_charge")),
        },
        "lines": [
            {
                "description": line.get("description", ""),
                "quantity": line.get("quantity", ""),
                "unit_price": _amount_display(line.get("unit_price")),
                "tax_rate": _rate_display(line.get("tax_rate")),
                "amount": _amount_display(line.get("amount")),
            }
            for line in snapshot.get("lines") or []
        ],
        "subtotal": _amount_display(snapshot.get("subtotal")),
        "tax": _amount_display(snapshot.get("tax")),
        "total": _amount_display(snapshot.get("total")),
        "memo": snapshot.get("memo") or "",
    }


def invoice_pdf_render(snapshot: dict[str, Any], *, company: dict[str, Any]) -> bytes:
    """The invoice PDF from its frozen snapshot and the issuer's details only. Offline: the
    base URL is the project directory and only ``file:`` and ``data:`` URLs are fetched."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string(PDF_TEMPLATE, _pdf_context(snapshot, company))
    document = HTML(
        string=html,
        base_url=str(settings.BASE_DIR),
        url_fetcher=URLFetcher(allowed_protocols=("file", "data")),
    )
    pdf: bytes = document.write_pdf()
    return pdf


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- Services ---------------------------------------------------------------------------------


def invoice_pdf_content(*, invoice: Invoice) -> bytes:
    """The stored PDF's bytes, verified against ``pdf_sha256``."""
    if not invoice.pdf:
        raise InvoicePdfIntegrityError(f"Invoice {invoice} has no stored PDF.")
    try:
        with invoice.pdf.open("rb") as stored:
            content: bytes = stored.read()
    except FileNotFoundError:
        raise InvoicePdfIntegrityError(
            f"The stored PDF of invoice {invoice} ({invoice.pdf.name}) is missing."
        ) from None
    if _sha256(content) != invoice.pdf_sha256:
        raise InvoicePdfIntegrityError(
            f"The stored PDF of invoice {invoice} ({invoice.pdf.name}) does not match its "
            "recorded SHA-256."
        )
    return content


def invoice_pdf_store(*, invoice_id: int | str) -> Invoice:
    """Render the issued invoice's PDF from its snapshot and store it with its SHA-256, once.
    A PDF already stored is kept as it is (after checking its hash): never re-rendered."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status == InvoiceStatus.DRAFT or not invoice.snapshot:
            raise InvoiceNotIssued(f"Invoice {invoice} is a draft: it has no document yet.")
        if invoice.pdf:
            invoice_pdf_content(invoice=invoice)
            return invoice
        content = invoice_pdf_render(
            invoice.snapshot, company=invoice.snapshot.get("company") or company_details()
        )
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(content), save=False)
        invoice.pdf_sha256 = _sha256(content)
        try:
            invoice.save(update_fields=["pdf", "pdf_sha256"])
        except BaseException:
            invoice.pdf.storage.delete(invoice.pdf.name)
            raise
    return invoice


def _email_context(invoice: Invoice, company: dict[str, Any]) -> dict[str, Any]:
    snapshot = invoice.snapshot or {}
    places = minor_unit_exponent(invoice.currency)
    amount_due = round_money(invoice.amount_due.amount, invoice.currency)
    return {
        "company": company,
        "customer_name": invoice.customer.name,
        "number": invoice.number,
        "currency": invoice.currency,
        "total": _amount_display(snapshot.get("total")),
        "amount_due": _amount_display(f"{amount_due:.{places}f}"),
        "issue_date": _date_display(snapshot.get("issue_date")),
        "due_date": _date_display(snapshot.get("due_date")),
        "pay_url": invoice_url(invoice_id=invoice.pk),
    }


def customer_email(
    customer: Customer, *, subject: str, body: str, company: dict[str, Any]
) -> EmailMessage:
    """A message to the customer (``email``, ``cc_emails`` copied), replies to the company."""
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[customer.email],
        cc=[email for email in customer.cc_emails or [] if email],
        reply_to=[company["email"]] if company.get("email") else None,
    )


def invoice_email_send(*, invoice_id: int | str, force: bool = False) -> bool:
    """Email the stored PDF to the customer (``email`` and ``cc_emails``). Sends once: an
    invoice already emailed is skipped unless ``force`` (a resend). ``emailed_at`` is stamped
    under the row lock only after the mail server accepted the message, so a retried task
    neither loses nor doubles the email. Returns whether a message was sent."""
    invoice_pdf_store(invoice_id=invoice_id)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice_id)
        if invoice.emailed_at is not None and not force:
            return False
        if invoice.status == InvoiceStatus.VOID:
            raise InvoiceNotSendable(f"Invoice {invoice} is void: it is not sent to the customer.")
        content = invoice_pdf_content(invoice=invoice)
        company = company_details()
        message = customer_email(
            invoice.customer,
            subject=f"Invoice {invoice.number} from {company['name']}",
            body=render_to_string(EMAIL_TEMPLATE, _email_context(invoice, company)),
            company=company,
        )
        message.attach(f"{invoice.number}.pdf", content, PDF_MIMETYPE)
        message.send(fail_silently=False)
        invoice.emailed_at = timezone.now()
        invoice.save(update_fields=["emailed_at"])
    return True
