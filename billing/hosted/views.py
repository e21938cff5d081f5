"""The hosted invoice page: what a pay link shows the customer, without a login.

The token in the address is the only key (``billing.services.links``): a forged, expired or
revoked one gets a plain page saying so (404), never the invoice. The page shows the invoice's
figures as issued (its snapshot), its PDF, the payments received so far, how to pay by bank
transfer, and buttons for the ways the processors offer (``billing.services.pay_page``): each
is a plain form posting the way chosen (and an amount, where part payments are allowed) to us,
answered by a redirect to the processor's own page. The page has no script, so the
Content-Security-Policy allows none, and its forms may only go to us and to the processors'
checkout pages. A payment in flight shows as processing until the processor confirms it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from billing.documents import PDF_MIMETYPE, invoice_pdf_content, invoice_pdf_store
from billing.enums import InvoiceStatus, PaymentStatus
from billing.hosted.headers import customer_page_headers
from billing.models import InvoiceLink, PaymentAllocation
from billing.services.links import LinkRefused, invoice_link_open
from billing.services.pay_page import (
    checkout_in_progress,
    pay_options,
    pay_page_checkout,
    pay_page_paypal_return,
)
from core.company import company_details
from core.exceptions import DomainError
from core.money import amount_text
from core.system_settings import system_settings

# What the page says when the payer comes back (``?paying=`` / ``?paypal=``).
RETURNS = {
    "card": "Thank you. Your card payment is being confirmed by Stripe.",
    "crypto": "Thank you. Your crypto payment is being confirmed on the chain.",
    "processing": "Thank you. PayPal is completing your payment.",
    "declined": "PayPal declined the payment. Please choose another way to pay.",
}
RECEIVED = "Thank you. Your payment was received."


def _refused(request: HttpRequest, exc: LinkRefused) -> HttpResponse:
    response = render(
        request,
        "hosted/refused.html",
        {"message": exc.message, "company": company_details()},
        status=404,
    )
    return customer_page_headers(response)


@never_cache
@require_GET
def invoice_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = invoice_link_open(token=token, count_view=True)
    except LinkRefused as exc:
        return _refused(request, exc)
    returned = request.GET.get("paying") or request.GET.get("paypal") or ""
    return _page(request, link, token, returned=RETURNS.get(returned, ""))


def _page(
    request: HttpRequest,
    link: InvoiceLink,
    token: str,
    *,
    returned: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
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
            "amount": amount_text(a.amount.amount, currency),
            "method": a.payment.get_method_display(),
        }
        for a in allocations
    ]
    in_progress = checkout_in_progress(invoice)
    due = invoice.amount_due.amount
    is_open = invoice.status == InvoiceStatus.OPEN and due > 0
    policy = system_settings().pay_page
    context = {
        "company": company_details(),
        "invoice": invoice,
        "customer": invoice.customer,
        "lines": snapshot.get("lines", []),
        "currency": currency,
        "subtotal": amount_text(invoice.subtotal.amount, currency),
        "tax": amount_text(invoice.tax.amount, currency),
        "total": amount_text(invoice.total.amount, currency),
        "amount_due": amount_text(due, currency),
        "payments": paid_rows,
        # A checkout the payer came back from, or a charge made without them (autopay).
        "processing": bool(in_progress and (returned or not in_progress["checkout"])),
        "in_progress": in_progress,
        "returned": (
            RECEIVED
            if returned and invoice.status == InvoiceStatus.PAID
            else (returned if in_progress else "")
        ),
        "error": error,
        "options": pay_options(currency=currency) if is_open else [],
        "partial": policy.partial_payments,
        "due_value": due,
        "minimum_partial": amount_text(policy.minimum_partial, currency),
        "open": is_open,
        "paid": invoice.status == InvoiceStatus.PAID,
        "void": invoice.status in (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE),
        "token": token,
        "link": link,
    }
    return customer_page_headers(render(request, "hosted/invoice.html", context, status=status))


@never_cache
@require_POST
def invoice_pay(request: HttpRequest, token: str) -> HttpResponse:
    """The payer chose a way: off to the processor's page (303), or the page with the reason
    it cannot be done now."""
    try:
        link = invoice_link_open(token=token)
    except LinkRefused as exc:
        return _refused(request, exc)
    try:
        checkout = pay_page_checkout(
            token=token,
            option_key=str(request.POST.get("way", ""))[:20],
            amount_text=str(request.POST.get("amount", ""))[:40],
        )
    except LinkRefused as exc:
        return _refused(request, exc)
    except DomainError as exc:
        status = exc.status_code if 400 <= exc.status_code < 600 else 400
        return _page(request, link, token, error=exc.message, status=status)
    return customer_page_headers(HttpResponseRedirect(checkout.url, status=303))


@never_cache
@require_GET
def paypal_return(request: HttpRequest, token: str) -> HttpResponse:
    """PayPal sends the payer back here (``?token=<order id>``) after approving the order."""
    try:
        outcome = pay_page_paypal_return(
            token=token, order_id=str(request.GET.get("token", ""))[:200]
        )
    except LinkRefused as exc:
        return _refused(request, exc)
    page = reverse("hosted:invoice", args=[token])
    target = page if outcome in ("paid", "open") else f"{page}?paypal={outcome}"
    return customer_page_headers(HttpResponseRedirect(target, status=303))


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
    return customer_page_headers(response)
