"""Billing admin, second part: catalog, subscriptions, the billing run, credit notes, payment
methods, processor attempts, webhook events and usage events.

As in ``billing.admin``, every write goes through a billing service: ``product_create`` /
``price_create``, ``subscription_create`` / ``_pause`` / ``_resume`` / ``_cancel``,
``billing_run`` and ``credit_note_issue``; a refusal comes back as a form error or an admin
message. Money and status are read-only everywhere; the processor and usage records are
read-only lists, and bank account numbers are only ever shown masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django_fsm import can_proceed
from djmoney.money import Money
from unfold.admin import ModelAdmin

from billing.admin import (
    CustomerInvoiceInline,
    ReadOnlyInline,
    _change_link,
    _entry_link,
    amount_display,
    money_display,
)
from billing.admin_fields import PercentField, currency_choices, percent_text
from billing.enums import InvoiceStatus
from billing.models import (
    CardExpiryReminder,
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceAutopay,
    InvoiceLine,
    PaymentMethod,
    PendingItem,
    Price,
    ProcessorAttempt,
    Product,
    Refund,
    RefundAllocation,
    Subscription,
    SubscriptionItem,
    UsageEvent,
    WebhookEvent,
)
from billing.models.autopay import autopay_key
from billing.models.subscriptions import BILLABLE
from billing.services.billing_run import billing_run
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    price_update,
    product_create,
    product_update,
    subscription_cancel,
    subscription_create,
    subscription_pause,
    subscription_resume,
)
from core.admin import AuditedAdmin, ReadOnlyAdminMixin
from core.admin_confirm import workspace_widgets
from core.exceptions import DomainError

FORM_TEMPLATE = "admin/billing/service_form.html"
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _decimal_text(value: Decimal | None) -> str:
    """A price amount without trailing zeros past the cents: 30.00, 0.0035."""
    if value is None:
        return "-"
    normal = value.normalize()
    if normal.as_tuple().exponent > -2:  # type: ignore[operator]
        normal = normal.quantize(Decimal("0.01"))
    return f"{normal:f}"


def _form_page(
    admin_obj: ModelAdmin,
    request: HttpRequest,
    *,
    title: str,
    form: forms.Form,
    buttons: list[tuple[str, str]],
    intro: list[str] | None = None,
    formset: Any = None,
    formset_title: str = "",
    preview: dict[str, Any] | None = None,
    obj: Model | None = None,
    cancel_url: str | None = None,
) -> TemplateResponse:
    opts = admin_obj.opts
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    # The workspace's input styles on these plain forms (the admin styles only its own).
    for styled in [form, *(formset.forms if formset is not None else [])]:
        radios = {n: f.widget.attrs.get("class") for n, f in styled.fields.items()}
        workspace_widgets(styled)
        for name, field in styled.fields.items():
            if isinstance(field.widget, forms.RadioSelect):
                field.widget.attrs["class"] = radios[name] or ""
    context = {
        **admin_obj.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "intro": intro or [],
        "form": form,
        "formset": formset,
        "formset_title": formset_title,
        "preview": preview,
        "buttons": buttons,
        "object": obj,
        "object_url": (
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            if obj is not None
            else None
        ),
        "cancel_url": cancel_url or changelist,
        "media": admin_obj.media + form.media,
    }
    return TemplateResponse(request, FORM_TEMPLATE, context)


def _add_service_error(form: forms.Form, exc: DomainError) -> None:
    field = exc.details.get("field")
    form.add_error(field if field in form.fields else None, exc.message)


# --- Catalog ----------------------------------------------------------------------------------


class ProductPriceInline(ReadOnlyInline):
    model = Price
    fields = ("price_link", "currency", "type", "interval", "amount", "metric", "is_active")
    readonly_fields = fields
    verbose_name_plural = "Prices"

    @admin.display(description="Price")
    def price_link(self, price: Price) -> str:
        return _change_link(price, price.nickname or f"Price {price.pk}")

    @admin.display(description="Unit amount")
    def amount(self, price: Price) -> str:
        return _decimal_text(price.unit_amount) if not price.tiers else "tiered"


class ProductAddForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ("name", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3, "cols": 60})}


class ProductChangeForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ("description", "is_active")
        widgets = {"description": forms.Textarea(attrs={"rows": 3, "cols": 60})}
        help_texts = {"is_active": "An inactive product's prices cannot start new subscriptions."}


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; add/change for
    finance_admin (billing.add_product / change_product). Added through ``product_create``;
    only the description and the active flag change afterwards. Never deleted: prices and
    subscriptions point at products."""

    list_display = ("name", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "description")
    change_form_template = "admin/billing/readonly_rows_change_form.html"
    inlines = (ProductPriceInline,)

    def get_fields(self, request: HttpRequest, obj: Product | None = None) -> Any:
        if obj is None:
            return ("name", "description")
        return ("name", "description", "is_active", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Product | None = None) -> Any:
        if obj is None:
            return ()
        if not self.has_change_permission(request, obj):
            return ("name", "description", "is_active", "created_at")
        return ("name", "created_at")

    def get_form(
        self, request: HttpRequest, obj: Product | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = ProductAddForm if obj is None else ProductChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_inline_instances(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = {n: data[n] for n in form.changed_data if n in ("description", "is_active")}
            if fields:
                product_update(actor=request.user, product_id=obj.pk, **fields)
            return
        saved = product_create(
            actor=request.user, name=data["name"], description=data.get("description") or ""
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at


class MeteredFilter(admin.SimpleListFilter):
    title = "metered"
    parameter_name = "metered"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Metered"), ("no", "Licensed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Price]) -> QuerySet[Price]:
        if self.value() == "yes":
            return queryset.exclude(metric="")
        if self.value() == "no":
            return queryset.filter(metric="")
        return queryset


TIER_KEYS = {"up_to", "unit_amount", "flat_amount"}


class PriceAddForm(forms.ModelForm):
    currency = forms.ChoiceField(choices=currency_choices, help_text="The price's currency.")
    tiers = forms.CharField(
        required=False,
        label="Tiers",
        help_text=(
            "Tiered prices only, one tier per line: up to how many units, the price of each "
            'unit in the tier, and a flat fee if any. For example "10  5.00", then '
            '"50  4.50  10.00", then "above  4.00" for the open-ended last tier.'
        ),
        widget=forms.Textarea(attrs={"rows": 5, "cols": 70}),
    )

    class Meta:
        model = Price
        fields = (
            "product",
            "nickname",
            "currency",
            "type",
            "interval",
            "unit_amount",
            "package_size",
            "tiers",
            "tax_inclusive",
            "metric",
            "aggregation",
        )
        help_texts = {
            "unit_amount": "The flat fee, the price of one unit or of one package.",
            "package_size": "Package prices only: units per package.",
            "metric": "Metered prices only: the usage metric billed in arrears.",
            "aggregation": "Metered prices only: how the period's usage is counted.",
        }

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).strip().upper()

    def clean_tiers(self) -> list[Any]:
        """The shape only; order and the open-ended last tier are the service's to check.
        Lines as the help text shows, or the API's JSON list."""
        text = str(self.cleaned_data.get("tiers") or "").strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                tiers = json.loads(text)
            except ValueError:
                raise forms.ValidationError("Tiers written as JSON must be a valid list.") from None
        else:
            tiers = [_tier_from_line(n, line) for n, line in _tier_lines(text)]
        if not isinstance(tiers, list) or not all(isinstance(t, dict) for t in tiers):
            raise forms.ValidationError("Tiers are a list, one tier per line.")
        for n, tier in enumerate(tiers, start=1):
            unknown = set(tier) - TIER_KEYS
            if unknown:
                raise forms.ValidationError(
                    f"Tier {n}: unknown key {sorted(unknown)[0]!r} "
                    f"(allowed: {', '.join(sorted(TIER_KEYS))})."
                )
            for key in TIER_KEYS & set(tier):
                value = tier[key]
                if value is None and key == "up_to":
                    continue
                try:
                    Decimal(str(value))
                except ArithmeticError:
                    raise forms.ValidationError(f"Tier {n}: {key} must be a number.") from None
                if isinstance(value, bool) or not Decimal(str(value)).is_finite():
                    raise forms.ValidationError(f"Tier {n}: {key} must be a number.")
        return tiers


