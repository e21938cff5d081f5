"""Billing admin: customers, tax rates, invoices and payments.

Every write goes through a billing service: customers through ``customer_create`` /
``customer_update``, drafts through ``invoice_create`` / ``invoice_update_draft`` (the line
inline is turned into ``LineInput`` values), transitions through ``invoice_issue``,
``invoice_void`` and ``invoice_mark_uncollectible``. A refusal comes back as a form error or
an admin message, never as a server error. Status and money fields are always read-only, and
an issued invoice is read-only as a whole.
"""

from __future__ import annotations

import re
import smtplib
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db.models import F, Model, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django_fsm import can_proceed
from djmoney.money import Money
from unfold.admin import TabularInline

from billing.admin_fields import (
    AmountInput,
    PercentField,
    country_choices,
    currency_choices,
    parse_amount,
    percent_text,
)
from billing.admin_payments import payment_record_page
from billing.documents import (
    PDF_MIMETYPE,
    InvoicePdfIntegrityError,
    invoice_email_send,
    invoice_pdf_content,
    invoice_pdf_store,
)
from billing.enums import InvoiceStatus
from billing.models import (
    CreditApplication,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    Price,
    TaxRate,
)
from billing.services.credit_balance import PERMISSION as CREDIT_APPLY_PERMISSION
from billing.services.credit_balance import credit_available, customer_credit_apply
from billing.services.customers import EDITABLE as CUSTOMER_EDITABLE
from billing.services.customers import customer_create, customer_update
from billing.services.invoices import (
    LineInput,
    invoice_create,
    invoice_issue,
    invoice_mark_uncollectible,
    invoice_update_draft,
    invoice_void,
)
from billing.services.refunds import refund_create
from billing.services.tax_rates import tax_rate_set
from core.admin import AuditedAdmin, money_display
from core.admin_confirm import confirm_action, workspace_widgets
from core.exceptions import DomainError
from core.models import FxRate
from core.money import round_money, unit_price_text
from core.system_settings import system_settings

# --- Display helpers --------------------------------------------------------------------------


def amount_display(value: Money) -> str:
    """The amount alone, for lists that have a currency column."""
    text = money_display(value)
    return text.rsplit(" ", 1)[0] if text != "-" else text


def invoice_status_text(invoice: Invoice) -> str:
    """The status as finance staff say it: an open invoice with part of it paid or credited
    reads "Partly paid" (a display only; the state stays open)."""
    settled = invoice.amount_paid.amount + invoice.amount_credited.amount
    if invoice.status == InvoiceStatus.OPEN and 0 < settled < invoice.total.amount:
        return "Partly paid"
    return str(invoice.get_status_display())


def due_text(invoice: Invoice) -> str:
    """What is still owed; "-" for a void invoice or a draft, which owe nothing."""
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        return "-"
    return money_display(invoice.amount_due)


def _change_link(obj: Model, label: str) -> str:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label)


def _entry_link(entry_id: int | None) -> str:
    if entry_id is None:
        return "-"
    url = reverse("admin:ledger_journalentry_change", args=[entry_id])
    return format_html('<a href="{}">JE-{}</a>', url, entry_id)


class ReadOnlyInline(TabularInline):
    """Rows shown inside their parent, never added, changed or deleted there."""

    extra = 0
    can_delete = False
    # The caption repeating each row's title adds nothing to a read-only row.
    hide_title = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyFormsetsMixin:
    """Inline formsets are never saved by the admin: the parent's service writes."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


# --- Customers --------------------------------------------------------------------------------


class CustomerInvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = (
        "invoice_link",
        "status_text",
        "issue_date",
        "due_date",
        "total_display",
        "due_display",
    )
    readonly_fields = fields
    verbose_name_plural = "Invoices"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return super().get_queryset(request).order_by("-created_at", "-pk")

    @admin.display(description="Invoice")
    def invoice_link(self, invoice: Invoice) -> str:
        return _change_link(invoice, str(invoice))

    @admin.display(description="Total")
    def total_display(self, invoice: Invoice) -> str:
        return money_display(invoice.total)

    @admin.display(description="Status")
    def status_text(self, invoice: Invoice) -> str:
        return invoice_status_text(invoice)

    @admin.display(description="Amount due")
    def due_display(self, invoice: Invoice) -> str:
        return due_text(invoice)


class CustomerOpenItemsInline(CustomerInvoiceInline):
    """The customer's open invoices, oldest due first: what is still to collect."""

    tab = True
    verbose_name_plural = "Open items"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return (
            super()
            .get_queryset(request)
            .filter(status=InvoiceStatus.OPEN)
            .order_by("due_date", "issue_date", "pk")
        )


class CustomerAllInvoicesInline(CustomerInvoiceInline):
    tab = True
    verbose_name_plural = "All invoices"


class CustomerPaymentInline(ReadOnlyInline):
    """The customer's payments, newest first, with what went to credit."""

    model = Payment
    tab = True
    fields = ("payment_link", "method_label", "amount_display", "to_credit_display", "reference")
    readonly_fields = fields
    verbose_name_plural = "Payments"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).order_by("-received_date", "-pk")

    @admin.display(description="Received")
    def payment_link(self, payment: Payment) -> str:
        return _change_link(payment, date_format(payment.received_date))

    @admin.display(description="Method")
    def method_label(self, payment: Payment) -> str:
        return str(payment.get_method_display())

    @admin.display(description="Amount")
    def amount_display(self, payment: Payment) -> str:
        return money_display(payment.amount)

    @admin.display(description="To credit")
    def to_credit_display(self, payment: Payment) -> str:
        return money_display(payment.amount - payment.amount_allocated)


