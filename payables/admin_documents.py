"""Payables documents in the admin: purchase orders, receipts, bills (captured here through
``bill_create``), expense reports and payment runs.

Documents are read-only once they exist; their transitions are admin actions calling the
services one row at a time, so one refusal (the requester approving their own order, a
match exception not accepted, a vendor on hold) is reported with the service's message and
leaves the other rows done. Every document shows the decisions taken on it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from djmoney.money import Money
from unfold.admin import TabularInline
from unfold.decorators import action
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminTextInputWidget

from core.admin import AuditedAdmin, money_display
from core.admin_confirm import confirm_action
from core.ledger.models import Account
from core.money import unit_price_text
from core.system_settings import system_settings
from payables.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceActionsMixin,
    change_link,
    decisions_table,
    file_response,
    perm_checker,
)
from payables.admin_decisions import APPROVE, approval_page, change_url, document_or_404
from payables.admin_lists import OverdueFilter, waiting_for_me
from payables.enums import DocumentKind, MatchStatus, PurchaseOrderStatus
from payables.models import (
    Bill,
    BillLine,
    ExpenseLine,
    ExpenseReport,
    PaymentRun,
    PurchaseOrder,
    PurchaseOrderLine,
    Receipt,
    ReceiptLine,
)
from payables.services.bills import (
    BillLineInput,
    bill_approve,
    bill_create,
    bill_reject,
    bill_version,
    bill_void,
)
from payables.services.expenses import (
    expense_report_approve,
    expense_report_reject,
    expense_report_version,
)
from payables.services.orders import (
    purchase_order_approve,
    purchase_order_cancel,
    purchase_order_place,
    purchase_order_reject,
    purchase_order_submit,
    purchase_order_version,
)
from payables.services.runs import (
    payment_run_approve,
    payment_run_cancel,
    payment_run_confirm,
    payment_run_export,
    payment_run_reject,
    payment_run_submit,
    payment_run_version,
)

# How many payments a run's page lists (a run may hold tens of thousands).
RUN_ITEMS_SHOWN = 100


def _number(text: Any) -> str:
    """A stored quantity or price without its trailing zeros (``4.0000`` -> ``4``)."""
    try:
        value = Decimal(str(text))
    except ArithmeticError:
        return str(text)
    return f"{value.normalize():f}"


def functional_display(value: Decimal | None) -> str:
    """An amount in the functional currency (what approval levels compare)."""
    if value is None:
        return "-"
    currency = system_settings().functional_currency
    return money_display(Money(value, currency))


def _nowrap(text: str) -> str:
    """An amount kept on one line in a list column."""
    return format_html('<span class="whitespace-nowrap">{}</span>', text)


class FunctionalTotalMixin:
    @admin.display(description="Total in the functional currency")
    def functional_total(self, document: Any) -> str:
        return functional_display(document.total_functional)


class DetailActionStatesMixin:
    """A document's page offers an action button only in the states it applies to; opening
    the action's page in another state shows the service's refusal there."""

    model: type[Model]
    # Action name -> the document states its button shows in.
    action_states: dict[str, tuple[str, ...]] = {}

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        found = super().get_actions_detail(request, object_id)  # type: ignore[misc]
        status = (
            self.model._default_manager.filter(pk=unquote(str(object_id)))
            .values_list("status", flat=True)
            .first()
        )
        return [
            a
            for a in found
            if status in self.action_states.get(a.method.original_function_name, (status,))
        ]


# --- Purchase orders ----------------------------------------------------------------------------


class PurchaseOrderLineInline(ReadOnlyInline):
    model = PurchaseOrderLine
    fields = (
        "position",
        "description",
        "quantity_display",
        "received_display",
        "unit_price_display",
        "amount_display",
        "is_inventory",
    )
    readonly_fields = fields
    verbose_name_plural = "Lines"

    @admin.display(description="Quantity")
    def quantity_display(self, line: PurchaseOrderLine) -> str:
        return _number(line.quantity)

    @admin.display(description="Received")
    def received_display(self, line: PurchaseOrderLine) -> str:
        return _number(line.quantity_received)

    @admin.display(description="Unit price")
    def unit_price_display(self, line: PurchaseOrderLine) -> str:
        # Its own precision: quantity x unit price = amount must read true.
        price = unit_price_text(line.unit_price.amount, line.currency, grouped=True)
        return f"{price} {line.currency}"

    @admin.display(description="Amount")
    def amount_display(self, line: PurchaseOrderLine) -> str:
        return money_display(line.amount)


class PurchaseOrderReceiptInline(ReadOnlyInline):
    model = Receipt
    fields = ("receipt_link", "received_on", "note", "created_by")
    readonly_fields = fields
    verbose_name_plural = "Receipts"

    @admin.display(description="Receipt")
    def receipt_link(self, receipt: Receipt) -> str:
        return change_link(receipt, f"Receipt {receipt.pk}")


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(
    DetailActionStatesMixin,
    FunctionalTotalMixin,
    ServiceActionsMixin,
    ReadOnlyAdmin,
):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor. Orders are
    written through the API and the approval screens; here: Submit and Cancel for holders
    of payables.add/change_purchaseorder, Approve and Reject for holders of
    payables.approve_purchaseorder (never the requester: the service refuses and says so),
    Place for payables.order_purchaseorder. Never deleted."""

    mine_field = "requester"
    mine_label = "Requested by me"

    # Exact amounts in the search box (core.admin_workspace).
    search_amount_fields = ("total",)

    list_display = ("number", "vendor", "status", "total_display", "requester", "submitted_at")
    list_filter = (
        waiting_for_me(DocumentKind.PURCHASE_ORDER),
        "status",
        "currency",
        "department",
    )
    search_fields = ("number", "vendor__name", "description", "department")
    list_select_related = ("vendor", "requester")
    date_hierarchy = "created_at"
    inlines = (PurchaseOrderLineInline, PurchaseOrderReceiptInline)
    actions = (
        "submit_selected",
        "reject_selected",
        "place_selected",
        "cancel_selected",
    )
    actions_detail = ("approve_detail",)
    action_states = {"approve_detail": ("pending_approval",)}
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "vendor",
                    "status",
                    "currency",
                    "department",
                    "description",
                    "requester",
                )
            },
        ),
        ("Amounts", {"fields": ("total_display", "functional_total")}),
        ("Decisions", {"fields": ("decisions",)}),
        (
            "Dates",
            {
                "fields": (
                    "created_at",
                    "submitted_at",
                    "approved_at",
                    "rejected_at",
                    "ordered_at",
                    "ordered_by",
                    "sent_at",
                    "received_at",
                    "closed_at",
                    "cancelled_at",
                    "cancel_reason",
                )
            },
        ),
    )
    readonly_fields = tuple(f for _, o in fieldsets for f in o["fields"])

    has_submit_permission = perm_checker("payables.add_purchaseorder")
    has_approve_permission = perm_checker("payables.approve_purchaseorder")
    has_place_permission = perm_checker("payables.order_purchaseorder")
    has_cancel_permission = perm_checker("payables.change_purchaseorder")

    @admin.display(description="Total", ordering="total")
    def total_display(self, order: PurchaseOrder) -> str:
        return _nowrap(money_display(order.total))

    @admin.display(description="Decisions (who, when, comment)")
    def decisions(self, order: PurchaseOrder) -> str:
        return decisions_table(DocumentKind.PURCHASE_ORDER, order.pk)

    @admin.action(description="Submit selected orders for approval", permissions=["submit"])
    def submit_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.each(
            request,
            queryset,
            lambda o: purchase_order_submit(order_id=o.pk, actor=request.user),
            "order(s) submitted",
            lambda o: f"{o.number}: {o.get_status_display().lower()}.",
        )

    def has_approve_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("payables.approve_purchaseorder")

    @action(description=APPROVE, url_path="approve", permissions=["approve_detail"])
    def approve_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        order = document_or_404(self, request, object_id)
        return approval_page(
            self,
            request,
            document=order,
            label=f"order {order.number}",
            version=purchase_order_version(order),
            approve=lambda comment, version: purchase_order_approve(
                order_id=order.pk, actor=request.user, comment=comment, expected_version=version
            ),
            summary=(
                ("Order", order.number),
                ("Vendor", str(order.vendor)),
                ("Total", money_display(order.total)),
                ("Requested by", str(order.requester or "-")),
                (
                    "What it does",
                    "Records your approval. Once every level the order's amount needs has "
                    "approved, the order may be placed with the vendor. Nothing is posted to "
                    "the ledger.",
                ),
            ),
            posts=False,
        )

    @admin.action(description="Reject selected orders", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="reject_selected",
            title="Reject purchase orders",
            explanation="The requester sees your comment with the rejection.",
            label="Comment",
            button="Reject",
            apply=lambda o, comment: purchase_order_reject(
                order_id=o.pk, actor=request.user, comment=comment
            ),
            done="order(s) rejected",
        )

    @admin.action(description="Place selected orders with the vendor", permissions=["place"])
    def place_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.each(
            request,
            queryset,
            lambda o: purchase_order_place(order_id=o.pk, actor=request.user),
            "order(s) placed (the PDF is emailed to the vendor)",
        )

    @admin.action(description="Cancel selected orders", permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="cancel_selected",
            title="Cancel purchase orders",
            explanation="An order with receipts cannot be cancelled: close it instead.",
            label="Reason",
            button="Cancel the orders",
            apply=lambda o, reason: purchase_order_cancel(
                order_id=o.pk, actor=request.user, reason=reason
            ),
            done="order(s) cancelled",
        )