_OPEN_ENDED = {"above", "and above", "-", "more", "rest", "∞"}


def _tier_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _tier_from_line(n: int, line: str) -> dict[str, Any]:
    """ "10  5.00  2.50" -> up to 10 units at 5.00 each plus a 2.50 flat fee; "above 4.00" ->
    the open-ended last tier."""
    parts = line.replace("|", " ").replace(";", " ").split()
    lowered = line.lower()
    up_to: str | None
    if lowered.startswith("and above"):
        up_to, numbers = None, parts[2:]
    elif parts[0].lower() in _OPEN_ENDED:
        up_to, numbers = None, parts[1:]
    else:
        up_to, numbers = parts[0].replace(",", ""), parts[1:]
    if not 1 <= len(numbers) <= 2:
        raise forms.ValidationError(
            f"Tier {n}: write up to how many units, the unit price and a flat fee if any "
            f'("10  5.00" or "above  4.00").'
        )
    for value in (up_to, *numbers):
        if value is None:
            continue
        try:
            if not Decimal(value.replace(",", "")).is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            raise forms.ValidationError(f"Tier {n}: {value!r} is not a number.") from None
    tier: dict[str, Any] = {
        "up_to": int(Decimal(up_to)) if up_to is not None else None,
        "unit_amount": numbers[0].replace(",", ""),
    }
    if len(numbers) == 2:
        tier["flat_amount"] = numbers[1].replace(",", "")
    return tier


class PriceChangeForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = ("nickname", "is_active")
        help_texts = {
            "is_active": "An inactive price cannot start or join subscriptions; existing "
            "subscriptions keep it."
        }


PRICE_TERMS = (
    "product",
    "currency",
    "type",
    "interval",
    "unit_amount_display",
    "package_size",
    "tiers_display",
    "tax_inclusive",
    "metric",
    "aggregation",
    "created_at",
)