class EmailListField(forms.CharField):
    """A list of email addresses typed separated by commas (stored as a JSON list)."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    # Its value is the list (a JSONField's), not the text the CharField it extends cleans to.
    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return value
        return [part.strip() for part in (value or "").split(",") if part.strip()]

    def validate(self, value: list[str]) -> None:
        for email in value:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"{email!r} is not an email address.") from None


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class CustomerForm(forms.ModelForm):
    cc_emails = EmailListField(
        required=False,
        label="Cc emails",
        help_text="More invoice recipients, separated by commas.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("cc_emails", "currency", "country", "time_zone"):
            if name in self.fields:
                workspace_widgets_for(self, name)
        if "currency" in self.fields and not self.instance.pk and not self.is_bound:
            # A new customer is billed in the company's currency unless the clerk picks another.
            self.fields["currency"].initial = str(system_settings().billing.currency)

    class Meta:
        model = Customer
        fields = tuple(sorted(CUSTOMER_EDITABLE))
        help_texts = {
            "currency": "Fixed once the customer has invoices or payments.",
            "payment_terms": "Days; empty: the system default.",
            "country": "EU VAT ids are checked against it.",
            "tax_id": "EU VAT and US EIN numbers are validated and stored compact.",
            "time_zone": "Autopay retries are made in its working day; empty: the company's.",
        }
        widgets = {
            # Django takes a callable for choices (evaluated on render); the stubs do not.
            "currency": forms.Select(choices=currency_choices),  # type: ignore[arg-type]
            "country": forms.Select(
                choices=lambda: [("", "-"), *country_choices()]  # type: ignore[arg-type]
            ),
            "time_zone": forms.Select(
                choices=lambda: [("", "-"), *time_zone_choices()]  # type: ignore[arg-type]
            ),
        }


# Sections other apps add to the customer page (receivables' credit panel). Billing may not
# import those apps, so they register here: a title and a function of the customer that
# returns HTML built with ``format_html`` (escaped), shown read-only on the change page
# (``customer.admin_viewer`` is the user looking at it).
CustomerPanel = Callable[[Customer], str]
CUSTOMER_PANELS: dict[str, tuple[str, CustomerPanel]] = {}


def customer_panel_register(*, title: str, render: CustomerPanel) -> None:
    """Show ``render(customer)`` under ``title`` on the customer's admin page (once per
    title: registering again replaces it). A domain error while rendering (a missing FX
    rate) is shown in the panel's place, never as a server error."""

    @admin.display(description=title)
    def panel(customer: Customer) -> str:
        try:
            return render(customer)
        except DomainError as exc:
            return format_html('<p class="errornote">{}</p>', exc.message)

    CUSTOMER_PANELS["panel_" + "_".join(title.lower().split())] = (title, panel)