# --- Receipts -----------------------------------------------------------------------------------


class ReceiptLineInline(ReadOnlyInline):
    model = ReceiptLine
    fields = ("order_line", "quantity")
    readonly_fields = fields
    verbose_name_plural = "Lines received"


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor. Recorded
    through the API (``receipt_create``); read-only here."""

    list_display = ("receipt_label", "order", "received_on", "note", "created_by")
    list_display_links = ("receipt_label",)
    list_filter = ("received_on",)
    search_fields = ("order__number", "order__vendor__name", "note")
    list_select_related = ("order", "created_by")
    fields = ("order", "received_on", "note", "created_at", "created_by")
    readonly_fields = fields
    inlines = (ReceiptLineInline,)

    @admin.display(description="Receipt", ordering="pk")
    def receipt_label(self, receipt: Receipt) -> str:
        return f"Receipt {receipt.pk}"


# --- Bills --------------------------------------------------------------------------------------


class BillForm(forms.ModelForm):
    currency = forms.CharField(
        max_length=3,
        required=False,
        help_text="ISO 4217 code; empty: the vendor's currency.",
        widget=UnfoldAdminTextInputWidget(attrs={"size": 3, "class": "max-w-24"}),
    )

    class Meta:
        model = Bill
        fields = (
            "vendor",
            "number",
            "currency",
            "bill_date",
            "purchase_order",
            "description",
            "duplicate_override_reason",
        )
        labels = {"number": "Vendor's invoice number"}
        help_texts = {
            "purchase_order": "The placed order this bill matches (three-way match).",
            "duplicate_override_reason": "Only for a bill that looks like a duplicate (same "
            "amount and date) but is not: say why.",
        }


class OrderLineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PurchaseOrderLine) -> str:
        return f"{obj.order.number} / {obj.position}: {obj.description}"


class BillLineForm(forms.ModelForm):
    """A line as ``bill_create`` takes it: a plain unit price in the bill's currency."""

    price = forms.DecimalField(
        max_digits=19,
        decimal_places=4,
        min_value=Decimal(0),
        label="Unit price",
        widget=UnfoldAdminDecimalFieldWidget(attrs={"step": "any", "style": "width: 8em"}),
    )
    order_line = OrderLineChoiceField(
        queryset=PurchaseOrderLine.objects.filter(
            order__status__in=(PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.RECEIVED)
        )
        .select_related("order")
        .order_by("-order_id", "position"),
        required=False,
        help_text="The line of the bill's purchase order (lines of placed orders).",
    )
    account = forms.ModelChoiceField(
        queryset=Account.objects.filter(is_active=True, type__in=("expense", "asset")),
        required=False,
        help_text="Empty: expenses (or inventory for a stock order line).",
    )

    class Meta:
        model = BillLine
        fields = ("description", "quantity", "order_line", "account")
        widgets = {
            "description": UnfoldAdminTextInputWidget(attrs={"size": 24}),
            "quantity": UnfoldAdminDecimalFieldWidget(attrs={"step": "any", "style": "width: 6em"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("order_line", "account"):
            self.fields[name].widget.attrs["style"] = "max-width: 15em"

    def line_input(self) -> BillLineInput:
        data = self.cleaned_data
        order_line = data.get("order_line")
        account = data.get("account")
        return BillLineInput(
            description=data["description"],
            quantity=data["quantity"],
            unit_price=data["price"],
            order_line_id=order_line.pk if order_line else None,
            account_id=account.pk if account else None,
        )


class BillLineCaptureInline(TabularInline):
    """The lines typed in with a new bill; the service writes them with the bill."""

    model = BillLine
    form = BillLineForm
    fields = ("description", "quantity", "price", "order_line", "account")
    extra = 3
    can_delete = False
    verbose_name_plural = "Lines"

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and request.user.has_perm("payables.add_bill")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and request.user.has_perm("payables.add_bill")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("payables.add_bill")


class BillLineInline(ReadOnlyInline):
    model = BillLine
    fields = (
        "position",
        "description",
        "quantity_display",
        "unit_price_display",
        "amount_display",
        "order_line",
        "account",
    )
    readonly_fields = fields
    verbose_name_plural = "Lines"

    @admin.display(description="Quantity")
    def quantity_display(self, line: BillLine) -> str:
        return _number(line.quantity)

    @admin.display(description="Unit price")
    def unit_price_display(self, line: BillLine) -> str:
        return money_display(line.unit_price)

    @admin.display(description="Amount")
    def amount_display(self, line: BillLine) -> str:
        return money_display(line.amount)


@admin.register(Bill)
class BillAdmin(
    DetailActionStatesMixin,
    FunctionalTotalMixin,
    ServiceActionsMixin,
    AuditedAdmin,
):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor; capture (add)
    for finance_admin and ap_clerk through ``bill_create`` (duplicate check, three-way match,
    submitted for approval); Approve, Approve accepting the match exception and Reject for
    holders of payables.approve_bill, never whoever captured the bill; Void for
    payables.change_bill. A bill is read-only once captured and never deleted."""

    mine_field = "created_by"
    mine_label = "Captured by me"

    # Exact amounts in the search box (core.admin_workspace).
    search_amount_fields = ("total",)

    form = BillForm
    list_display = (
        "bill_label",
        "vendor",
        "status",
        "match_status",
        "total_display",
        "amount_due_display",
        "due_date",
    )
    list_filter = (
        waiting_for_me(DocumentKind.BILL),
        OverdueFilter,
        "status",
        "match_status",
        "currency",
        "bill_date",
    )
    search_fields = ("number", "vendor__name", "purchase_order__number", "description")
    list_select_related = ("vendor", "purchase_order")
    date_hierarchy = "bill_date"
    autocomplete_fields = ("vendor", "purchase_order")
    actions = ("reject_selected", "void_selected")
    actions_detail = ("approve_detail",)
    action_states = {"approve_detail": ("pending_approval",)}
    shown = (
        (
            None,
            {
                "fields": (
                    "vendor",
                    "number",
                    "status",
                    "currency",
                    "bill_date",
                    "due_date",
                    "purchase_order",
                    "description",
                    "duplicate_override_reason",
                    "attachment_link",
                )
            },
        ),
        (
            "Amounts",
            {
                "fields": (
                    "total_display",
                    "amount_paid_display",
                    "amount_due_display",
                    "discount_display",
                    "discount_date",
                    "functional_total",
                )
            },
        ),
        ("Three-way match", {"fields": ("match_status", "match_display")}),
        ("Decisions", {"fields": ("decisions",)}),
        (
            "Record",
            {
                "fields": (
                    "created_at",
                    "created_by",
                    "submitted_at",
                    "approved_at",
                    "journal_entry",
                    "paid_at",
                    "voided_at",
                    "void_reason",
                )
            },
        ),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Bill | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": BillForm.Meta.fields})]
        return self.shown

    def get_readonly_fields(self, request: HttpRequest, obj: Bill | None = None) -> Any:
        if obj is None:
            return ()
        return tuple(f for _, o in self.shown for f in o["fields"])

    def get_inline_instances(self, request: HttpRequest, obj: Bill | None = None) -> list[Any]:
        inline = BillLineCaptureInline if obj is None else BillLineInline
        return [inline(self.model, self.admin_site)]

    def has_change_permission(self, request: HttpRequest, obj: Bill | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Bill | None = None) -> bool:
        return False

    has_approve_permission = perm_checker("payables.approve_bill")
    has_void_permission = perm_checker("payables.change_bill")

    # --- Display

    @admin.display(description="Bill", ordering="number")
    def bill_label(self, bill: Bill) -> str:
        return format_html('<span style="white-space: nowrap">{}</span>', bill.number)

    @admin.display(description="Total", ordering="total")
    def total_display(self, bill: Bill) -> str:
        return _nowrap(money_display(bill.total))

    @admin.display(description="Paid")
    def amount_paid_display(self, bill: Bill) -> str:
        return money_display(bill.amount_paid)

    @admin.display(description="Amount due")
    def amount_due_display(self, bill: Bill) -> str:
        return _nowrap(money_display(bill.total - bill.amount_paid))

    @admin.display(description="Early-payment discount")
    def discount_display(self, bill: Bill) -> str:
        return money_display(bill.discount_amount) if bill.discount_amount.amount else "-"

    @admin.display(description="Attachment")
    def attachment_link(self, bill: Bill) -> str:
        if not bill.attachment:
            return "-"
        url = reverse("admin:payables_bill_attachment", args=[bill.pk])
        return format_html('<a href="{}">Download</a>', url)

    @admin.display(description="Match by line")
    def match_display(self, bill: Bill) -> str:
        result = bill.match_result or {}
        lines = result.get("lines") or []
        if not lines:
            if bill.match_status == MatchStatus.NOT_APPLICABLE:
                return "No purchase order: nothing to match."
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    line.get("position"),
                    _number(line.get("ordered", "-")),
                    _number(line.get("received", "-")),
                    _number(line.get("billed", "-")),
                    _number(line.get("order_unit_price", "-")),
                    _number(line.get("unit_price", "-")),
                    f"{Decimal(line['price_variance']):.2%}" if line.get("price_variance") else "-",
                    "OK" if line.get("ok") else f"Exception: {line.get('reason') or '-'}",
                )
                for line in lines
            ),
        )
        tolerance = result.get("tolerance") or {}
        note = ""
        if tolerance:
            note = (
                f"Tolerances: price +{Decimal(tolerance['price_percent']):.2%}, "
                f"quantity +{Decimal(tolerance['quantity_percent']):.2%}."
            )
        return format_html(
            '<table class="payables-match"><thead><tr><th>Line</th><th>Ordered</th>'
            "<th>Received</th><th>Billed (all bills)</th><th>Order price</th>"
            "<th>Billed price</th><th>Price variance</th><th>Result</th></tr></thead>"
            "<tbody>{}</tbody></table><p>{}</p>",
            rows,
            note,
        )

    @admin.display(description="Decisions (who, when, comment)")
    def decisions(self, bill: Bill) -> str:
        return decisions_table(DocumentKind.BILL, bill.pk)

    # --- Capture through bill_create

    def save_model(self, request: HttpRequest, obj: Bill, form: Any, change: bool) -> None:
        """Nothing here: the bill and its lines are written together in ``save_related``."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            return
        lines: list[BillLineInput] = []
        for formset in formsets:
            # The admin never saves the inline rows itself: the service writes them.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is not BillLine:
                continue
            for line_form in formset.forms:
                if not line_form.has_changed() or not line_form.cleaned_data:
                    continue
                lines.append(line_form.line_input())
        data = form.cleaned_data
        vendor = data["vendor"]
        order = data.get("purchase_order")
        bill = bill_create(
            actor=request.user,
            vendor_id=vendor.pk,
            number=data["number"],
            currency=(data.get("currency") or vendor.currency).upper(),
            bill_date=data["bill_date"],
            lines=lines,
            purchase_order_id=order.pk if order else None,
            description=data.get("description") or "",
            duplicate_override_reason=data.get("duplicate_override_reason") or "",
        )
        form.instance.pk = bill.pk
        self.message_user(
            request,
            f"Bill {bill.number}: {bill.get_match_status_display().lower()}, "
            f"{bill.get_status_display().lower()}.",
            messages.INFO,
        )

    def response_post_save_add(self, request: HttpRequest, obj: Bill) -> HttpResponse:
        """To the captured bill's page: its match result and status are what to check."""
        return HttpResponseRedirect(reverse("admin:payables_bill_change", args=[obj.pk]))

    # --- Actions

    def has_approve_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("payables.approve_bill")

    @action(description=APPROVE, url_path="approve", permissions=["approve_detail"])
    def approve_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        bill = document_or_404(self, request, object_id)
        exception = bill.match_status == MatchStatus.EXCEPTION
        summary = [
            ("Bill", f"{bill.number} from {bill.vendor}"),
            ("Total", money_display(bill.total)),
            ("Due", f"{bill.due_date:%Y-%m-%d}" if bill.due_date else "-"),
            ("Three-way match", bill.get_match_status_display()),
        ]
        if exception:
            summary.append(
                (
                    "Match exception",
                    "The bill differs from its order or receipt beyond the tolerances. "
                    "Approving accepts the difference; say why it is right.",
                )
            )
        return approval_page(
            self,
            request,
            document=bill,
            label=f"bill {bill.number}",
            version=bill_version(bill),
            approve=lambda comment, version: bill_approve(
                bill_id=bill.pk,
                actor=request.user,
                comment=comment,
                accept_match_exception=exception,
                expected_version=version,
            ),
            summary=summary,
            posts=True,
            comment_required=exception,
            comment_help="Why the difference from the order is right: kept with your approval."
            if exception
            else "",
        )

    @admin.action(description="Reject selected bills (back to draft)", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="reject_selected",
            title="Reject bills",
            explanation="A rejected bill goes back to draft with your comment.",
            label="Comment",
            button="Reject",
            apply=lambda b, comment: bill_reject(bill_id=b.pk, actor=request.user, comment=comment),
            done="bill(s) rejected",
        )

    @admin.action(description="Void selected bills", permissions=["void"])
    def void_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="void_selected",
            title="Void bills",
            explanation="Only bills nothing was paid on can be voided; an approved bill's "
            "posting is reversed.",
            label="Reason",
            button="Void",
            apply=lambda b, reason: bill_void(bill_id=b.pk, actor=request.user, reason=reason),
            done="bill(s) voided",
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/attachment/",
                self.admin_site.admin_view(self.attachment_view),
                name="payables_bill_attachment",
            ),
            *super().get_urls(),
        ]

    def attachment_view(self, request: HttpRequest, object_id: str) -> Any:
        bill = self.get_object(request, unquote(object_id))
        if bill is None:
            raise Http404
        if not self.has_view_permission(request, bill):
            raise PermissionDenied
        return file_response(bill.attachment, bill.attachment.name.rsplit("/", 1)[-1])


# --- Expense reports ----------------------------------------------------------------------------


class ExpenseLineInline(ReadOnlyInline):
    model = ExpenseLine
    fields = (
        "position",
        "spent_on",
        "category",
        "description",
        "amount_display",
        "over_limit",
        "justification",
        "receipt_link",
    )
    readonly_fields = fields
    verbose_name_plural = "Lines"

    @admin.display(description="Amount")
    def amount_display(self, line: ExpenseLine) -> str:
        return money_display(line.amount)

    @admin.display(description="Receipt")
    def receipt_link(self, line: ExpenseLine) -> str:
        if not line.receipt:
            return "-"
        url = reverse("admin:payables_expensereport_receipt", args=[line.report_id, line.pk])
        return format_html('<a href="{}">{}</a>', url, line.receipt_name or "receipt")


@admin.register(ExpenseReport)
class ExpenseReportAdmin(
    DetailActionStatesMixin,
    FunctionalTotalMixin,
    ServiceActionsMixin,
    ReadOnlyAdmin,
):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor; Approve and
    Reject for holders of payables.approve_expensereport, never the employee. Written by
    the employee through the API; read-only here, never deleted."""

    mine_field = "employee"
    mine_label = "My expense reports"

    # Exact amounts in the search box (core.admin_workspace).
    search_amount_fields = ("total",)

    list_display = ("number", "title", "employee", "status", "total_display", "submitted_at")
    list_filter = (waiting_for_me(DocumentKind.EXPENSE_REPORT), "status", "currency")
    search_fields = ("number", "title", "employee__username", "employee__last_name")
    list_select_related = ("employee",)
    inlines = (ExpenseLineInline,)
    actions = ("reject_selected",)
    actions_detail = ("approve_detail",)
    action_states = {"approve_detail": ("pending_approval",)}
    fieldsets = (
        (None, {"fields": ("number", "title", "employee", "payee", "status", "currency")}),
        (
            "Amounts",
            {"fields": ("total_display", "amount_paid_display", "functional_total")},
        ),
        ("Decisions", {"fields": ("decisions",)}),
        (
            "Record",
            {
                "fields": (
                    "created_at",
                    "submitted_at",
                    "approved_at",
                    "rejected_at",
                    "reimbursed_at",
                    "journal_entry",
                )
            },
        ),
    )
    readonly_fields = tuple(f for _, o in fieldsets for f in o["fields"])

    has_approve_permission = perm_checker("payables.approve_expensereport")

    @admin.display(description="Total", ordering="total")
    def total_display(self, report: ExpenseReport) -> str:
        return _nowrap(money_display(report.total))

    @admin.display(description="Reimbursed")
    def amount_paid_display(self, report: ExpenseReport) -> str:
        return money_display(report.amount_paid)

    @admin.display(description="Decisions (who, when, comment)")
    def decisions(self, report: ExpenseReport) -> str:
        return decisions_table(DocumentKind.EXPENSE_REPORT, report.pk)

    def has_approve_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("payables.approve_expensereport")

    @action(description=APPROVE, url_path="approve", permissions=["approve_detail"])
    def approve_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        report = document_or_404(self, request, object_id)
        return approval_page(
            self,
            request,
            document=report,
            label=f"expense report {report.number}",
            version=expense_report_version(report),
            approve=lambda comment, version: expense_report_approve(
                report_id=report.pk, actor=request.user, comment=comment, expected_version=version
            ),
            summary=(
                ("Expense report", f"{report.number}: {report.title}"),
                ("Employee", str(report.employee)),
                ("Total", money_display(report.total)),
            ),
            posts=True,
        )

    @admin.action(description="Reject selected expense reports", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="reject_selected",
            title="Reject expense reports",
            explanation="The employee sees your comment and may correct and resubmit.",
            label="Comment",
            button="Reject",
            apply=lambda r, comment: expense_report_reject(
                report_id=r.pk, actor=request.user, comment=comment
            ),
            done="expense report(s) rejected",
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/receipts/<int:line_id>/",
                self.admin_site.admin_view(self.receipt_view),
                name="payables_expensereport_receipt",
            ),
            *super().get_urls(),
        ]

    def receipt_view(self, request: HttpRequest, object_id: str, line_id: int) -> Any:
        report = self.get_object(request, unquote(object_id))
        if report is None:
            raise Http404
        if not self.has_view_permission(request, report):
            raise PermissionDenied
        line = ExpenseLine.objects.filter(report=report, pk=line_id).first()
        if line is None:
            raise Http404
        return file_response(line.receipt, line.receipt_name or f"receipt{line.receipt_ext}")


# --- Payment runs -------------------------------------------------------------------------------


@admin.register(PaymentRun)
class PaymentRunAdmin(
    DetailActionStatesMixin,
    FunctionalTotalMixin,
    ServiceActionsMixin,
    ReadOnlyAdmin,
):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor; Submit,
    Export, Confirm paid and Cancel for holders of payables.change_paymentrun (finance_admin,
    ap_clerk); Approve and Reject for holders of payables.approve_paymentrun, never the run's
    creator. Created through the API or the schedule; never deleted."""

    mine_field = "created_by"
    mine_label = "Created by me"

    # Exact amounts in the search box (core.admin_workspace).
    search_amount_fields = ("total",)

    list_display = (
        "number",
        "status",
        "total_display",
        "item_count",
        "payment_date",
        "file_format",
        "created_by",
    )
    list_filter = (
        waiting_for_me(DocumentKind.PAYMENT_RUN),
        "status",
        "currency",
        "file_format",
        "payment_date",
    )
    search_fields = ("number",)
    list_select_related = ("created_by",)
    actions = ("submit_selected", "reject_selected", "cancel_selected")
    actions_detail = ("approve_detail", "release_detail", "confirm_detail")
    action_states = {
        "approve_detail": ("pending_approval",),
        "release_detail": ("approved",),
        "confirm_detail": ("exported",),
    }
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "status",
                    "currency",
                    "file_format",
                    "pay_by",
                    "payment_date",
                    "file_link",
                    "file_sha256",
                )
            },
        ),
        (
            "Amounts",
            {"fields": ("total_display", "discount_display", "functional_total", "item_count")},
        ),
        ("Payments", {"fields": ("items_table", "exclusions_display")}),
        ("Decisions", {"fields": ("decisions",)}),
        (
            "Record",
            {
                "fields": (
                    "created_at",
                    "created_by",
                    "submitted_at",
                    "approved_at",
                    "exported_at",
                    "paid_at",
                    "cancelled_at",
                )
            },
        ),
    )
    readonly_fields = tuple(f for _, o in fieldsets for f in o["fields"])

    has_run_permission = perm_checker("payables.change_paymentrun")
    has_approve_permission = perm_checker("payables.approve_paymentrun")

    @admin.display(description="Total", ordering="total")
    def total_display(self, run: PaymentRun) -> str:
        return _nowrap(money_display(run.total))

    @admin.display(description="Discounts taken")
    def discount_display(self, run: PaymentRun) -> str:
        return money_display(run.discount_total)

    @admin.display(description="Bank file")
    def file_link(self, run: PaymentRun) -> str:
        if not run.file:
            return "-"
        url = reverse("admin:payables_paymentrun_file", args=[run.pk])
        return format_html('<a href="{}">Download {}</a>', url, run.file.name.rsplit("/", 1)[-1])

    @admin.display(description="Payments")
    def items_table(self, run: PaymentRun) -> str:
        items = list(
            run.items.select_related("vendor", "bill", "expense_report").order_by("pk")[
                :RUN_ITEMS_SHOWN
            ]
        )
        if not items:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    item.end_to_end_id,
                    change_link(item.vendor),
                    change_link(item.bill, f"Bill {item.bill.number}")
                    if item.bill_id
                    else change_link(item.expense_report, item.expense_report.number),
                    money_display(item.amount),
                    money_display(item.discount) if item.discount.amount else "-",
                )
                for item in items
            ),
        )
        more = ""
        if run.item_count > len(items):
            more = f"The first {len(items)} of {run.item_count} payments."
        return format_html(
            "<table><thead><tr><th>Payment id</th><th>Payee</th><th>Document</th>"
            "<th>Amount</th><th>Discount</th></tr></thead><tbody>{}</tbody></table><p>{}</p>",
            rows,
            more,
        )

    @admin.display(description="Left out")
    def exclusions_display(self, run: PaymentRun) -> str:
        if not run.exclusions:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {}</li>",
                (
                    (
                        f"Bill {e.get('number') or e.get('bill')}"
                        if e.get("bill")
                        else f"Expense report {e.get('expense_report')}",
                        e.get("reason", ""),
                    )
                    for e in run.exclusions[:RUN_ITEMS_SHOWN]
                ),
            ),
        )

    @admin.display(description="Decisions (who, when, comment)")
    def decisions(self, run: PaymentRun) -> str:
        return decisions_table(DocumentKind.PAYMENT_RUN, run.pk)

    @admin.action(description="Submit selected runs for approval", permissions=["run"])
    def submit_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.each(
            request,
            queryset,
            lambda r: payment_run_submit(run_id=r.pk, actor=request.user),
            "run(s) submitted",
        )

    @admin.action(description="Reject selected runs", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="reject_selected",
            title="Reject payment runs",
            explanation="A rejected run is cancelled and its bills are free for another run.",
            label="Comment",
            button="Reject",
            apply=lambda r, comment: payment_run_reject(
                run_id=r.pk, actor=request.user, comment=comment
            ),
            done="run(s) rejected",
        )

    def _run_summary(self, run: PaymentRun) -> list[tuple[str, str]]:
        return [
            ("Run", run.number),
            ("Payments", f"{run.item_count} for {money_display(run.total)}"),
            ("Discounts taken", money_display(run.discount_total)),
            ("Payment date", f"{run.payment_date:%Y-%m-%d}" if run.payment_date else "-"),
            ("Bank file", run.get_file_format_display()),
        ]

    def has_approve_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("payables.approve_paymentrun")

    def has_release_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("payables.change_paymentrun")

    def has_confirm_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("payables.change_paymentrun")

    @action(description=APPROVE, url_path="approve", permissions=["approve_detail"])
    def approve_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = document_or_404(self, request, object_id)
        return approval_page(
            self,
            request,
            document=run,
            label=f"payment run {run.number}",
            version=payment_run_version(run),
            approve=lambda comment, version: payment_run_approve(
                run_id=run.pk, actor=request.user, comment=comment, expected_version=version
            ),
            summary=[
                *self._run_summary(run),
                (
                    "What it does",
                    "Records your approval of every payment in the run and of each payee's "
                    "bank account. Once approved, the bank file can be released.",
                ),
            ],
            posts=False,
        )

    @action(
        description="Release the bank file…", url_path="release", permissions=["release_detail"]
    )
    def release_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = document_or_404(self, request, object_id)
        # Not previewed: writing the file stores it, which no rollback takes back.
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=run,
            title=f"Release the bank file of payment run {run.number}",
            button="Release the bank file",
            perform=lambda form: payment_run_export(run_id=run.pk, actor=request.user),
            summary=[
                *self._run_summary(run),
                (
                    "What it does",
                    "Writes the bank file for these payments and stores it with its checksum, "
                    "ready to send to the bank. Nothing is posted until the bank confirms "
                    "the payments.",
                ),
            ],
            warning="This cannot be undone: once released, the run can no longer be changed "
            "or cancelled here.",
            done_url=change_url(run),
            cancel_url=change_url(run),
            success=f"Payment run {run.number}: bank file released.",
            danger=True,
        )

    @action(description="Confirm paid…", url_path="confirm-paid", permissions=["confirm_detail"])
    def confirm_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = document_or_404(self, request, object_id)
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=run,
            title=f"Confirm payment run {run.number} paid by the bank",
            button="Confirm paid",
            perform=lambda form: payment_run_confirm(run_id=run.pk, actor=request.user),
            preview=lambda form: payment_run_confirm(run_id=run.pk, actor=request.user),
            summary=[
                *self._run_summary(run),
                (
                    "What it does",
                    "Marks the run paid, settles each bill and expense report it pays and "
                    "posts the entry below.",
                ),
            ],
            warning="This cannot be undone: a posted payment is corrected only by a "
            "reversing entry.",
            done_url=change_url(run),
            cancel_url=change_url(run),
            success=f"Payment run {run.number}: marked paid and posted.",
            danger=True,
        )

    @admin.action(description="Cancel selected runs…", permissions=["run"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="cancel_selected",
            title="Cancel payment runs",
            explanation="The bills and expense reports of a cancelled run are free for another "
            "run; a run whose bank file was released cannot be cancelled. A cancelled run "
            "cannot be reopened.",
            label="Comment (optional)",
            button="Cancel the runs",
            apply=lambda r, comment: payment_run_cancel(run_id=r.pk, actor=request.user),
            done="run(s) cancelled",
            comment_required=False,
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/file/",
                self.admin_site.admin_view(self.file_view),
                name="payables_paymentrun_file",
            ),
            *super().get_urls(),
        ]

    def file_view(self, request: HttpRequest, object_id: str) -> Any:
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return file_response(run.file, run.file.name.rsplit("/", 1)[-1])
