"""Recording a received payment in the admin, as the API records it: ``payment_record`` with
explicit allocations. The page proposes the allocations oldest due first across the
customer's open invoices (each editable, in the invoice's currency); what the clerk sees is
what is posted. A refusal (over-allocation, a currency mismatch, a locked period, an amount
finer than the currency's minor unit) is shown on the form in the service's words."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from billing.admin_fields import AmountInput, currency_choices
from billing.enums import AllocationOrder, InvoiceStatus, PaymentMethodType
from billing.models import Customer, Invoice
from billing.services.payments import ALLOCATION_ORDERS, AllocationInput, payment_record
from core.admin import money_display
from core.admin_confirm import workspace_widgets
from core.admin_once import FIELD as ONCE_FIELD
from core.admin_once import AlreadySubmitted, claim_once, once_token
from core.exceptions import DomainError
from core.money import round_money

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CustomerChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} · {obj.email}"


class PaymentRecordForm(forms.Form):
    customer = CustomerChoice(queryset=Customer.objects.order_by("name", "pk"))
    amount = AmountInput(help_text="As received, in the payment's currency.")
    currency = forms.ChoiceField(choices=currency_choices)
    method = forms.ChoiceField(choices=PaymentMethodType.choices, label="Payment method")
    received_date = forms.DateField(
        widget=DATE_INPUT, label="Received on", help_text="The day the money arrived."
    )
    reference = forms.CharField(
        max_length=200, required=False, help_text="Bank reference, check number."
    )


class AllocationRowForm(forms.Form):
    invoice = forms.IntegerField(widget=forms.HiddenInput)
    amount = AmountInput(required=False, label="Apply")


AllocationFormSet = forms.formset_factory(AllocationRowForm, extra=0)


@dataclass
class Row:
    invoice: Invoice
    form: forms.Form

    @property
    def due(self) -> str:
        return money_display(self.invoice.amount_due)

    @property
    def total(self) -> str:
        return money_display(self.invoice.total)


def open_invoices(customer: Customer) -> list[Invoice]:
    """The customer's open invoices in the order payments are applied (oldest due first
    unless the customer's settings say otherwise): a read, nothing locked."""
    order = ALLOCATION_ORDERS.get(
        cast(AllocationOrder, customer.payment_allocation_order),
        ALLOCATION_ORDERS[AllocationOrder.OLDEST_DUE],
    )
    return list(
        Invoice.objects.filter(customer=customer, status=InvoiceStatus.OPEN)
        .annotate(due=F("total") - F("amount_paid") - F("amount_credited"))
        .order_by(*order)
    )


def propose(
    invoices: list[Invoice], amount: Decimal | None, currency: str, first: int | None = None
) -> dict[int, Decimal]:
    """``amount`` spread over the invoices in ``currency`` in their order (``first`` first)."""
    plan: dict[int, Decimal] = {}
    if amount is None or amount <= 0:
        return plan
    ordered = sorted(invoices, key=lambda i: i.pk != first)
    left = amount
    for invoice in ordered:
        if invoice.currency != currency or left <= 0:
            continue
        part = min(left, invoice.amount_due.amount)
        if part > 0:
            plan[invoice.pk] = part
            left -= part
    return plan


def _formset(
    invoices: list[Invoice], plan: dict[int, Decimal], data: Any = None
) -> forms.BaseFormSet:
    initial = [
        {"invoice": i.pk, "amount": _text(plan[i.pk], i.currency) if i.pk in plan else None}
        for i in invoices
    ]
    formset = AllocationFormSet(data, initial=initial, prefix="alloc")
    for form in formset.forms:
        workspace_widgets(form)
        widget = form.fields["amount"].widget
        widget.attrs["class"] += " text-right"
        widget.attrs["style"] = "max-width: 10rem"
    return formset


def _add_error(form: forms.Form, rows: list[Row], allocated: list[int], exc: DomainError) -> None:
    """The service's message on the field it names: a form field, an allocation row, or the
    form as a whole."""
    field = str(exc.details.get("field") or "")
    if field in form.fields:
        form.add_error(field, exc.message)
        return
    if field.startswith("allocations[") and field.endswith("].amount"):
        index = int(field[len("allocations[") : -len("].amount")])
        if 0 <= index < len(allocated):
            for row in rows:
                if row.invoice.pk == allocated[index]:
                    row.form.add_error("amount", exc.message)
                    return
    form.add_error(None, exc.message)