@admin.register(Price)
class PriceAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; add/change for
    finance_admin (billing.add_price / change_price). Added through ``price_create``, which
    validates the tiers; afterwards only the nickname and the active flag change: a price is
    immutable once used (to charge differently, add a new price and deactivate this one).
    Never deleted."""

    list_display = (
        "price_label",
        "product",
        "currency",
        "type",
        "interval",
        "unit_amount_display",
        "metered",
        "is_active",
    )
    list_select_related = ("product",)
    list_filter = ("currency", "type", "interval", MeteredFilter, "is_active")
    search_fields = ("nickname", "product__name", "metric")

    @admin.display(description="Price", ordering="nickname")
    def price_label(self, price: Price) -> str:
        return price.nickname or f"Price {price.pk}"

    @admin.display(description="Unit amount", ordering="unit_amount")
    def unit_amount_display(self, price: Price) -> str:
        return _decimal_text(price.unit_amount)

    @admin.display(description="Metered", boolean=True)
    def metered(self, price: Price) -> bool:
        return price.is_metered

    @admin.display(description="Tiers")
    def tiers_display(self, price: Price) -> str:
        if not price.tiers:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(price.tiers, indent=2))

    def get_fieldsets(self, request: HttpRequest, obj: Price | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": PriceAddForm.Meta.fields})]
        return [
            (None, {"fields": ("nickname", "is_active")}),
            (
                "Terms",
                {
                    "fields": PRICE_TERMS,
                    "description": "A price is immutable once used: to charge differently, "
                    "add a new price and deactivate this one.",
                },
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Price | None = None) -> Any:
        if obj is None:
            return ()
        if not self.has_change_permission(request, obj):
            return ("nickname", "is_active", *PRICE_TERMS)
        return PRICE_TERMS

    def get_form(
        self, request: HttpRequest, obj: Price | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = PriceAddForm if obj is None else PriceChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Price, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = {n: data[n] for n in form.changed_data if n in ("nickname", "is_active")}
            if fields:
                price_update(actor=request.user, price_id=obj.pk, **fields)
            return
        saved = price_create(
            actor=request.user,
            product_id=data["product"].pk,
            currency=data["currency"],
            type=data["type"],
            interval=data["interval"],
            unit_amount=data.get("unit_amount"),
            package_size=data.get("package_size"),
            tiers=data.get("tiers") or [],
            tax_inclusive=bool(data.get("tax_inclusive")),
            metric=data.get("metric") or "",
            aggregation=data.get("aggregation") or "",
            nickname=data.get("nickname") or "",
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at


# --- Subscriptions ----------------------------------------------------------------------------


class SubscriptionItemInline(ReadOnlyInline):
    model = SubscriptionItem
    fields = ("price_link", "unit_amount", "quantity", "created_at")
    readonly_fields = fields
    verbose_name_plural = "Items"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SubscriptionItem]:
        return super().get_queryset(request).select_related("price__product")

    @admin.display(description="Price")
    def price_link(self, item: SubscriptionItem) -> str:
        return _change_link(item.price, str(item.price))

    @admin.display(description="Unit amount")
    def unit_amount(self, item: SubscriptionItem) -> str:
        if item.price.tiers:
            return "tiered"
        return f"{_decimal_text(item.price.unit_amount)} {item.price.currency}"


class PendingItemInline(ReadOnlyInline):
    model = PendingItem
    fields = ("description", "amount_display", "period_start", "period_end", "invoice_link")
    readonly_fields = fields
    verbose_name_plural = "Pending items (proration waiting for an invoice)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PendingItem]:
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Amount")
    def amount_display(self, item: PendingItem) -> str:
        return money_display(Money(item.amount, item.currency))

    @admin.display(description="Invoice")
    def invoice_link(self, item: PendingItem) -> str:
        return _change_link(item.invoice, str(item.invoice)) if item.invoice else "not yet"


class SubscriptionInvoiceInline(CustomerInvoiceInline):
    fk_name = "subscription"
    fields = (
        "invoice_link",
        "status",
        "period_start",
        "period_end",
        "total_display",
        "due_display",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return super().get_queryset(request).order_by("-period_start", "-pk")


class SubscriptionAddForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.order_by("name", "pk"))
    start_date = forms.DateField(required=False, widget=DATE_INPUT, help_text="Empty: today.")
    trial_days = forms.IntegerField(
        min_value=0,
        max_value=730,
        required=False,
        initial=0,
        help_text="Days billed at nothing before the first paid period; 0: none.",
    )


class SubscriptionItemForm(forms.Form):
    price = forms.ModelChoiceField(
        queryset=Price.objects.filter(is_active=True).select_related("product"), required=False
    )
    quantity = forms.DecimalField(
        max_digits=19, decimal_places=4, min_value=Decimal(0), required=False, initial=1
    )


SubscriptionItemFormSet = forms.formset_factory(SubscriptionItemForm, extra=3)


class SubscriptionCancelForm(forms.Form):
    when = forms.ChoiceField(
        choices=[
            ("period_end", "At the end of the current period (the period is billed in full)"),
            ("now", "Now, on the date below (the days used and usage so far are invoiced now)"),
        ],
        widget=forms.RadioSelect,
        initial="period_end",
    )
    on_date = forms.DateField(
        required=False,
        widget=DATE_INPUT,
        label="Date",
        help_text="For a cancellation now: a day within the current period; empty: today.",
    )


class BillingRunForm(forms.Form):
    as_of = forms.DateField(
        widget=DATE_INPUT,
        label="As of",
        help_text="Every subscription period that has ended by this date is invoiced.",
    )
    # The date the preview was shown for: a run for another date shows its preview first.
    previewed_as_of = forms.DateField(required=False, widget=forms.HiddenInput)


def subscriptions_due(as_of: date) -> QuerySet[Subscription]:
    """What ``billing_run(as_of=...)`` will bill: billable subscriptions whose current
    period has ended by ``as_of``."""
    return (
        Subscription.objects.filter(status__in=BILLABLE, current_period_end__lte=as_of)
        .select_related("customer")
        .order_by("current_period_end", "pk")
    )


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; add (through
    ``subscription_create``) and Pause / Resume / Cancel (``subscription_pause`` / ``_resume``
    / ``_cancel``) for holders of billing.add_subscription / billing.change_subscription:
    finance_admin and ar_clerk; "Run billing now" (``billing_run``) for holders of
    billing.run_billing: finance_admin and controller. The page itself is read-only;
    subscriptions are never deleted."""

    list_display = (
        "subscription_label",
        "customer",
        "status",
        "currency",
        "interval",
        "current_period",
        "trial_end",
        "cancel_at_period_end",
    )
    list_select_related = ("customer",)
    list_filter = ("status", "currency", "interval")
    search_fields = ("customer__name", "customer__email")
    change_form_template = "admin/billing/subscription/change_form.html"
    change_list_template = "admin/billing/subscription/change_list.html"
    fields = (
        "customer_link",
        "status",
        "currency",
        "interval",
        "anchor_day",
        "started_on",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "cancel_at_period_end",
        "paused_at",
        "canceled_at",
        "ended_on",
        "created_at",
        "created_by",
    )
    readonly_fields = fields
    inlines = (SubscriptionItemInline, PendingItemInline, SubscriptionInvoiceInline)

    @admin.display(description="Subscription", ordering="pk")
    def subscription_label(self, sub: Subscription) -> str:
        return f"#{sub.pk}"

    @admin.display(description="Current period", ordering="current_period_end")
    def current_period(self, sub: Subscription) -> str:
        return f"{sub.current_period_start.isoformat()} to {sub.current_period_end.isoformat()}"

    @admin.display(description="Customer")
    def customer_link(self, sub: Subscription) -> str:
        return _change_link(sub.customer, sub.customer.name)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Read-only page: changes are the transition buttons, each through its service.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_run_billing_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.run_billing")

    # --- Pages

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_run_billing": self.has_run_billing_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Subscription | None = None,
    ) -> HttpResponse:
        context["subscription_tools"] = self._tools(request, obj) if obj is not None else {}
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tools(self, request: HttpRequest, sub: Subscription) -> dict[str, bool]:
        allowed = request.user.has_perm("billing.change_subscription")
        return {
            "can_pause": allowed and can_proceed(sub.pause),
            "can_resume": allowed and can_proceed(sub.resume),
            "can_cancel": allowed and can_proceed(sub.cancel),
        }

    def get_urls(self) -> list[URLPattern]:
        def route(suffix: str, view: Callable[..., HttpResponse], name: str) -> URLPattern:
            return path(
                f"<path:object_id>/{suffix}/",
                self.admin_site.admin_view(view),
                name=f"billing_subscription_{name}",
            )

        return [
            path(
                "billing-run/",
                self.admin_site.admin_view(self.billing_run_view),
                name="billing_subscription_billing_run",
            ),
            route("pause", self.pause_view, "pause"),
            route("resume", self.resume_view, "resume"),
            route("cancel", self.cancel_view, "cancel"),
            *super().get_urls(),
        ]

    def _subscription(self, request: HttpRequest, object_id: str) -> Subscription:
        sub = self.get_object(request, unquote(object_id))
        if sub is None:
            raise Http404
        if not self.has_view_permission(request, sub):
            raise PermissionDenied
        if not request.user.has_perm("billing.change_subscription"):
            raise PermissionDenied
        return sub

    def _back(self, sub: Subscription) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:billing_subscription_change", args=[sub.pk]))

    # --- Add

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Customer, prices with quantities, start date and trial days, through
        ``subscription_create``."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        posted = request.POST if request.method == "POST" else None
        form = SubscriptionAddForm(posted)
        formset = SubscriptionItemFormSet(posted, prefix="items")
        if posted is not None and form.is_valid() and formset.is_valid():
            items = [
                ItemInput(price_id=row["price"].pk, quantity=row.get("quantity") or Decimal(1))
                for row in formset.cleaned_data
                if row.get("price")
            ]
            try:
                sub = subscription_create(
                    actor=request.user,
                    customer_id=form.cleaned_data["customer"].pk,
                    items=items,
                    start_date=form.cleaned_data.get("start_date"),
                    trial_days=form.cleaned_data.get("trial_days") or 0,
                )
            except DomainError as exc:
                _add_service_error(form, exc)
            else:
                self.log_addition(request, sub, [{"added": {}}])
                self.message_user(
                    request,
                    f"Subscription #{sub.pk} started for {sub.customer.name}: "
                    f"{sub.get_status_display()}, first period "
                    f"{sub.current_period_start.isoformat()} to "
                    f"{sub.current_period_end.isoformat()}.",
                    messages.SUCCESS,
                )
                return self._back(sub)
        return _form_page(
            self,
            request,
            title="Start a subscription",
            intro=[
                "All prices share one currency and billing interval. Periods are anchored on "
                "the start date, or on the end of the trial.",
            ],
            form=form,
            formset=formset,
            formset_title="Prices",
            buttons=[("_save", "Start the subscription")],
        )

    # --- Transitions

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: pause through ``subscription_pause``; paused periods are not billed."""
        return self._transition(request, object_id, subscription_pause, "paused")

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: resume through ``subscription_resume``."""
        return self._transition(request, object_id, subscription_resume, "resumed")

    def _transition(
        self, request: HttpRequest, object_id: str, service: Callable[..., Any], done: str
    ) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        sub = self._subscription(request, object_id)
        try:
            service(actor=request.user, subscription_id=sub.pk)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.log_change(request, sub, done.capitalize())
            self.message_user(request, f"Subscription #{sub.pk} {done}.", messages.SUCCESS)
        return self._back(sub)

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask "at period end" or "now" (with a date), then cancel through
        ``subscription_cancel``."""
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        sub = self._subscription(request, object_id)
        if not can_proceed(sub.cancel):
            self.message_user(
                request, f"Subscription #{sub.pk} is {sub.get_status_display()}.", messages.ERROR
            )
            return self._back(sub)
        form = SubscriptionCancelForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            now = form.cleaned_data["when"] == "now"
            try:
                subscription_cancel(
                    actor=request.user,
                    subscription_id=sub.pk,
                    at_period_end=not now,
                    on_date=form.cleaned_data.get("on_date"),
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                sub.refresh_from_db()
                if now:
                    text = f"Subscription #{sub.pk} canceled on {sub.ended_on}; the days used "
                    text += "are invoiced."
                else:
                    text = f"Subscription #{sub.pk} ends on {sub.current_period_end}, "
                    text += "after its current period is billed."
                self.log_change(request, sub, "Canceled")
                self.message_user(request, text, messages.SUCCESS)
            return self._back(sub)
        return _form_page(
            self,
            request,
            title=f"Cancel subscription #{sub.pk}",
            intro=[
                f"{sub.customer.name} · {sub.get_status_display()} · current period "
                f"{sub.current_period_start.isoformat()} to {sub.current_period_end.isoformat()}.",
                "At period end: the current period is billed in full and the subscription "
                "ends when it ends. Now: the days used so far and the usage to date are "
                "invoiced at once.",
            ],
            form=form,
            buttons=[("_cancel", "Cancel the subscription")],
            obj=sub,
            cancel_url=reverse("admin:billing_subscription_change", args=[sub.pk]),
        )

    # --- Billing run

    def billing_run_view(self, request: HttpRequest) -> HttpResponse:
        """Ask for a date, show what is due (changing nothing), then run ``billing_run``."""
        if not self.has_run_billing_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if request.method == "GET":
            form = BillingRunForm(initial={"as_of": timezone.localdate()})
            return self._billing_run_page(request, form, preview=None)
        form = BillingRunForm(request.POST)
        if not form.is_valid():
            return self._billing_run_page(request, form, preview=None)
        as_of: date = form.cleaned_data["as_of"]
        if "_run" not in request.POST or form.cleaned_data.get("previewed_as_of") != as_of:
            due = list(subscriptions_due(as_of)[:201])
            form = BillingRunForm(initial={"as_of": as_of, "previewed_as_of": as_of})
            return self._billing_run_page(request, form, preview={"as_of": as_of, "due": due})
        result = billing_run(as_of=as_of, actor=request.user)
        numbers = list(
            Invoice.objects.filter(pk__in=result.invoices)
            .order_by("number", "pk")
            .values_list("number", flat=True)
        )
        shown = ", ".join(numbers[:20]) + (
            f" and {len(numbers) - 20} more" if len(numbers) > 20 else ""
        )
        if numbers:
            self.message_user(
                request,
                f"Billing run as of {as_of.isoformat()}: {len(numbers)} invoice"
                f"{'s' if len(numbers) != 1 else ''} issued ({shown}).",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, f"Billing run as of {as_of.isoformat()}: no invoice issued.", messages.INFO
            )
        for subscription_id, message in sorted(result.failures.items()):
            self.message_user(
                request, f"Subscription #{subscription_id} failed: {message}", messages.ERROR
            )
        return HttpResponseRedirect(reverse("admin:billing_subscription_changelist"))

    def _billing_run_page(
        self, request: HttpRequest, form: BillingRunForm, preview: dict[str, Any] | None
    ) -> TemplateResponse:
        buttons = [("_preview", "Preview")]
        rows: dict[str, Any] | None = None
        if preview is not None:
            due = preview["due"]
            count = subscriptions_due(preview["as_of"]).count()
            rows = {
                "summary": (
                    f"{count} subscription{'s' if count != 1 else ''} due as of "
                    f"{preview['as_of'].isoformat()}. A subscription several periods behind "
                    "gets one invoice per period. Nothing has been billed yet."
                ),
                "headers": ["Subscription", "Customer", "Status", "Period ends"],
                "rows": [
                    (
                        _change_link(s, f"#{s.pk}"),
                        s.customer.name,
                        s.get_status_display(),
                        s.current_period_end.isoformat(),
                    )
                    for s in due[:200]
                ],
                "more": count - min(len(due), 200),
            }
            if count:
                buttons = [("_preview", "Preview again"), ("_run", "Run billing now")]
        return _form_page(
            self,
            request,
            title="Run billing now",
            intro=[
                "Every subscription period that has ended by the date gets exactly one "
                "invoice, issued and posted; missed periods are caught up in order. Running "
                "twice bills nothing twice.",
            ],
            form=form,
            preview=rows,
            buttons=buttons,
        )


# --- Credit notes -----------------------------------------------------------------------------


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = ("description", "amount_display", "tax_rate_display", "tax_display")
    readonly_fields = fields
    verbose_name_plural = "Lines"

    @admin.display(description="Amount")
    def amount_display(self, line: CreditNoteLine) -> str:
        return money_display(line.amount)

    @admin.display(description="Tax rate")
    def tax_rate_display(self, line: CreditNoteLine) -> str:
        return percent_text(line.tax_rate)

    @admin.display(description="Tax")
    def tax_display(self, line: CreditNoteLine) -> str:
        return money_display(line.tax_amount)


class CreditableInvoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return (
            f"{obj} · {obj.customer.name} · total {money_display(obj.total)} · "
            f"due {money_display(obj.amount_due)}"
        )


class CreditNoteAddForm(forms.Form):
    invoice = CreditableInvoiceField(
        queryset=Invoice.objects.filter(status__in=[InvoiceStatus.OPEN, InvoiceStatus.PAID])
        .select_related("customer")
        .order_by("-issue_date", "-pk"),
        help_text="Open or paid invoices.",
    )
    extent = forms.ChoiceField(
        label="Credit",
        choices=[
            ("full", "The whole invoice (each of its lines)"),
            ("partial", "Only the lines below given an amount (net, in the invoice's currency)"),
        ],
        widget=forms.RadioSelect,
        initial="full",
    )
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    issue_date = forms.DateField(required=False, widget=DATE_INPUT, help_text="Empty: today.")


class CreditLineForm(forms.Form):
    description = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 40})
    )
    amount = forms.DecimalField(
        max_digits=19, decimal_places=4, required=False, help_text="Net of tax."
    )
    tax_rate = PercentField(
        required=False, label="Tax rate (%)", help_text="Percent (8.75); empty: the invoice's rate."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("amount") is not None and not data.get("description"):
            self.add_error("description", "A credited line needs a description.")
        return data


CreditLineFormSet = forms.formset_factory(CreditLineForm, extra=3)


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk; issue (the add page,
    through ``credit_note_issue``) for holders of billing.add_creditnote: finance_admin and
    controller. A credit note is posted when issued: read-only, never changed or deleted."""

    list_display = (
        "number",
        "invoice_link",
        "customer",
        "currency",
        "total_amount",
        "issue_date",
        "reason",
    )
    list_select_related = ("invoice", "customer")
    list_filter = ("currency", "issue_date")
    search_fields = ("number", "invoice__number", "customer__name", "customer__email")
    date_hierarchy = "issue_date"
    change_form_template = "admin/billing/readonly_rows_change_form.html"
    fields = (
        "number",
        "invoice_link",
        "customer_link",
        "issue_date",
        "reason",
        "subtotal_display",
        "tax_display",
        "total_display",
        "applied_to_invoice_display",
        "applied_to_balance_display",
        "ledger_entry_link",
        "issued_at",
        "issued_by",
    )
    readonly_fields = fields
    inlines = (CreditNoteLineInline,)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("billing.add_creditnote")

    @admin.display(description="Invoice", ordering="invoice__number")
    def invoice_link(self, note: CreditNote) -> str:
        return _change_link(note.invoice, str(note.invoice))

    @admin.display(description="Customer")
    def customer_link(self, note: CreditNote) -> str:
        return _change_link(note.customer, note.customer.name)

    @admin.display(description="Total", ordering="total")
    def total_amount(self, note: CreditNote) -> str:
        return amount_display(note.total)

    @admin.display(description="Subtotal")
    def subtotal_display(self, note: CreditNote) -> str:
        return money_display(note.subtotal)

    @admin.display(description="Tax")
    def tax_display(self, note: CreditNote) -> str:
        return money_display(note.tax)

    @admin.display(description="Total")
    def total_display(self, note: CreditNote) -> str:
        return money_display(note.total)

    @admin.display(description="Against the invoice")
    def applied_to_invoice_display(self, note: CreditNote) -> str:
        return money_display(note.applied_to_invoice)

    @admin.display(description="To the customer's credit balance")
    def applied_to_balance_display(self, note: CreditNote) -> str:
        return money_display(note.applied_to_balance)

    @admin.display(description="Ledger entry")
    def ledger_entry_link(self, note: CreditNote) -> str:
        return _entry_link(note.ledger_entry_id)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Choose an invoice, credit it whole or in part with a reason, through
        ``credit_note_issue``."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if request.method == "POST":
            form = CreditNoteAddForm(request.POST)
            formset = CreditLineFormSet(request.POST, prefix="lines")
        else:
            chosen = request.GET.get("invoice", "")
            form = CreditNoteAddForm(initial={"invoice": chosen})
            # From an invoice's page: its lines to pick from (an amount on those credited).
            lines = (
                InvoiceLine.objects.filter(invoice_id=int(chosen)).order_by("pk")
                if chosen.isdigit()
                else InvoiceLine.objects.none()
            )
            formset = CreditLineFormSet(
                prefix="lines",
                initial=[{"description": li.description, "tax_rate": li.tax_rate} for li in lines],
            )
        if request.method == "POST" and form.is_valid() and formset.is_valid():
            lines: list[CreditLineInput] | None = None
            if form.cleaned_data["extent"] == "partial":
                lines = [
                    CreditLineInput(
                        description=row["description"],
                        amount=row["amount"],
                        tax_rate=row.get("tax_rate"),
                    )
                    for row in formset.cleaned_data
                    if row.get("amount") is not None
                ]
                if not lines:
                    form.add_error(
                        "extent", "Give at least one line to credit, or credit the whole invoice."
                    )
            if not form.errors:
                response = self._issue(request, form, lines)
                if response is not None:
                    return response
        return _form_page(
            self,
            request,
            title="Issue a credit note",
            intro=[
                "The credit reduces what the invoice still has due; what exceeds it goes to "
                "the customer's credit balance. It is posted to the ledger when issued and "
                "cannot be changed afterwards.",
            ],
            form=form,
            formset=formset,
            formset_title="Lines (partial credit only)",
            buttons=[("_save", "Issue the credit note")],
        )

    def _issue(
        self, request: HttpRequest, form: CreditNoteAddForm, lines: list[CreditLineInput] | None
    ) -> HttpResponse | None:
        data = form.cleaned_data
        try:
            note = credit_note_issue(
                actor=request.user,
                invoice_id=data["invoice"].pk,
                reason=data["reason"],
                lines=lines,
                issue_date=data.get("issue_date"),
            )
        except DomainError as exc:
            _add_service_error(form, exc)
            return None
        self.log_addition(request, note, [{"added": {}}])
        self.message_user(
            request,
            f"Credit note {note.number} issued on invoice {note.invoice}: "
            f"{money_display(note.total)} ({money_display(note.applied_to_invoice)} against the "
            f"invoice, {money_display(note.applied_to_balance)} to the credit balance).",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:billing_creditnote_change", args=[note.pk]))


# --- Processor records and usage (read-only) --------------------------------------------------


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk. Read-only: methods
    are added and removed through the API (``payment_method_add`` / ``_remove``). Cards exist
    only as processor tokens; bank account numbers are shown masked, never in full (not in
    the history either)."""

    list_display = (
        "method_label",
        "customer",
        "type",
        "processor",
        "expiry",
        "is_default",
        "active",
        "created_at",
    )
    list_select_related = ("customer",)
    list_filter = ("processor", "type", "is_default")
    search_fields = (
        "customer__name",
        "customer__email",
        "card_last4",
        "bank_account_last4",
        "processor_customer_id",
        "processor_account",
    )
    fields = (
        "customer",
        "type",
        "processor",
        "processor_customer_id",
        "processor_token",
        "card_brand",
        "card_last4",
        "expiry",
        "processor_account",
        "bank_account_holder",
        "bank_routing_number",
        "bank_account_masked",
        "is_default",
        "created_at",
        "created_by",
        "detached_at",
        "processor_detached_at",
    )
    readonly_fields = fields
    # Never shown, not even as a change in the history list.
    hidden_fields = ("bank_account_number",)

    @admin.display(description="Payment method")
    def method_label(self, method: PaymentMethod) -> str:
        return str(method)

    @admin.display(description="Expires")
    def expiry(self, method: PaymentMethod) -> str:
        if not method.card_exp_month or not method.card_exp_year:
            return "-"
        return f"{method.card_exp_month:02d}/{method.card_exp_year}"

    @admin.display(description="Active", boolean=True)
    def active(self, method: PaymentMethod) -> bool:
        return method.is_active

    @admin.display(description="Bank account")
    def bank_account_masked(self, method: PaymentMethod) -> str:
        return method.bank_account_masked or "-"

    def set_history_delta_changes(
        self, request: HttpRequest, historical_records: Any, foreign_keys_are_objs: bool = True
    ) -> None:
        previous = None
        for current in historical_records:
            if previous is not None:
                delta = previous.diff_against(
                    current,
                    excluded_fields=self.hidden_fields,
                    foreign_keys_are_objs=foreign_keys_are_objs,
                )
                helper = self.get_historical_record_context_helper(request, previous)
                previous.history_delta_changes = helper.context_for_delta_changes(delta)
            previous = current


@admin.register(ProcessorAttempt)
class ProcessorAttemptAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk. Read-only: attempts
    are written by the charge services, webhooks and the resolution task."""

    list_display = (
        "created_at",
        "processor",
        "customer",
        "invoice",
        "amount_display",
        "status",
        "processor_intent_id",
        "failure_code",
    )
    list_select_related = ("customer", "invoice")
    list_filter = ("processor", "status", "currency")
    search_fields = (
        "idempotency_key",
        "processor_intent_id",
        "processor_charge_id",
        "customer__name",
        "invoice__number",
    )
    fields = (
        "processor",
        "customer",
        "payment_method",
        "invoice",
        "amount_display",
        "amount_minor",
        "status",
        "idempotency_key",
        "processor_intent_id",
        "processor_charge_id",
        "failure_code",
        "failure_message",
        "payment",
        "created_at",
        "created_by",
        "completed_at",
        "last_checked_at",
        "check_count",
    )
    readonly_fields = fields

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, attempt: ProcessorAttempt) -> str:
        return money_display(attempt.amount)


