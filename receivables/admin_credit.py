"""The credit panel on billing's customer page: score, each factor (value, weight,
contribution), limit, exposure and credit hold. Read-only; registered through billing's
customer panel hook (billing does not import receivables). Shown to whoever may view the
customer (finance_admin, controller, auditor, ar_clerk)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from djmoney.money import Money

from billing.admin import customer_panel_register, money_display
from billing.models import Customer
from billing.services.credit import MANAGE_PERM, customer_credit_set
from core.admin_confirm import workspace_widgets
from core.admin_site import register_admin_pages
from core.exceptions import DomainError
from receivables.scoring import customer_credit_get

FACTOR_LABELS = {
    "average_days_late": "Average days late",
    "share_paid_late": "Share of invoices paid late",
    "disputes": "Disputes",
    "tenure": "Tenure (days)",
    "utilisation": "Utilisation of the limit",
}


def credit_panel(customer: Customer) -> str:
    credit = customer_credit_get(customer=customer)
    currency = customer.currency

    def money(value: object) -> str:
        return "none" if value is None else money_display(Money(value, currency))

    factors = format_html_join(
        "",
        '<tr class="credit-factor" data-factor="{}"><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td><td>{}</td></tr>",
        (
            (
                f.name,
                FACTOR_LABELS.get(f.name, f.name),
                f"{f.value:f}",
                f.weight,
                f"{f.contribution:f}",
                f.explanation,
            )
            for f in credit.score.factors
        ),
    )
    hold = (
        format_html("On hold: {}", customer.credit_hold_reason or "no reason given")
        if customer.credit_hold
        else "No"
    )
    exposure = credit.exposure
    edit = format_html(
        '<p><a class="credit-edit font-medium text-primary-600 dark:text-primary-500" '
        'href="{}">Edit credit limit and hold</a></p>',
        reverse("admin:receivables_customer_credit", args=[customer.pk]),
    )
    return format_html(
        '<div class="credit-panel">'
        '<p><strong>Score</strong> <span class="credit-score">{}</span> / 100 '
        "(as of {})</p>"
        '<table class="credit-factors"><thead><tr><th>Factor</th><th>Value</th>'
        "<th>Weight</th><th>Contribution</th><th>Why</th></tr></thead><tbody>{}</tbody>"
        "</table>"
        '<p><strong>Credit limit</strong> <span class="credit-limit">{}</span></p>'
        '<p><strong>Exposure</strong> <span class="credit-exposure">{}</span> '
        "(open {} less credit balance {}{})</p>"
        '<p><strong>Available</strong> <span class="credit-available">{}</span></p>'
        '<p><strong>Credit hold</strong> <span class="credit-hold">{}</span></p>'
        "{}</div>",
        credit.score.score,
        credit.as_of.isoformat(),
        factors,
        money(customer.credit_limit),
        money(exposure.total),
        money(exposure.open_amount),
        money(exposure.credit_balance),
        (
            f"; {', '.join(exposure.converted_from)} at {exposure.rate_date:%Y-%m-%d} rates"
            if exposure.converted_from
            else ""
        ),
        money(credit.available),
        hold,
        edit if _can_manage(customer) else "",
    )


def _can_manage(customer: Customer) -> bool:
    user = getattr(customer, "admin_viewer", None)
    return user is not None and bool(user.has_perm(MANAGE_PERM))


customer_panel_register(title="Credit", render=credit_panel)


# --- Editing the limit and the hold ----------------------------------------------------------


class CreditForm(forms.Form):
    credit_limit = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=19,
        decimal_places=4,
        label="Credit limit",
        help_text="In the customer's currency. Empty: no limit.",
    )
    credit_hold = forms.BooleanField(
        required=False,
        label="On credit hold",
        help_text="No new invoice or subscription until the hold is lifted.",
    )
    credit_hold_reason = forms.CharField(
        required=False,
        max_length=300,
        label="Reason for the hold",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to put a customer on hold; cleared when the hold is lifted.",
    )


def customer_credit_view(request: HttpRequest, customer_id: int, *, site: Any) -> HttpResponse:
    """Set the limit and hold through ``customer_credit_set``; billing.manage_credit only
    (finance_admin, approver). A refusal is shown on the form beside the field it names."""
    if not request.user.has_perm(MANAGE_PERM):
        raise PermissionDenied
    customer = get_object_or_404(Customer, pk=customer_id)
    customer_url = reverse("admin:billing_customer_change", args=[customer.pk])
    initial = {
        "credit_limit": customer.credit_limit,
        "credit_hold": customer.credit_hold,
        "credit_hold_reason": customer.credit_hold_reason,
    }
    form = CreditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            customer_credit_set(
                actor=request.user,
                customer_id=customer.pk,
                credit_limit=data["credit_limit"],
                credit_hold=data["credit_hold"],
                credit_hold_reason=data["credit_hold_reason"],
            )
        except DomainError as exc:
            field = exc.details.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Credit limit and hold of {customer.name} saved.")
            return HttpResponseRedirect(customer_url)
    workspace_widgets(form)
    context: dict[str, Any] = {
        **site.each_context(request),
        "opts": Customer._meta,
        "title": f"Credit limit and hold: {customer.name}",
        "customer": customer,
        "currency": customer.currency,
        "current_limit": (
            "No limit"
            if customer.credit_limit is None
            else money_display(Money(customer.credit_limit, customer.currency))
        ),
        "form": form,
        "customer_url": customer_url,
        "history_url": reverse("admin:billing_customer_history", args=[customer.pk]),
    }
    return TemplateResponse(request, "admin/receivables/customer_credit.html", context)


@register_admin_pages
def credit_urls(site: Any) -> list[URLPattern]:
    """The credit page, mounted by the admin site (``BackofficeAdminSite.extra_urls``)."""

    def view(request: HttpRequest, customer_id: int) -> HttpResponse:
        return customer_credit_view(request, customer_id, site=site)

    return [
        path(
            "receivables/customer/<int:customer_id>/credit/",
            site.admin_view(view),
            name="receivables_customer_credit",
        )
    ]