def payment_record_page(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The add page of Payments: ?customer= and ?invoice= preselect (from the customer's or
    the invoice's page). "Propose" spreads the amount again; "Record" records."""
    if not request.user.has_perm("billing.record_payment"):
        raise PermissionDenied
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    invoice = _invoice_from(request)
    if request.method == "POST":
        form = PaymentRecordForm(request.POST)
        customer = _customer_from(request.POST.get("customer"))
    else:
        customer = invoice.customer if invoice else _customer_from(request.GET.get("customer"))
        initial: dict[str, Any] = {
            "received_date": timezone.localdate(),
            "method": PaymentMethodType.WIRE_TRANSFER,
        }
        if customer is not None:
            initial |= {"customer": customer.pk, "currency": customer.currency}
        if invoice is not None:
            due = invoice.amount_due.amount
            initial |= {"currency": invoice.currency, "amount": _text(due, invoice.currency)}
        form = PaymentRecordForm(initial=initial)
    workspace_widgets(form)
    invoices = open_invoices(customer) if customer is not None else []
    first = invoice.pk if invoice is not None else None
    saving = request.method == "POST" and "_save" in request.POST
    if request.method == "POST" and not saving:
        # Propose again from what was typed, replacing the rows' amounts.
        amount = form.fields["amount"].clean(request.POST.get("amount")) if _ok(form) else None
        plan = propose(invoices, amount, request.POST.get("currency", ""), first)
        formset = _formset(invoices, plan)
        form = PaymentRecordForm(initial=request.POST.dict())
        workspace_widgets(form)
    elif saving:
        formset = _formset(invoices, {}, request.POST)
    else:
        amount = form.initial.get("amount")
        plan = propose(
            invoices, Decimal(amount) if amount else None, form.initial.get("currency", ""), first
        )
        formset = _formset(invoices, plan)
    by_id = {i.pk: i for i in invoices}
    rows = [
        Row(by_id[int(f["invoice"].value())], f)
        for f in formset.forms
        if str(f["invoice"].value()).isdigit() and int(f["invoice"].value()) in by_id
    ]
    if saving and form.is_valid() and formset.is_valid():
        response = _record(model_admin, request, form, rows, invoice)
        if response is not None:
            return response
    opts = model_admin.opts
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Record a payment",
        "opts": opts,
        "form": form,
        "formset": formset,
        "rows": rows,
        "customer": customer,
        "invoice": invoice,
        "cancel_url": _back_url(invoice, customer),
        "media": model_admin.media + form.media,
        "once": once_token(),
        "once_field": ONCE_FIELD,
    }
    return TemplateResponse(request, "admin/billing/payment/record.html", context)


def _text(amount: Decimal, currency: str) -> str:
    """An amount as typed into a field, in the currency's minor units: 1631.25, 15000."""
    return str(round_money(amount, currency))


def _ok(form: forms.Form) -> bool:
    try:
        form.fields["amount"].clean(form.data.get("amount"))
    except forms.ValidationError:
        return False
    return True


def _record(
    model_admin: Any,
    request: HttpRequest,
    form: PaymentRecordForm,
    rows: list[Row],
    invoice: Invoice | None,
) -> HttpResponse | None:
    data = form.cleaned_data
    allocations = [
        AllocationInput(invoice_id=row.invoice.pk, amount=row.form.cleaned_data["amount"])
        for row in rows
        if row.form.cleaned_data.get("amount")
    ]
    try:
        with transaction.atomic():
            claim_once(request)  # a second sending of this form records nothing
            payment = payment_record(
                actor=request.user,
                customer_id=data["customer"].pk,
                amount=data["amount"],
                currency=data["currency"],
                method=data["method"],
                received_date=data["received_date"],
                reference=data.get("reference") or "",
                allocations=allocations,
            )
    except AlreadySubmitted as exc:
        messages.warning(request, exc.message)
        return HttpResponseRedirect(reverse("admin:billing_payment_changelist"))
    except DomainError as exc:
        _add_error(form, rows, [a.invoice_id for a in allocations], exc)
        return None
    model_admin.log_addition(request, payment, [{"added": {}}])
    applied = ", ".join(
        f"{money_display(Money(a.amount, payment.currency))} to {row.invoice}"
        for a in allocations
        for row in rows
        if row.invoice.pk == a.invoice_id
    )
    left = payment.amount - payment.amount_allocated
    text = f"Payment of {money_display(payment.amount)} from {payment.customer.name} recorded"
    text += f": {applied}" if applied else ""
    if left.amount:
        text += f"{';' if applied else ':'} {money_display(left)} to the customer's credit"
    messages.success(request, text + ".")
    if invoice is not None:
        return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    return HttpResponseRedirect(reverse("admin:billing_payment_change", args=[payment.pk]))


def _invoice_from(request: HttpRequest) -> Invoice | None:
    raw = request.GET.get("invoice", "")
    if not raw.isdigit():
        return None
    return Invoice.objects.select_related("customer").filter(pk=int(raw)).first()


def _customer_from(raw: Any) -> Customer | None:
    raw = str(raw or "")
    return Customer.objects.filter(pk=int(raw)).first() if raw.isdigit() else None


def _back_url(invoice: Invoice | None, customer: Customer | None) -> str:
    if invoice is not None:
        return reverse("admin:billing_invoice_change", args=[invoice.pk])
    if customer is not None:
        return reverse("admin:billing_customer_change", args=[customer.pk])
    return reverse("admin:billing_payment_changelist")