@admin.register(InvoiceAutopay)
class InvoiceAutopayAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk. Read-only: the
    schedule is worked by ``billing.services.autopay``; each try is a processor attempt."""

    list_display = (
        "invoice",
        "customer_display",
        "status",
        "tries",
        "next_attempt_at",
        "last_failure_code",
        "stop_reason",
    )
    list_select_related = ("invoice__customer",)
    list_filter = ("status", "last_failure_code")
    search_fields = ("invoice__number", "invoice__customer__name")
    date_hierarchy = "created_at"
    fields = (
        "invoice",
        "customer_display",
        "status",
        "tries",
        "next_attempt_at",
        "last_failure_code",
        "stop_reason",
        "customer_notified_at",
        "attempts_display",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="Customer", ordering="invoice__customer__name")
    def customer_display(self, row: InvoiceAutopay) -> str:
        return row.invoice.customer.name

    @admin.display(description="Tries")
    def attempts_display(self, row: InvoiceAutopay) -> str:
        keys = [autopay_key(row.invoice_id, n) for n in range(1, row.tries + 1)]
        attempts = ProcessorAttempt.objects.filter(idempotency_key__in=keys).order_by("created_at")
        return (
            format_html_join(
                mark_safe("<br>"),  # nosec B308  # a constant tag, no data in it
                "{}: {} {}",
                (
                    (a.created_at.strftime("%Y-%m-%d %H:%M"), a.status, a.failure_code)
                    for a in attempts
                ),
            )
            or "-"
        )


@admin.register(CardExpiryReminder)
class CardExpiryReminderAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk. Written by the daily
    reminder run only."""

    list_display = ("sent_at", "payment_method", "customer_display", "expires_on", "days_before")
    list_select_related = ("payment_method__customer",)
    list_filter = ("days_before",)
    search_fields = ("payment_method__customer__name", "payment_method__card_last4")
    fields = ("payment_method", "customer_display", "expires_on", "days_before", "sent_at")
    readonly_fields = fields

    @admin.display(description="Customer", ordering="payment_method__customer__name")
    def customer_display(self, row: CardExpiryReminder) -> str:
        return row.payment_method.customer.name


