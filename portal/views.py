"""The customer portal's pages: server-rendered, phone first, no script (``portal.services``
holds the rules)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.hosted.headers import customer_page_headers
from billing.models import Customer, PaymentMethod
from billing.models.processors import mask
from billing.processors import ProcessorError
from billing.selectors import invoice_list, open_invoice_pay_links, payment_method_list
from billing.services.wallet_setup import wallet_setup_offered
from core.company import company_details
from core.exceptions import DomainError
from core.money import amount_text
from portal.models import PortalSession
from portal.services import (
    PortalRefused,
    TooManyRequests,
    card_setup_offered,
    portal_autopay_set,
    portal_card_add,
    portal_dispute_open,
    portal_enter,
    portal_link_check,
    portal_link_request,
    portal_method_default,
    portal_method_remove,
    portal_session_open,
    portal_sign_out,
    portal_wallet_add,
    portal_wallet_return,
)
from receivables.selectors import customer_disputes, customer_installments
from reporting.account_statement import (
    AccountStatement,
    account_statement,
    statement_file_name,
    statement_pdf,
)
from reporting.statements import InvalidPeriod

COOKIE = "bo_portal"


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    context = {"company": company_details(), **context}
    return customer_page_headers(render(request, template, context, status=status))


def _signed_out(request: HttpRequest, message: str, status: int = 200) -> HttpResponse:
    response = _page(request, "portal/start.html", {"message": message}, status=status)
    response.delete_cookie(COOKIE, path="/portal/")
    return response


View = Callable[..., HttpResponse]


def _signed_in(view: View) -> Callable[..., HttpResponse]:
    """Runs ``view`` with the cookie's session; otherwise the sign-in page says why."""

    @never_cache
    def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            session = portal_session_open(
                key=request.COOKIES.get(COOKIE, ""), ip=_ip(request), path=request.path
            )
        except TooManyRequests as exc:
            return _page(request, "portal/message.html", {"message": exc.message}, status=429)
        except PortalRefused as exc:
            return _signed_out(request, exc.message, status=401)
        return view(request, session, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


@never_cache
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """Ask for a link by billing email; the answer is the same whether the address is ours."""
    if request.method == "GET":
        return _page(request, "portal/start.html", {})
    try:
        portal_link_request(email=str(request.POST.get("email", ""))[:254], ip=_ip(request))
    except TooManyRequests as exc:
        return _page(request, "portal/start.html", {"error": exc.message}, status=429)
    return _page(request, "portal/message.html", {"sent": True})


@never_cache
@require_http_methods(["GET", "POST"])
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; only its POST uses the link (a mail scanner's GET uses nothing)."""
    try:
        if request.method == "GET":
            link = portal_link_check(token=token, ip=_ip(request))
            return _page(request, "portal/enter.html", {"customer": link.customer})
        entered = portal_enter(
            token=token, ip=_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")
        )
    except PortalRefused as exc:
        return _signed_out(request, exc.message, status=404)
    response = customer_page_headers(HttpResponseRedirect(reverse("portal:home"), status=303))
    response.set_cookie(
        COOKIE,
        entered.key,
        max_age=int(getattr(settings, "PORTAL_SESSION_HOURS", 8)) * 3600,
        path="/portal/",
        secure=settings.PRODUCTION,
        httponly=True,
        samesite="Lax",
    )
    return response


BRANDS = {"amex": "American Express", "diners": "Diners Club", "unionpay": "UnionPay"}


def _method_label(method: PaymentMethod) -> str:
    """``Visa ••••4242``: the brand as people write it, not Stripe's code."""
    if method.card_last4:
        brand = method.card_brand.lower()
        return f"{BRANDS.get(brand, brand.title() or 'Card')} {mask(method.card_last4)}"
    return str(method)


def _home_context(session: PortalSession) -> dict[str, Any]:
    customer: Customer = session.customer
    open_links = open_invoice_pay_links(customer_id=customer.pk)
    currency = customer.currency
    balance = sum((i.amount_due.amount for i, _ in open_links), Decimal(0))
    today = timezone.localdate()
    return {
        "customer": customer,
        "open_invoices": [
            {
                "invoice": invoice,
                "due": amount_text(invoice.amount_due.amount, invoice.currency),
                "total": amount_text(invoice.total.amount, invoice.currency),
                "url": url,
                "overdue": invoice.due_date is not None and invoice.due_date < today,
            }
            for invoice, url in open_links
        ],
        "balance": amount_text(balance, currency),
        "credit": amount_text(customer.credit_balance.amount, customer.credit_balance.currency)
        if customer.credit_balance.amount
        else "",
        "paid_invoices": [
            {"invoice": i, "total": amount_text(i.total.amount, i.currency)}
            for i in invoice_list(customer=customer.pk, status="paid")[:24]
        ],
        "methods": [
            {"method": m, "label": _method_label(m)}
            for m in payment_method_list(customer_id=customer.pk)
        ],
        "can_add_card": card_setup_offered(),
        "can_add_wallet": wallet_setup_offered(),
        "installments": [
            {"row": row, "amount": amount_text(row.amount.amount, row.currency)}
            for row in customer_installments(customer_id=customer.pk)[:24]
        ],
        "disputes": [
            {"row": row, "amount": amount_text(row.amount.amount, row.currency)}
            for row in customer_disputes(customer_id=customer.pk)[:24]
        ],
    }


@_signed_in
@require_GET
def home(request: HttpRequest, session: PortalSession) -> HttpResponse:
    notice = {
        "autopay": "Saved.",
        "method": "Saved.",
        "dispute": "Your dispute was sent.",
        "card": "Your card is being saved: it shows here once Stripe confirms it.",
        "wallet": "Your PayPal account is saved.",
    }
    return _page(
        request,
        "portal/home.html",
        {**_home_context(session), "notice": notice.get(request.GET.get("done", ""), "")},
    )


class StatementPeriod(forms.Form):
    date_from = forms.DateField(label="From")
    date_to = forms.DateField(label="To")


# A statement covers the last 90 days unless the customer picks a period.
STATEMENT_DAYS = 90


@_signed_in
@require_GET
def statement(request: HttpRequest, session: PortalSession) -> HttpResponse:
    """The customer's statement of account for a period (every invoice, payment, credit
    note, refund... with the running balance), as reporting builds it for staff, on screen
    or as its PDF; and the open items."""
    customer: Customer = session.customer
    today = timezone.localdate()
    chosen = "date_from" in request.GET or "date_to" in request.GET
    form = StatementPeriod(
        request.GET
        if chosen
        else {"date_from": today - timedelta(days=STATEMENT_DAYS), "date_to": today}
    )
    found = None
    if form.is_valid():
        try:
            found = account_statement(
                customer_id=customer.pk,
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
            )
        except InvalidPeriod as refused:
            form.add_error(None, refused.message)
    if found is not None and request.GET.get("format") == "pdf":
        response = HttpResponse(statement_pdf(found), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{statement_file_name(found)}"'
        return customer_page_headers(response)
    context = {**_home_context(session), "as_of": today, "form": form}
    if found is not None:
        context["statement"] = _statement_context(found)
    return _page(
        request, "portal/statement.html", context, status=200 if found is not None else 400
    )


def _said_once(description: str, heading: str) -> str:
    """The description without the heading the line already shows ("Invoice INV-1, due
    2027-01-06" under "Invoice INV-1": "due 2027-01-06")."""
    if heading.strip() and description.startswith(heading):
        return description[len(heading) :].lstrip(" ,·-")
    return description


def _statement_context(found: AccountStatement) -> dict[str, Any]:
    currency = found.currency

    def money(value: Decimal) -> str:
        return amount_text(value, currency) if value else ""

    query = urlencode(
        {"date_from": found.date_from.isoformat(), "date_to": found.date_to.isoformat()}
    )
    return {
        "currency": currency,
        "date_from": found.date_from,
        "date_to": found.date_to,
        "opening": amount_text(found.opening, currency),
        "charges": amount_text(found.charges, currency),
        "credits": amount_text(found.credits, currency),
        "closing": amount_text(found.closing, currency),
        "movements": [
            {
                "date": m.entry_date,
                "kind": m.kind_label,
                "reference": m.reference,
                "description": _said_once(m.description, f"{m.kind_label} {m.reference}"),
                "charge": money(m.charge),
                "credit": money(m.credit),
                "memo": amount_text(m.memo_amount, currency) if m.memo_amount else "",
                "balance": amount_text(m.balance, currency),
            }
            for m in found.movements
        ],
        "other_currencies": found.other_currencies,
        "pdf_url": f"{reverse('portal:statement')}?{query}&format=pdf",
    }


def _back(done: str) -> HttpResponse:
    return customer_page_headers(
        HttpResponseRedirect(f"{reverse('portal:home')}?done={done}", status=303)
    )


def _refusal(request: HttpRequest, session: PortalSession, exc: DomainError) -> HttpResponse:
    context = {**_home_context(session), "error": exc.message}
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    return _page(request, "portal/home.html", context, status=status)


def _processor_refusal(
    request: HttpRequest, session: PortalSession, exc: Exception, unreachable: str
) -> HttpResponse:
    """The home page saying why: the refusal's own words, else that the processor could not
    be reached (its error is not for the customer)."""
    message = getattr(exc, "message", "") or f"{unreachable}; try later."
    return _refusal(request, session, DomainError(message))


@_signed_in
@require_POST
def autopay(request: HttpRequest, session: PortalSession) -> HttpResponse:
    try:
        portal_autopay_set(session=session, on=request.POST.get("on") == "1", ip=_ip(request))
    except DomainError as exc:
        return _refusal(request, session, exc)
    return _back("autopay")


@_signed_in
@require_POST
def method_default(request: HttpRequest, session: PortalSession, method_id: int) -> HttpResponse:
    try:
        portal_method_default(session=session, method_id=method_id, ip=_ip(request))
    except DomainError as exc:
        return _refusal(request, session, exc)
    return _back("method")


@_signed_in
@require_http_methods(["GET", "POST"])
def method_remove(request: HttpRequest, session: PortalSession, method_id: int) -> HttpResponse:
    """GET asks first (a removed card is gone for good); the POST removes it."""
    if request.method == "GET":
        method = payment_method_list(customer_id=session.customer_id).filter(pk=method_id).first()
        if method is None:
            return _page(request, "portal/message.html", {"message": "No such card."}, status=404)
        return _page(
            request,
            "portal/remove.html",
            {
                "method": {"pk": method.pk, "label": _method_label(method)},
                "autopay": session.customer.autopay and method.is_default,
            },
        )
    try:
        portal_method_remove(session=session, method_id=method_id, ip=_ip(request))
    except DomainError as exc:
        return _refusal(request, session, exc)
    return _back("method")


@_signed_in
@require_POST
def method_add(request: HttpRequest, session: PortalSession) -> HttpResponse:
    """Off to Stripe's page to save a card (303)."""
    try:
        url = portal_card_add(session=session, ip=_ip(request))
    except (DomainError, ProcessorError) as exc:
        return _processor_refusal(request, session, exc, "The card page could not be opened")
    return customer_page_headers(HttpResponseRedirect(url, status=303))


@_signed_in
@require_POST
def wallet_add(request: HttpRequest, session: PortalSession) -> HttpResponse:
    """Off to PayPal to approve saving the wallet (303)."""
    try:
        url = portal_wallet_add(session=session, ip=_ip(request))
    except (DomainError, ProcessorError) as exc:
        return _processor_refusal(request, session, exc, "PayPal could not be reached")
    return customer_page_headers(HttpResponseRedirect(url, status=303))


@_signed_in
@require_GET
def wallet_return(request: HttpRequest, session: PortalSession) -> HttpResponse:
    """Back from PayPal with the approved setup token's id (``approval_token_id``)."""
    setup_token_id = str(
        request.GET.get("approval_token_id") or request.GET.get("approval_session_id") or ""
    )[:64]
    if not setup_token_id:
        return _refusal(request, session, DomainError("PayPal sent no approval; start again."))
    try:
        portal_wallet_return(session=session, setup_token_id=setup_token_id, ip=_ip(request))
    except (DomainError, ProcessorError) as exc:
        return _processor_refusal(request, session, exc, "PayPal could not be reached")
    return _back("wallet")


@_signed_in
@require_http_methods(["GET", "POST"])
def dispute_new(request: HttpRequest, session: PortalSession) -> HttpResponse:
    context = _home_context(session)
    invoices = [
        {"pk": row["invoice"].pk, "label": f"{row['invoice'].number} ({row['total']})"}
        for row in [*context["open_invoices"], *context["paid_invoices"]]
    ]
    form = {"invoice": request.GET.get("invoice", ""), "amount": "", "message": ""}
    if request.method == "POST":
        form = {k: str(request.POST.get(k, ""))[:5000] for k in ("invoice", "amount", "message")}
        try:
            portal_dispute_open(
                session=session,
                invoice_id=int(form["invoice"]) if form["invoice"].isdigit() else 0,
                amount_text=form["amount"][:40],
                message=form["message"],
                attachment=request.FILES.get("attachment"),
                ip=_ip(request),
            )
        except DomainError as exc:
            return _page(
                request,
                "portal/dispute.html",
                {"invoices": invoices, "form": form, "error": exc.message},
                status=exc.status_code if 400 <= exc.status_code < 500 else 400,
            )
        return _back("dispute")
    return _page(request, "portal/dispute.html", {"invoices": invoices, "form": form})


@_signed_in
@require_POST
def sign_out(request: HttpRequest, session: PortalSession) -> HttpResponse:
    portal_sign_out(session=session, ip=_ip(request))
    return _signed_out(request, "You are signed out.")
