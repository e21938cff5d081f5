"""The hosted invoice page: what a pay link shows the customer, without a login.

The token in the address is the only key (``billing.services.links``): a forged, expired or
revoked one gets a plain page saying so (404), never the invoice. The page shows the invoice's
figures as issued (its snapshot), its PDF, the payments received so far and how to pay by bank
transfer; a payment in flight at a processor shows as processing until the processor confirms
it. Nothing on it is written by the browser: it has no form and no script.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from billing.documents import PDF_MIMETYPE, invoice_pdf_content, invoice_pdf_store
from billing.enums import InvoiceStatus, PaymentStatus
from billing.models import PaymentAllocation, ProcessorAttempt
from billing.models.processors import OPEN_ATTEMPT
from billing.services.links import LinkRefused, invoice_link_open
from core.company import company_details
from core.money import format_amount

_HEADERS = {
    # Nothing is loaded from elsewhere and nothing runs: the page is plain HTML and our CSS.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


def _headed(response: HttpResponse) -> HttpResponse:
    for name, value in _HEADERS.items():
        response[name] = value
    return response


def _refused(request: HttpRequest, exc: LinkRefused) -> HttpResponse:
    response = render(
        request,
        "hosted/refused.html",
        {"message": exc.message, "company": company_details()},
        status=404,
    )
    return _headed(response)


@never_cache
@require_GET
def invoice_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = invoice_link_open(token=token, count_view=True)
    except LinkRefused as exc:
        return _refused(request, exc)
    invoice = link.invoice
    currency = invoice.currency
    snapshot: dict[str, Any] = invoice.snapshot or {}
    # A payment is allocated to an invoice once (``allocation_once``): one row each.
    allocations = (
        PaymentAllocation.objects.filter(
            invoice=invoice, payment__status__in=(PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
        )
        .select_related("payment")
        .order_by("payment__received_date", "pk")
    )
    paid_rows = [
        {
            "date": a.payment.received_date,
            "amount": format_amount(a.amount.amount, currency),
            "method": a.payment.get_method_display(),
        }
        for a in allocations
    ]
    processing = ProcessorAttempt.objects.filter(invoice=invoice, status__in=OPEN_ATTEMPT).exists()
    due = invoice.amount_due.amount
    context = {
        "company": company_details(),
        "invoice": invoice,
        "customer": invoice.customer,
        "lines": snapshot.get("lines", []),
        "currency": currency,
        "subtotal": format_amount(invoice.subtotal.amount, currency),
        "tax": format_amount(invoice.tax.amount, currency),
        "total": format_amount(invoice.total.amount, currency),
        "amount_due": format_amount(due, currency),
        "payments": paid_rows,
        "processing": processing,
        "open": invoice.status == InvoiceStatus.OPEN and due > 0,
        "paid": invoice.status == InvoiceStatus.PAID,
        "void": invoice.status in (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE),
        "token": token,
        "link": link,
    }
    return _headed(render(request, "hosted/invoice.html", context))


@never_cache
@require_GET
def invoice_pdf(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = invoice_link_open(token=token)
    except LinkRefused as exc:
        return _refused(request, exc)
    invoice = link.invoice
    if not invoice.pdf:  # rendered after issue by a task; not yet, so now
        invoice = invoice_pdf_store(invoice_id=invoice.pk)
    response = HttpResponse(invoice_pdf_content(invoice=invoice), content_type=PDF_MIMETYPE)
    response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
    return _headed(response)