class ProcessedFilter(admin.SimpleListFilter):
    title = "processed"
    parameter_name = "processed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Processed"), ("no", "Not processed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(processed_at__isnull=True)
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk. Read-only: events are
    stored once per id by the webhook endpoint; the payload is kept as received."""

    list_display = ("received_at", "provider", "type", "event_id", "processed_at", "outcome")
    list_filter = ("provider", "type", ProcessedFilter)
    search_fields = ("event_id", "type", "outcome")
    date_hierarchy = "received_at"
    fields = (
        "provider",
        "type",
        "event_id",
        "received_at",
        "processed_at",
        "outcome",
        "payload_display",
    )
    readonly_fields = fields

    @admin.display(description="Payload")
    def payload_display(self, event: WebhookEvent) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap">{}</pre>', json.dumps(event.payload, indent=2)
        )


class BilledFilter(admin.SimpleListFilter):
    title = "billed"
    parameter_name = "billed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Billed"), ("no", "Not billed yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(invoice__isnull=False)
        if self.value() == "no":
            return queryset.filter(invoice__isnull=True)
        return queryset


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Roles: view for finance_admin, controller, auditor and ar_clerk. Read-only: usage is
    recorded through the API (``usage_ingest``) and marked billed by the billing run."""

    list_display = (
        "occurred_at",
        "metric",
        "quantity",
        "value",
        "subscription_link",
        "invoice_link",
        "idempotency_key",
        "received_at",
    )
    list_select_related = ("item__subscription", "invoice")
    list_filter = ("metric", BilledFilter)
    search_fields = ("idempotency_key",)
    date_hierarchy = "occurred_at"
    fields = (
        "subscription_link",
        "item",
        "metric",
        "quantity",
        "value",
        "occurred_at",
        "idempotency_key",
        "invoice_link",
        "received_at",
    )
    readonly_fields = fields

    @admin.display(description="Subscription")
    def subscription_link(self, event: UsageEvent) -> str:
        return _change_link(event.item.subscription, f"#{event.item.subscription_id}")

    @admin.display(description="Invoice")
    def invoice_link(self, event: UsageEvent) -> str:
        return _change_link(event.invoice, str(event.invoice)) if event.invoice else "not yet"


class RefundAllocationInline(ReadOnlyInline):
    model = RefundAllocation
    fields = ("invoice", "amount")
    readonly_fields = fields


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor. Refunds are made through
    the API (``refund_create`` / ``refund_issue``); here they are only read."""

    list_display = (
        "refund_date",
        "customer",
        "payment",
        "amount_display",
        "reason",
        "processor_refund_id",
    )
    list_filter = ("currency", "refund_date")
    search_fields = ("customer__name", "reason", "processor_refund_id")
    list_select_related = ("customer", "payment")
    inlines = (RefundAllocationInline,)
    fields = (
        "customer",
        "payment",
        "currency",
        "amount",
        "from_credit_balance",
        "from_invoices",
        "reason",
        "refund_date",
        "processor_refund_id",
        "ledger_entry",
        "created_by",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, refund: Refund) -> str:
        return money_display(refund.amount)