@admin.register(Customer)
class CustomerAdmin(ReadOnlyFormsetsMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; add/change for
    finance_admin and ar_clerk (through ``customer_create`` / ``customer_update``, which
    validate tax ids and lock the currency once documents exist). The credit balance is
    moved by payments and credit notes only. Never deleted: invoices point at customers."""

    list_display = (
        "name",
        "email",
        "currency",
        "terms_display",
        "credit_balance_amount",
        "tax_id",
    )
    list_filter = ("currency", "country", "tax_exempt", "reverse_charge", "acquisition_channel")
    search_fields = ("name", "email", "tax_id")
    form = CustomerForm
    change_form_template = "admin/billing/customer/change_form.html"
    readonly_fields = ("credit_balance_display", "created_at")
    inlines = (CustomerOpenItemsInline, CustomerAllInvoicesInline, CustomerPaymentInline)

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("name", "email", "cc_emails", "currency", "payment_terms")}),
            (
                "Address",
                {
                    "fields": (
                        "address_line1",
                        "address_line2",
                        "postal_code",
                        "city",
                        "region",
                        "country",
                    )
                },
            ),
            ("Tax", {"fields": ("tax_jurisdiction", "tax_id", "tax_exempt", "reverse_charge")}),
            ("Acquisition", {"fields": ("acquisition_channel", "campaign", "acquired_on")}),
            ("Payment collection", {"fields": ("autopay", "time_zone")}),
        ]
        if obj is not None:
            fieldsets.append(("Balance", {"fields": ("credit_balance_display", "created_at")}))
            for name, (title, _panel) in CUSTOMER_PANELS.items():
                fieldsets.append((title, {"fields": (name,)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + tuple(CUSTOMER_PANELS) if obj is not None else fields

    def __getattr__(self, name: str) -> Any:
        # The registered panels are read-only fields of this admin, looked up by name.
        if name in CUSTOMER_PANELS:
            return CUSTOMER_PANELS[name][1]
        raise AttributeError(name)

    def get_inline_instances(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        customer = super().get_object(request, object_id, from_field)
        if customer is not None:
            # Panels see who is looking, to offer only the links that person may follow.
            customer.admin_viewer = request.user
        return customer

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Customer | None = None,
    ) -> HttpResponse:
        tools = []
        if obj is not None and request.user.has_perm("billing.record_payment"):
            link = reverse("admin:billing_payment_add") + f"?customer={obj.pk}"
            tools.append({"title": "Record payment", "link": link, "icon": "payments"})
        if obj is not None and request.user.has_perm("billing.view_customer"):
            try:  # the reporting app's screen, when it is installed
                link = reverse("admin:reporting_account_statement", args=[obj.pk])
            except NoReverseMatch:
                link = ""
            if link:
                tools.append({"title": "Statement of account", "link": link, "icon": "summarize"})
        context["customer_tools"] = tools
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Terms")
    def terms_display(self, customer: Customer) -> str:
        if customer.payment_terms is None:
            return f"Default (net {system_settings().billing.payment_terms})"
        return f"Net {customer.payment_terms}"

    @admin.display(description="Credit balance", ordering="credit_balance")
    def credit_balance_display(self, customer: Customer) -> str:
        return money_display(customer.credit_balance)

    @admin.display(description="Credit balance", ordering="credit_balance")
    def credit_balance_amount(self, customer: Customer) -> str:
        return money_display(customer.credit_balance)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        if change:
            fields = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in CUSTOMER_EDITABLE
            }
            if fields.get("acquired_on", True) is None:
                del fields["acquired_on"]  # emptied: kept as it was
            if not fields:
                return
            saved = customer_update(actor=request.user, customer_id=obj.pk, **fields)
        else:
            fields = {
                name: value
                for name, value in form.cleaned_data.items()
                if name in CUSTOMER_EDITABLE and not (name == "acquired_on" and value is None)
            }
            saved = customer_create(actor=request.user, **fields)
        obj.pk = saved.pk
        obj.tax_id = saved.tax_id
        obj.country = saved.country


# --- Tax rates --------------------------------------------------------------------------------


class TaxRateForm(forms.ModelForm):
    rate = PercentField(label="Rate (%)", help_text="A percentage: 8.75 for 8.75 %.")

    class Meta:
        model = TaxRate
        fields = ("jurisdiction", "name", "rate")


@admin.register(TaxRate)
class TaxRateAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; add/change for
    finance_admin. A rate applies to drafts written after the change; issued invoices keep
    the rate they were issued with (it is on each line)."""

    list_display = ("jurisdiction", "name", "rate_percent")
    search_fields = ("jurisdiction", "name")
    fields = ("jurisdiction", "name", "rate")
    form = TaxRateForm

    @admin.display(description="Rate", ordering="rate")
    def rate_percent(self, rate: TaxRate) -> str:
        return percent_text(rate.rate)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("jurisdiction",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: TaxRate, form: Any, change: bool) -> None:
        saved = tax_rate_set(
            actor=request.user, jurisdiction=obj.jurisdiction, name=obj.name, rate=obj.rate
        )
        obj.pk = saved.pk


# --- Invoices ---------------------------------------------------------------------------------


def _can_edit_draft(request: HttpRequest, invoice: Invoice | None) -> bool:
    if invoice is None:
        return request.user.has_perm("billing.add_invoice")
    return invoice.status == InvoiceStatus.DRAFT and request.user.has_perm("billing.change_invoice")


def workspace_widgets_for(form: forms.BaseForm, name: str) -> None:
    """The workspace's input style on one declared field (the admin styles the others)."""
    from unfold.widgets import BASE_INPUT_CLASSES, SELECT_CLASSES, TEXTAREA_CLASSES

    widget = form.fields[name].widget
    if isinstance(widget, forms.Select):
        classes = SELECT_CLASSES
    elif isinstance(widget, forms.Textarea):
        classes = TEXTAREA_CLASSES
    else:
        classes = BASE_INPUT_CLASSES
    widget.attrs["class"] = " ".join([widget.attrs.get("class", ""), *classes]).strip()


class InvoiceForm(forms.ModelForm):
    currency = forms.ChoiceField(
        choices=lambda: [("", "The customer's currency"), *currency_choices()],
        required=False,
    )

    class Meta:
        model = Invoice
        fields = ("customer", "currency", "issue_date", "due_date", "memo")
        widgets = {"memo": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    # Shown on the editable form only: once issued the dates are the real ones.
    help = {
        "issue_date": "Empty: the day it is issued.",
        "due_date": "Empty: the issue date plus the customer's payment terms.",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, text in self.help.items():
            if name in self.fields:
                self.fields[name].help_text = text
        for name in ("currency", "memo"):
            if name in self.fields:
                workspace_widgets_for(self, name)


# Column widths of the draft's line inputs: the row fits a 1280 px screen.
LINE_WIDTHS = {
    "catalog_price": "12rem",
    "description": "13rem",
    "quantity": "5rem",
    "price": "7rem",
    "tax_rate": "5rem",
}


class CatalogPriceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        amount = obj.unit_amount or Decimal(0)
        text = f"{unit_price_text(amount, obj.currency, grouped=True)} {obj.currency}"
        name = obj.nickname or obj.product.name
        return f"{obj.product.name} · {name} · {text}" if obj.nickname else f"{name} · {text}"


class InvoiceLineForm(forms.ModelForm):
    """A draft line as the service takes it (``LineInput``): prices are plain decimals in the
    invoice's currency, and an empty tax rate means the customer's rate."""

    # Not the model's MoneyField: a plain amount in the invoice's currency.
    price = forms.DecimalField(
        max_digits=19,
        decimal_places=4,
        label="Unit price",
        required=False,
        widget=forms.NumberInput(attrs={"step": "any", "style": "width: 8em"}),
    )
    tax_rate = PercentField(
        required=False,
        label="Tax rate (%)",
        help_text="A percentage (8.75 for 8.75 %); empty: the customer's rate.",
    )
    tax_inclusive = forms.BooleanField(required=False, label="Incl. tax")
    catalog_price = CatalogPriceField(
        queryset=Price.objects.filter(is_active=True, metric="")
        .select_related("product")
        .order_by("product__name", "currency", "pk"),
        required=False,
        label="Catalog price",
        help_text="Fills the description, unit price and tax behaviour from the catalog when "
        "saved (the price must be in the invoice's currency).",
    )

    class Meta:
        model = InvoiceLine
        fields = ("description", "quantity", "tax_rate", "period_start", "period_end")
        widgets = {
            "description": forms.TextInput(attrs={"size": 30}),
            "quantity": forms.NumberInput(attrs={"step": "any", "style": "width: 6em"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        line = self.instance
        if line.pk is not None:
            self.initial["price"] = line.unit_price.amount
            gross = round_money(line.quantity * line.unit_price.amount, line.currency)
            # Stored prices are as entered; a net amount below the price means it included tax.
            self.initial["tax_inclusive"] = line.amount.amount != gross
        if "description" in self.fields:
            self.fields["description"].required = False
        workspace_widgets(self)
        for name, width in LINE_WIDTHS.items():
            if name in self.fields:
                style = f"width: {width}; min-width: {width}"
                self.fields[name].widget.attrs["style"] = style

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("catalog_price") is None and self.has_changed():
            if data.get("price") is None and "price" not in self.errors:
                self.add_error("price", "Give a unit price or choose a catalog price.")
            if not data.get("description") and "description" not in self.errors:
                self.add_error("description", "Give a description or choose a catalog price.")
        return data

    def line_input(self) -> LineInput:
        """As the API's lines: with a catalog price, the service fills what is left empty
        (description, unit price, tax behaviour) from the price."""
        data = self.cleaned_data
        price = data.get("catalog_price")
        return LineInput(
            description=data.get("description") or "",
            quantity=data["quantity"],
            unit_price=data.get("price"),
            tax_rate=data.get("tax_rate"),
            tax_inclusive=bool(data.get("tax_inclusive")),
            # Service periods are not edited here (the row fits the screen): kept as they are.
            period_start=self.instance.period_start,
            period_end=self.instance.period_end,
            price_id=price.pk if price is not None else None,
        )


class InvoiceLineInline(TabularInline):
    """A draft's lines, edited with the draft; read-only once issued."""

    model = InvoiceLine
    form = InvoiceLineForm
    hide_title = True
    editable_fields = (
        "catalog_price",
        "description",
        "quantity",
        "price",
        "tax_rate",
        "tax_inclusive",
    )
    shown_fields = (
        "description",
        "quantity",
        "unit_price_display",
        "tax_rate_display",
        "period_start",
        "period_end",
        "amount_display",
        "tax_display",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.editable_fields
        return self.editable_fields if _can_edit_draft(request, obj) else self.shown_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if _can_edit_draft(request, obj):
            return ()
        return self.shown_fields

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        if obj is None:
            return 3
        return 1 if _can_edit_draft(request, obj) else 0

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("billing.view_invoice") or request.user.has_perm(
            "billing.change_invoice"
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _can_edit_draft(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _can_edit_draft(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and _can_edit_draft(request, obj)

    @admin.display(description="Unit price")
    def unit_price_display(self, line: InvoiceLine) -> str:
        # Its own precision: 3 x 33.3367 = 100.01 must read true.
        price = unit_price_text(line.unit_price.amount, line.currency, grouped=True)
        return f"{price} {line.currency}"

    @admin.display(description="Tax rate")
    def tax_rate_display(self, line: InvoiceLine) -> str:
        return percent_text(line.tax_rate)

    @admin.display(description="Amount")
    def amount_display(self, line: InvoiceLine) -> str:
        return money_display(line.amount) if line.pk else "-"

    @admin.display(description="Tax")
    def tax_display(self, line: InvoiceLine) -> str:
        return money_display(line.tax_amount) if line.pk else "-"


class InvoiceAllocationInline(ReadOnlyInline):
    """The payments applied to an issued invoice."""

    model = PaymentAllocation
    fk_name = "invoice"
    fields = ("payment_link", "received_date", "method", "amount_display", "created_at")
    readonly_fields = fields
    verbose_name_plural = "Payments applied"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaymentAllocation]:
        return super().get_queryset(request).select_related("payment")

    @admin.display(description="Payment")
    def payment_link(self, allocation: PaymentAllocation) -> str:
        return _change_link(allocation.payment, f"Payment {allocation.payment_id}")

    @admin.display(description="Received")
    def received_date(self, allocation: PaymentAllocation) -> str:
        return date_format(allocation.payment.received_date)

    @admin.display(description="Method")
    def method(self, allocation: PaymentAllocation) -> str:
        return allocation.payment.get_method_display()

    @admin.display(description="Amount")
    def amount_display(self, allocation: PaymentAllocation) -> str:
        return money_display(allocation.amount)


class InvoiceCreditAppliedInline(ReadOnlyInline):
    """The customer credit applied to an issued invoice (customer_credit_apply)."""

    model = CreditApplication
    fk_name = "invoice"
    fields = ("applied_on", "amount_display", "applied_by", "entry_link")
    readonly_fields = fields
    verbose_name_plural = "Credit balance applied"

    @admin.display(description="Applied")
    def applied_on(self, application: CreditApplication) -> str:
        return date_format(application.applied_date)

    @admin.display(description="Amount")
    def amount_display(self, application: CreditApplication) -> str:
        return money_display(application.amount)

    @admin.display(description="Journal entry")
    def entry_link(self, application: CreditApplication) -> str:
        return _entry_link(application.ledger_entry_id)


# A whole document number: INV-2026-000001.
_INVOICE_NUMBER = re.compile(r"^[A-Z]+-\d{4}-\d{6,}$")


class InvoiceCurrencyFilter(admin.SimpleListFilter):
    """Currency, offered from the customers' currencies, the FX rates' and the billing
    default: small tables, where DISTINCT over a million invoices took 120 ms on every page
    (bench/admin_changelist.py). An invoice can only be issued in a currency with a rate."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One query; no ORDER BY in its parts (SQLite refuses one in a compound statement).
        in_use = (
            Customer.objects.order_by()
            .values_list("currency", flat=True)
            .union(
                FxRate.objects.order_by().values_list("base_currency", flat=True),
                FxRate.objects.order_by().values_list("quote_currency", flat=True),
            )
        )
        currencies = {str(system_settings().billing.currency), *in_use}
        return [(code, code) for code in sorted(currencies) if code]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        overdue = Q(status=InvoiceStatus.OPEN, due_date__lt=timezone.localdate())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class PaymentChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return (
            f"{money_display(obj.amount)} · {obj.get_method_display()} · "
            f"received {date_format(obj.received_date)}"
            + (f" · {obj.reference}" if obj.reference else "")
        )


class CreditApplyForm(forms.Form):
    amount = AmountInput(help_text="In the invoice's currency.")
    applied_date = forms.DateField(label="Date applied", required=False)


class RefundForm(forms.Form):
    payment = PaymentChoice(queryset=Payment.objects.none())
    amount = AmountInput(help_text="In the payment's currency.")
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


# The transitions that ask for a reason: (URL name, permission, service, texts).
CLOSE_TRANSITIONS: dict[str, dict[str, Any]] = {
    "void": {
        "perm": "billing.void_invoice",
        "service": invoice_void,
        "transition": "void",
        "title": "Void invoice {}",
        "explanation": (
            "Voiding cancels the invoice: its issue posting is reversed, the number stays used "
            "and the customer owes nothing on it. Only an open invoice without payments or "
            "credits can be voided."
        ),
        "button": "Void the invoice",
        "done": "Invoice {} voided.",
    },
    "write_off": {
        "perm": "billing.write_off_invoice",
        "service": invoice_mark_uncollectible,
        "transition": "write_off",
        "title": "Mark invoice {} uncollectible",
        "explanation": (
            "What is left to collect ({due}) is written off to bad debt; payments already "
            "received stay applied."
        ),
        "button": "Write the invoice off",
        "done": "Invoice {} marked uncollectible.",
    },
}


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyFormsetsMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; drafts added and
    edited by finance_admin and ar_clerk; Issue (and Resend email) for holders of
    billing.issue_invoice (finance_admin, ar_clerk); Void and Mark uncollectible for
    finance_admin and controller. An issued invoice is read-only and never deleted; drafts
    only by holders of billing.delete_invoice (no role today)."""

    mine_field = "created_by"
    mine_label = "Created by me"

    form = InvoiceForm
    change_form_template = "admin/billing/invoice/change_form.html"
    list_display = (
        "invoice_label",
        "customer",
        "status_text",
        "total_amount",
        "amount_due_amount",
        "issue_date",
        "due_date",
        "overdue",
    )
    list_select_related = ("customer",)
    list_filter = ("status", InvoiceCurrencyFilter, OverdueFilter, "issue_date", "due_date")
    search_fields = ("number", "customer__name", "customer__email", "memo")
    search_help_text = (
        "Number, customer name or email, memo, or an exact amount (total or amount due: "
        "1631.25 or 1,631.25)."
    )
    autocomplete_fields = ("customer",)
    actions = ("issue_drafts",)
    inlines = (InvoiceLineInline, InvoiceAllocationInline, InvoiceCreditAppliedInline)

    editable = ("customer", "currency", "issue_date", "due_date", "memo")

    # --- Lists and pages

    @admin.display(description="Invoice", ordering="number")
    def invoice_label(self, invoice: Invoice) -> str:
        return format_html('<span style="white-space: nowrap">{}</span>', invoice)

    @admin.display(description="Total", ordering="total")
    def total_amount(self, invoice: Invoice) -> str:
        return money_display(invoice.total)

    @admin.display(description="Amount due")
    def amount_due_amount(self, invoice: Invoice) -> str:
        return due_text(invoice)

    @admin.display(description="Status", ordering="status")
    def status_text(self, invoice: Invoice) -> str:
        return invoice_status_text(invoice)

    @admin.display(description="Total", ordering="total")
    def total_display(self, invoice: Invoice) -> str:
        return money_display(invoice.total)

    @admin.display(description="Amount due")
    def amount_due_display(self, invoice: Invoice) -> str:
        return due_text(invoice)

    @admin.display(description="Subtotal")
    def subtotal_display(self, invoice: Invoice) -> str:
        return money_display(invoice.subtotal)

    @admin.display(description="Tax")
    def tax_display(self, invoice: Invoice) -> str:
        return money_display(invoice.tax)

    @admin.display(description="Paid")
    def amount_paid_display(self, invoice: Invoice) -> str:
        return money_display(invoice.amount_paid)

    @admin.display(description="Credited")
    def amount_credited_display(self, invoice: Invoice) -> str:
        return money_display(invoice.amount_credited)

    @admin.display(description="Overdue")
    def overdue(self, invoice: Invoice) -> str:
        """Days past due, for open invoices only."""
        today = timezone.localdate()
        due = invoice.due_date
        if invoice.status != InvoiceStatus.OPEN or due is None or due >= today:
            return ""
        days = (today - due).days
        return format_html(
            '<strong style="color: var(--error-fg)">{} day{}</strong>',
            days,
            "s" if days > 1 else "",
        )

    @admin.display(description="Ledger entry")
    def ledger_entry_link(self, invoice: Invoice) -> str:
        return _entry_link(invoice.ledger_entry_id)

    @admin.display(description="PDF SHA-256")
    def pdf_hash(self, invoice: Invoice) -> str:
        if not invoice.pdf_sha256:
            return "-"
        # 64 hex digits in one word: allowed to wrap, or a phone scrolls the page sideways.
        return format_html('<span style="overflow-wrap:anywhere">{}</span>', invoice.pdf_sha256)

    @admin.display(description="FX rate")
    def fx_rate_display(self, invoice: Invoice) -> str:
        """The issue-date rate to the functional currency, six places as treasury quotes it."""
        if invoice.fx_rate is None:
            return "-"
        functional = system_settings().functional_currency
        return f"1 {invoice.currency} = {invoice.fx_rate:,.6f} {functional}"

    def get_fieldsets(self, request: HttpRequest, obj: Invoice | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": self.editable})]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (
                None,
                {
                    "fields": (
                        "customer",
                        "number",
                        "status_text",
                        "currency",
                        "issue_date",
                        "due_date",
                        "memo",
                    )
                },
            ),
            (
                "Amounts",
                {
                    "fields": (
                        "subtotal_display",
                        "tax_display",
                        "total_display",
                        "amount_paid_display",
                        "amount_credited_display",
                        "amount_due_display",
                    )
                },
            ),
        ]
        if obj.is_issued:
            fieldsets.append(
                (
                    "Issue and delivery",
                    {
                        "fields": (
                            "issued_at",
                            "issued_by",
                            "fx_rate_display",
                            "ledger_entry_link",
                            "pdf_hash",
                            "emailed_at",
                        )
                    },
                )
            )
        if obj.closed_by_id or obj.close_reason:
            fieldsets.append(("Closed", {"fields": ("closed_at", "closed_by", "close_reason")}))
        fieldsets.append(("Created", {"fields": ("created_at", "created_by")}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Invoice | None = None) -> Any:
        if obj is None:
            return ()
        shown = [f for _, options in self.get_fieldsets(request, obj) for f in options["fields"]]
        if _can_edit_draft(request, obj):
            return [f for f in shown if f not in self.editable or f == "customer"]
        return shown

    def get_inline_instances(self, request: HttpRequest, obj: Invoice | None = None) -> list[Any]:
        inlines = super().get_inline_instances(request, obj)
        if obj is None or not obj.is_issued:
            inlines = [i for i in inlines if not isinstance(i, InvoiceAllocationInline)]
        if obj is None or not obj.credit_applications.exists():
            inlines = [i for i in inlines if not isinstance(i, InvoiceCreditAppliedInline)]
        return inlines

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # A bulk delete would reach issued invoices: drafts are deleted one by one.
        actions.pop("delete_selected", None)
        return actions

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Invoice], search_term: str
    ) -> tuple[QuerySet[Invoice], bool]:
        """The text fields, and an exact amount as the total or the amount due (a void
        invoice owes nothing). A whole invoice number is looked up by its unique index, not
        compared with every row."""
        number = search_term.strip().upper()
        if _INVOICE_NUMBER.match(number):
            return queryset.filter(number=number), False
        found, duplicates = super().get_search_results(request, queryset, search_term)
        amount = parse_amount(search_term)
        if amount is None:
            return found, duplicates
        by_amount = queryset.annotate(
            due_now=F("total") - F("amount_paid") - F("amount_credited")
        ).filter(Q(total=amount) | (Q(due_now=amount) & ~Q(status=InvoiceStatus.VOID)))
        return found | queryset.filter(pk__in=by_amount.values("pk")), duplicates

    # --- Permissions

    def has_change_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        if obj is not None and obj.is_issued:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        if obj is not None and obj.is_issued:
            return False
        return super().has_delete_permission(request, obj)

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.issue_invoice")

    # --- Saving a draft through the services

    def save_model(self, request: HttpRequest, obj: Invoice, form: Any, change: bool) -> None:
        """Nothing here: the draft and its lines are written together in ``save_related``."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        lines: list[LineInput] = []
        for formset in formsets:
            self.save_formset(request, form, formset, change)
            if formset.model is not InvoiceLine:
                continue
            for line_form in formset.forms:
                if not line_form.cleaned_data or formset._should_delete_form(line_form):
                    continue
                lines.append(line_form.line_input())
        data = form.cleaned_data
        common = {
            "actor": request.user,
            "lines": lines,
            "currency": (data.get("currency") or "").upper() or None,
            "issue_date": data.get("issue_date"),
            "due_date": data.get("due_date"),
            "memo": data.get("memo") or "",
        }
        if change:
            invoice = invoice_update_draft(invoice_id=form.instance.pk, **common)
        else:
            invoice = invoice_create(customer_id=data["customer"].pk, **common)
        form.instance.pk = invoice.pk

    # --- Transition buttons, PDF and resend

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Invoice | None = None,
    ) -> HttpResponse:
        context["invoice_tools"] = self._tools(request, obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tools(self, request: HttpRequest, invoice: Invoice) -> list[dict[str, Any]]:
        """The invoice's actions this user may take now: (title, link, icon), each a page of
        its own (a form or a confirmation), never an action on the click."""
        user = request.user
        settled = invoice.amount_paid.amount or invoice.amount_credited.amount
        is_open = invoice.status == InvoiceStatus.OPEN

        def tool(name: str) -> str:
            return reverse(f"admin:billing_invoice_{name}", args=[invoice.pk])

        shown = [
            (
                user.has_perm("billing.issue_invoice") and can_proceed(invoice.issue),
                "Issue",
                tool("issue"),
                "send",
            ),
            (
                user.has_perm("billing.record_payment") and is_open,
                "Record payment",
                reverse("admin:billing_payment_add") + f"?invoice={invoice.pk}",
                "payments",
            ),
            (
                user.has_perm(CREDIT_APPLY_PERMISSION) and credit_available(invoice) > 0,
                "Apply credit",
                tool("apply_credit"),
                "account_balance_wallet",
            ),
            (
                user.has_perm("billing.add_refund") and bool(invoice.amount_paid.amount),
                "Refund",
                tool("refund"),
                "undo",
            ),
            (
                user.has_perm("billing.add_creditnote")
                and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PAID),
                "Credit note",
                reverse("admin:billing_creditnote_add") + f"?invoice={invoice.pk}",
                "receipt_long",
            ),
            (invoice.is_issued, "PDF", tool("pdf"), "picture_as_pdf"),
            (
                user.has_perm("billing.issue_invoice")
                and invoice.is_issued
                and invoice.status != InvoiceStatus.VOID,
                "Resend email",
                tool("resend"),
                "forward_to_inbox",
            ),
            (
                user.has_perm("billing.void_invoice") and can_proceed(invoice.void) and not settled,
                "Void",
                tool("void"),
                "block",
            ),
            (
                user.has_perm("billing.write_off_invoice") and can_proceed(invoice.write_off),
                "Write off",
                tool("write_off"),
                "money_off",
            ),
        ]
        return [
            {"title": title, "link": link, "icon": icon, "blank": title == "PDF"}
            for ok, title, link, icon in shown
            if ok
        ]

    def get_urls(self) -> list[URLPattern]:
        def route(suffix: str, view: Callable[..., HttpResponse], name: str) -> URLPattern:
            return path(
                f"<path:object_id>/{suffix}/",
                self.admin_site.admin_view(view),
                name=f"billing_invoice_{name}",
            )

        return [
            route("issue", self.issue_view, "issue"),
            route("void", self.void_view, "void"),
            route("write-off", self.write_off_view, "write_off"),
            route("refund", self.refund_view, "refund"),
            route("apply-credit", self.apply_credit_view, "apply_credit"),
            route("pdf", self.pdf_view, "pdf"),
            route("resend", self.resend_view, "resend"),
            *super().get_urls(),
        ]

    def _invoice(self, request: HttpRequest, object_id: str, perm: str | None) -> Invoice:
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        if perm is not None and not request.user.has_perm(perm):
            raise PermissionDenied
        return invoice

    def _back(self, invoice: Invoice) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))

    def _confirm(self, request: HttpRequest, invoice: Invoice, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        url = reverse("admin:billing_invoice_change", args=[invoice.pk])
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.opts,
            obj=invoice,
            done_url=url,
            cancel_url=url,
            **kwargs,
        )

    def _summary(self, invoice: Invoice) -> list[tuple[str, str]]:
        return [
            ("Customer", f"{invoice.customer.name} · {invoice.customer.email}"),
            ("Status", invoice_status_text(invoice)),
            ("Total", money_display(invoice.total)),
            ("Amount due", due_text(invoice)),
        ]

    def issue_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Confirm, then issue the draft through ``invoice_issue`` (number, posting, PDF and
        email); the page shows the posting the service will make."""
        invoice = self._invoice(request, object_id, "billing.issue_invoice")
        customer = invoice.customer

        def issue(form: forms.Form | None) -> Invoice:
            return invoice_issue(actor=request.user, invoice_id=invoice.pk)

        return self._confirm(
            request,
            invoice,
            title=f"Issue invoice {invoice}",
            button="Issue the invoice",
            perform=issue,
            preview=issue,
            summary=[
                *self._summary(invoice),
                ("Emailed to", ", ".join([customer.email, *customer.cc_emails])),
            ],
            warning="Issuing gives the invoice its number and posts it; it cannot be edited "
            "afterwards (correct it with a credit note).",
            success=lambda issued: (
                f"Invoice {issued.number} issued; its PDF and email to {customer.email} follow."
            ),
        )

    def void_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._close_view(request, object_id, "void")

    def write_off_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._close_view(request, object_id, "write_off")

    def _close_view(self, request: HttpRequest, object_id: str, kind: str) -> HttpResponse:
        """Ask for a reason and show the reversal or write-off the service will post; void or
        write off only from the page's button."""
        spec = CLOSE_TRANSITIONS[kind]
        invoice = self._invoice(request, object_id, spec["perm"])

        def close(form: forms.Form | None) -> Invoice:
            reason = form.cleaned_data["reason"] if form is not None else "the reason given below"
            result: Invoice = spec["service"](
                actor=request.user, invoice_id=invoice.pk, reason=reason
            )
            return result

        return self._confirm(
            request,
            invoice,
            title=spec["title"].format(invoice),
            button=spec["button"],
            perform=close,
            preview=close,
            form_class=ReasonForm,
            summary=self._summary(invoice),
            warning=spec["explanation"].format(due=money_display(invoice.amount_due)),
            success=spec["done"].format(invoice),
            danger=True,
        )

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Refund (part of) a payment applied to this invoice through ``refund_create``, as
        the API refunds: a Stripe payment at Stripe first, so nothing is previewed."""
        invoice = self._invoice(request, object_id, "billing.add_refund")
        payments = Payment.objects.filter(allocations__invoice=invoice).distinct().order_by("pk")

        class Form(RefundForm):
            payment = PaymentChoice(queryset=payments)

        def refund(form: forms.Form | None) -> Any:
            data = form.cleaned_data if form is not None else {}
            return refund_create(
                actor=request.user,
                customer_id=invoice.customer_id,
                payment_id=data["payment"].pk,
                amount=data["amount"],
                reason=data["reason"],
            )

        def done(outcome: Any) -> str:
            if outcome.refund is None:
                return f"Refund requested at the processor: {outcome.message}"
            return (
                f"Refund of {money_display(outcome.refund.amount)} booked "
                f"({money_display(outcome.refund.from_invoices)} taken back from invoices)."
            )

        return self._confirm(
            request,
            invoice,
            title=f"Refund a payment of invoice {invoice}",
            button="Refund",
            perform=refund,
            form_class=Form,
            summary=[
                *self._summary(invoice),
                ("Paid", money_display(invoice.amount_paid)),
                (
                    "How it is taken back",
                    "From the payment's overpayment on the customer's credit first, then from "
                    "the invoices it paid, newest first (they are open again for that much). "
                    "A card payment is refunded at the processor first.",
                ),
            ],
            success=done,
            danger=True,
        )

    def apply_credit_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Settle the invoice from the customer's credit balance through
        ``customer_credit_apply``; the amount proposed is as much as the balance and the
        amount due allow, and the page shows the posting (and any FX difference) first."""
        invoice = self._invoice(request, object_id, CREDIT_APPLY_PERMISSION)
        customer = invoice.customer
        available = credit_available(invoice)

        class Form(CreditApplyForm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.fields["amount"].initial = available
                self.fields["applied_date"].initial = timezone.localdate()

        def apply(form: forms.Form | None) -> Any:
            data = form.cleaned_data if form is not None else {}
            return customer_credit_apply(
                actor=request.user,
                invoice_id=invoice.pk,
                amount=data.get("amount", available),
                applied_date=data.get("applied_date"),
            )

        return self._confirm(
            request,
            invoice,
            title=f"Apply {customer.name}'s credit to invoice {invoice}",
            button="Apply the credit",
            perform=apply,
            preview=apply,
            form_class=Form,
            summary=[
                *self._summary(invoice),
                ("Credit balance", money_display(customer.credit_balance)),
            ],
            warning="The amount comes off the customer's credit balance and settles the invoice "
            "as a payment would; it posts to the ledger and cannot be undone here (a refund "
            "gives money back).",
            success=lambda app: (
                f"{money_display(app.amount)} of {customer.name}'s credit applied to invoice "
                f"{invoice}."
            ),
        )

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Confirm, then email the stored PDF to the customer again (nothing is posted)."""
        invoice = self._invoice(request, object_id, "billing.issue_invoice")
        recipients = ", ".join([invoice.customer.email, *invoice.customer.cc_emails])

        def resend(form: forms.Form | None) -> None:
            try:
                invoice_email_send(invoice_id=invoice.pk, force=True)
            except InvoicePdfIntegrityError as exc:
                raise DomainError(str(exc)) from None
            except (smtplib.SMTPException, OSError) as exc:
                raise DomainError(f"The mail server did not accept the message: {exc}") from None

        return self._confirm(
            request,
            invoice,
            title=f"Email invoice {invoice} again",
            button="Send the email",
            perform=resend,
            summary=[*self._summary(invoice), ("To", recipients)],
            success=f"Invoice {invoice} emailed again to {recipients}.",
        )

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The stored PDF, shown inline; stored from the snapshot on first request (as the
        API does), never re-rendered once stored."""
        invoice = self._invoice(request, object_id, None)
        if not invoice.is_issued:
            self.message_user(
                request, f"Invoice {invoice} is a draft: it has no PDF yet.", messages.ERROR
            )
            return self._back(invoice)
        try:
            if not invoice.pdf:
                invoice = invoice_pdf_store(invoice_id=invoice.pk)
            content = invoice_pdf_content(invoice=invoice)
        except (DomainError, InvoicePdfIntegrityError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(invoice)
        response = HttpResponse(content, content_type=PDF_MIMETYPE)
        response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
        return response

    @admin.action(description="Issue selected draft invoices", permissions=["issue"])
    def issue_drafts(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        """Each draft through ``invoice_issue`` in its own transaction, oldest first, so one
        refusal leaves the others issued."""
        issued: list[str] = []
        for invoice in queryset.order_by("created_at", "pk"):
            try:
                issued.append(str(invoice_issue(actor=request.user, invoice_id=invoice.pk)))
            except DomainError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
        if issued:
            self.message_user(
                request,
                f"Issued {len(issued)} invoice{'s' if len(issued) != 1 else ''}: "
                f"{', '.join(issued)}.",
                messages.SUCCESS,
            )


# --- Payments ---------------------------------------------------------------------------------


class PaymentAllocationInline(ReadOnlyInline):
    model = PaymentAllocation
    fk_name = "payment"
    fields = ("invoice_link", "invoice_status", "amount_display", "created_at")
    readonly_fields = fields
    verbose_name_plural = "Allocations"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaymentAllocation]:
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Invoice")
    def invoice_link(self, allocation: PaymentAllocation) -> str:
        return _change_link(allocation.invoice, str(allocation.invoice))

    @admin.display(description="Invoice status")
    def invoice_status(self, allocation: PaymentAllocation) -> str:
        return allocation.invoice.get_status_display()

    @admin.display(description="Amount")
    def amount_display(self, allocation: PaymentAllocation) -> str:
        return money_display(allocation.amount)


@admin.register(Payment)
class PaymentAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; recorded (the add
    page, ``billing.admin_payments``, through ``payment_record`` as the API records them) by
    holders of billing.record_payment. A recorded payment is posted: never changed or
    deleted here."""

    mine_field = "created_by"
    mine_label = "Recorded by me"
    # An exact amount in the search box finds the payment of that amount (core.admin_workspace).
    search_amount_fields = ("amount",)

    list_display = (
        "received_date",
        "customer",
        "amount_display",
        "allocated_display",
        "method",
        "status",
        "reference",
    )
    list_select_related = ("customer",)
    list_filter = ("method", "status", "received_date", "currency")
    change_form_template = "admin/billing/readonly_rows_change_form.html"
    search_fields = ("reference", "processor_charge_id", "customer__name", "customer__email")
    search_help_text = "Reference, customer name or email, or an exact amount (1,631.25)."
    fields = (
        "customer",
        "received_date",
        "amount_display",
        "allocated_display",
        "unallocated_display",
        "method",
        "status",
        "reference",
        "processor",
        "processor_charge_id",
        "failure_code",
        "failure_message",
        "ledger_entry_link",
        "created_at",
        "created_by",
    )
    readonly_fields = fields
    inlines = (PaymentAllocationInline,)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        return money_display(payment.amount)

    @admin.display(description="Allocated", ordering="amount_allocated")
    def allocated_display(self, payment: Payment) -> str:
        return money_display(payment.amount_allocated)

    @admin.display(description="To customer credit")
    def unallocated_display(self, payment: Payment) -> str:
        return money_display(payment.amount - payment.amount_allocated)

    @admin.display(description="Ledger entry")
    def ledger_entry_link(self, payment: Payment) -> str:
        return _entry_link(payment.ledger_entry_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.record_payment")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return payment_record_page(self, request)


from billing import admin_catalog  # noqa: E402, F401
