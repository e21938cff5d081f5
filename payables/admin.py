"""Payables admin: vendors and their bank detail changes, approval configuration (levels,
delegations, match tolerance, expense categories) and the decisions taken; the documents
(orders, receipts, bills, expense reports, payment runs) are in ``payables.admin_documents``.

Thin callers of the services: adding a vendor goes through ``vendor_create``, activation and
blocking through ``vendor_activate`` / ``vendor_block``, bank details only through a
``VendorBankChange`` decided by a second person. A refusal comes back as a form error or an
admin message. Tax ids and bank numbers are shown masked only: no page, form or list ever
renders the clear value (inputs for them never echo what was typed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Exists, IntegerField, Model, OuterRef, QuerySet, Value, When
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from djmoney.money import Money
from unfold.admin import TabularInline

from core.admin import AuditedAdmin, ReadOnlyAdminMixin, money_display
from core.admin_confirm import workspace_widgets
from core.exceptions import DomainError
from payables.admin_lists import waiting_for_me
from payables.enums import BankChangeStatus, DocumentKind
from payables.models import (
    Approval,
    ApprovalDelegation,
    ApprovalLevel,
    ExpenseCategory,
    MatchTolerance,
    Vendor,
    VendorBankChange,
    VendorDocument,
)
from payables.services.approvals import approval_delegation_create, approval_delegation_delete
from payables.services.vendors import (
    BankDetails,
    vendor_activate,
    vendor_bank_change_approve,
    vendor_bank_change_reject,
    vendor_bank_change_request,
    vendor_block,
    vendor_create,
    vendor_update,
)

# --- Shared helpers ---------------------------------------------------------------------------


class NoEchoInput(forms.TextInput):
    """A text input that never renders a value: a tax id or account number typed in is not
    sent back in the page when the form is shown again."""

    def format_value(self, value: Any) -> None:
        return None

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, None, {**(attrs or {}), "autocomplete": "off"})
        context["widget"]["value"] = None
        return context


def secret_field(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label, required=False, help_text=help_text, widget=NoEchoInput(attrs={"size": 34})
    )


def change_link(obj: Model | None, label: str | None = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


def file_response(file: FieldFile, filename: str) -> FileResponse:
    """A stored upload or export, always as a download (never rendered by the browser)."""
    if not file:
        raise Http404
    try:
        handle = file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    return FileResponse(handle, as_attachment=True, filename=filename)


def decisions_table(kind: str, object_id: int | None) -> str:
    """Every decision on a document: who, for whom, when, the slot, the comment, and whether
    a later edit voided it."""
    if object_id is None:
        return "-"
    rows = (
        Approval.objects.filter(kind=kind, object_id=object_id)
        .select_related("user", "on_behalf_of")
        .order_by("decided_at", "pk")
    )
    if not rows:
        return "No decision yet."
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                f"{a.decided_at:%Y-%m-%d %H:%M} UTC",
                a.get_decision_display(),
                a.user.get_username()
                + (f" for {a.on_behalf_of.get_username()}" if a.on_behalf_of_id else ""),
                a.role or "-",
                a.comment or "-",
                f"voided {a.voided_at:%Y-%m-%d %H:%M}: {a.void_reason}" if a.voided_at else "",
            )
            for a in rows
        ),
    )
    return format_html(
        '<table class="payables-decisions"><thead><tr><th>When</th><th>Decision</th>'
        "<th>Who</th><th>Slot</th><th>Comment</th><th>Void</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        body,
    )


class ReadOnlyInline(TabularInline):
    """Rows shown inside their parent, never added, changed or deleted there."""

    extra = 0
    can_delete = False
    show_change_link = False
    hide_title = True  # the row's own text repeated above it adds nothing

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """A document written by its services alone: viewed here, changed by actions."""


class CommentForm(forms.Form):
    comment = forms.CharField(
        max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=True
    )


class ServiceActionsMixin:
    """Admin actions that call a service once per selected row, each in its own
    transaction, and report every refusal with the service's message."""

    message_user: Callable[..., None]
    admin_site: Any
    opts: Any

    def each(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        call: Callable[[Any], Any],
        done: str,
        describe: Callable[[Any], str] | None = None,
    ) -> int:
        count = 0
        for obj in queryset.order_by("pk"):
            try:
                result = call(obj)
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
                continue
            count += 1
            if describe is not None:
                self.message_user(request, describe(result), messages.INFO)
        if count:
            self.message_user(request, f"{count} {done}.", messages.SUCCESS)
        return count

    def with_comment(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        title: str,
        explanation: str,
        label: str,
        button: str,
        apply: Callable[[Any, str], Any],
        done: str,
        comment_required: bool = True,
    ) -> HttpResponse | None:
        """An intermediate page listing the selection and asking for a comment (or reason;
        optional unless ``comment_required``), then the service; nothing on the first click."""
        form = CommentForm(request.POST if "apply_comment" in request.POST else None)
        form.fields["comment"].label = label
        form.fields["comment"].required = comment_required
        workspace_widgets(form)
        if form.is_bound and form.is_valid():
            comment = form.cleaned_data["comment"]
            self.each(request, queryset, lambda obj: apply(obj, comment), done)
            return None
        return TemplateResponse(
            request,
            "admin/payables/action_comment.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "explanation": explanation,
                "objects": list(queryset),
                "action": action,
                "button": button,
                "form": form,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )


def perm_checker(perm: str) -> Callable[[Any, HttpRequest], bool]:
    def check(self: Any, request: HttpRequest) -> bool:
        return request.user.has_perm(perm)

    return check


# --- Vendors ----------------------------------------------------------------------------------


class OnHoldFilter(admin.SimpleListFilter):
    title = "payment hold"
    parameter_name = "on_hold"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "On hold (bank change pending)"), ("no", "Not on hold")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(on_hold=True)
        if self.value() == "no":
            return queryset.filter(on_hold=False)
        return queryset


class VendorForm(forms.ModelForm):
    """The vendor's contact details and terms. Tax id and bank numbers are typed into inputs
    that never echo them; on an existing vendor bank details change only through a bank
    detail change (second person), and an empty tax id keeps the one on file."""

    tax_id_new = secret_field(
        "Tax id", "Validated for its type (EIN, EU VAT with country prefix, GB VAT)."
    )
    account_number_new = secret_field("Account number", "US account: 4 to 17 digits.")
    iban_new = secret_field("IBAN")

    class Meta:
        model = Vendor
        fields = (
            "name",
            "email",
            "currency",
            "country",
            "address",
            "tax_id_type",
            "payment_terms_days",
            "discount_percent",
            "discount_days",
            "bank_account_holder",
            "bank_routing_number",
            "bank_account_type",
            "bic",
        )
        widgets = {
            "currency": forms.TextInput(attrs={"size": 3}),
            "country": forms.TextInput(attrs={"size": 2}),
            "address": forms.Textarea(attrs={"rows": 3, "cols": 50}),
        }
        help_texts = {
            "discount_percent": "Early-payment discount: 2 for 2/10 net 30.",
            "discount_days": "Days the discount is open: 10 for 2/10 net 30.",
        }


class VendorChangeForm(VendorForm):
    tax_id_new = secret_field(
        "New tax id", "Empty: the tax id on file stays. Validated for the type above."
    )


VENDOR_EDITABLE = (
    "name",
    "email",
    "country",
    "address",
    "tax_id_type",
    "payment_terms_days",
    "discount_percent",
    "discount_days",
)


class VendorBankChangeInline(ReadOnlyInline):
    model = VendorBankChange
    fields = (
        "change_link_display",
        "status",
        "requested_at",
        "requested_by",
        "bank_routing_number",
        "account_masked",
        "iban_masked_display",
        "decided_by",
        "decided_at",
    )
    readonly_fields = fields
    verbose_name_plural = "Bank detail changes"
    tab = True

    @admin.display(description="Change")
    def change_link_display(self, change: VendorBankChange) -> str:
        return change_link(change, f"#{change.pk}")

    @admin.display(description="Account")
    def account_masked(self, change: VendorBankChange) -> str:
        return change.bank_account_masked or "-"

    @admin.display(description="IBAN")
    def iban_masked_display(self, change: VendorBankChange) -> str:
        return change.iban_masked or "-"


class VendorDocumentInline(ReadOnlyInline):
    model = VendorDocument
    fields = ("kind", "document_link", "content_type", "size", "uploaded_at", "uploaded_by")
    readonly_fields = fields
    verbose_name_plural = "Documents"
    tab = True

    @admin.display(description="File")
    def document_link(self, document: VendorDocument) -> str:
        url = reverse("admin:payables_vendor_document", args=[document.vendor_id, document.pk])
        return format_html('<a href="{}">{}</a>', url, document.original_name)


@admin.register(Vendor)
class VendorAdmin(ServiceActionsMixin, AuditedAdmin):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor; add and change
    for finance_admin and ap_clerk (``vendor_create`` / ``vendor_update``); Activate and Block
    for holders of payables.activate_vendor (approver, controller, finance_admin), never
    the vendor's creator. Bank details change through a bank detail change. Never deleted."""

    form = VendorForm
    list_display = (
        "name",
        "status",
        "currency",
        "terms_display",
        "on_hold_display",
        "bank_display",
    )
    list_filter = ("status", "kind", "currency", OnHoldFilter, "country")
    search_fields = ("name", "email")
    actions = ("activate_selected", "block_selected")
    inlines = (VendorBankChangeInline, VendorDocumentInline)

    def get_inlines(self, request: HttpRequest, obj: Vendor | None) -> Any:
        if obj is None:
            return ()
        if request.method == "POST":
            # Saving the vendor: the read-only tabs take no part (nothing of them is posted).
            return (VendorBankChangeInline, VendorDocumentInline)
        from payables.admin_vendor_tabs import (
            VendorOpenBillsInline,
            VendorOrdersInline,
            VendorPaymentsInline,
        )

        return (
            VendorOpenBillsInline,
            VendorPaymentsInline,
            VendorOrdersInline,
            VendorBankChangeInline,
            VendorDocumentInline,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Vendor]:
        pending = VendorBankChange.objects.filter(
            vendor=OuterRef("pk"), status=BankChangeStatus.PENDING
        )
        return super().get_queryset(request).annotate(on_hold=Exists(pending))

    def get_fieldsets(self, request: HttpRequest, obj: Vendor | None = None) -> Any:
        terms = ("Terms", {"fields": ("payment_terms_days", "discount_percent", "discount_days")})
        if obj is None:
            return [
                (None, {"fields": ("name", "email", "currency", "country", "address")}),
                ("Tax", {"fields": ("tax_id_type", "tax_id_new")}),
                terms,
                (
                    "Bank details",
                    {
                        "fields": (
                            "bank_account_holder",
                            "bank_routing_number",
                            "account_number_new",
                            "bank_account_type",
                            "iban_new",
                            "bic",
                        ),
                        "description": "A US account (routing and account number) for ACH, "
                        "or an IBAN (and BIC) for credit transfers.",
                    },
                ),
            ]
        return [
            (
                None,
                {
                    "fields": (
                        "name",
                        "email",
                        "kind",
                        "employee",
                        "status",
                        "currency",
                        "country",
                        "address",
                    )
                },
            ),
            ("Tax", {"fields": ("tax_id_type", "tax_id_display", "tax_id_new")}),
            terms,
            (
                "Bank details in force",
                {
                    "fields": (
                        "bank_account_holder",
                        "bank_routing_number",
                        "bank_display",
                        "bank_account_type",
                        "iban_display",
                        "bic",
                        "on_hold_display",
                    ),
                    "description": "Changed only through a bank detail change approved by a "
                    "second person.",
                },
            ),
            (
                "Onboarding",
                {
                    "fields": (
                        "created_at",
                        "created_by",
                        "activated_at",
                        "activated_by",
                        "blocked_reason",
                    )
                },
            ),
        ]

    def get_form(
        self, request: HttpRequest, obj: Vendor | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None:
            kwargs["form"] = VendorChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Vendor | None = None) -> Any:
        if obj is None:
            return ()
        return (
            "kind",
            "employee",
            "status",
            "currency",
            "tax_id_display",
            "bank_account_holder",
            "bank_routing_number",
            "bank_display",
            "bank_account_type",
            "iban_display",
            "bic",
            "on_hold_display",
            "created_at",
            "created_by",
            "activated_at",
            "activated_by",
            "blocked_reason",
        )

    def get_inline_instances(self, request: HttpRequest, obj: Vendor | None = None) -> list[Any]:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Vendor | None = None) -> bool:
        return False

    has_activate_permission = perm_checker("payables.activate_vendor")

    # --- Display

    @admin.display(description="Terms")
    def terms_display(self, vendor: Vendor) -> str:
        net = f"net {vendor.payment_terms_days}"
        if vendor.discount_percent:
            return f"{vendor.discount_percent.normalize():f}/{vendor.discount_days} {net}"
        return net.capitalize()

    @admin.display(description="On hold", boolean=True)
    def on_hold_display(self, vendor: Vendor) -> bool:
        on_hold = getattr(vendor, "on_hold", None)
        if on_hold is None:
            on_hold = vendor.bank_changes.filter(status=BankChangeStatus.PENDING).exists()
        return bool(on_hold)

    @admin.display(description="Tax id")
    def tax_id_display(self, vendor: Vendor) -> str:
        return vendor.tax_id_masked or "-"

    @admin.display(description="Bank account")
    def bank_display(self, vendor: Vendor) -> str:
        return vendor.bank_account_masked or vendor.iban_masked or "-"

    @admin.display(description="IBAN")
    def iban_display(self, vendor: Vendor) -> str:
        return vendor.iban_masked or "-"

    # --- Saving through the services

    def save_model(self, request: HttpRequest, obj: Vendor, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = {name: data[name] for name in form.changed_data if name in VENDOR_EDITABLE}
            if data.get("tax_id_new"):
                fields["tax_id"] = data["tax_id_new"]
            elif "tax_id_type" in fields:
                fields["tax_id"] = Vendor.objects.get(pk=obj.pk).tax_id
            if fields:
                vendor_update(vendor_id=obj.pk, actor=request.user, **fields)
            return
        saved = vendor_create(
            actor=request.user,
            name=data["name"],
            email=data["email"],
            currency=(data["currency"] or "").upper(),
            country=data.get("country") or "",
            address=data.get("address") or "",
            tax_id_type=data.get("tax_id_type") or "",
            tax_id=data.get("tax_id_new") or "",
            payment_terms_days=data.get("payment_terms_days"),
            discount_percent=data.get("discount_percent") or 0,
            discount_days=data.get("discount_days") or 0,
            bank=BankDetails(
                account_holder=data.get("bank_account_holder") or "",
                routing_number=data.get("bank_routing_number") or "",
                account_number=data.get("account_number_new") or "",
                account_type=data.get("bank_account_type") or "checking",
                iban=data.get("iban_new") or "",
                bic=data.get("bic") or "",
            ),
        )
        obj.pk = saved.pk

    # --- Actions

    @admin.action(description="Activate selected vendors", permissions=["activate"])
    def activate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.each(
            request,
            queryset,
            lambda v: vendor_activate(vendor_id=v.pk, actor=request.user),
            "vendor(s) activated",
        )

    @admin.action(description="Block selected vendors", permissions=["activate"])
    def block_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="block_selected",
            title="Block vendors",
            explanation="A blocked vendor gets no order, bill or payment until it is "
            "activated again by someone who did not add it.",
            label="Reason",
            button="Block",
            apply=lambda v, reason: vendor_block(
                vendor_id=v.pk,
                reason=f"{reason} (blocked in the admin by {request.user.get_username()})",
                actor=request.user,
            ),
            done="vendor(s) blocked",
        )

    # --- Documents

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/documents/<int:document_id>/",
                self.admin_site.admin_view(self.document_view),
                name="payables_vendor_document",
            ),
            *super().get_urls(),
        ]

    def document_view(self, request: HttpRequest, object_id: str, document_id: int) -> Any:
        vendor = self.get_object(request, unquote(object_id))
        if vendor is None:
            raise Http404
        if not self.has_view_permission(request, vendor):
            raise PermissionDenied
        document = VendorDocument.objects.filter(vendor=vendor, pk=document_id).first()
        if document is None:
            raise Http404
        return file_response(document.file, document.original_name)


# --- Bank detail changes ------------------------------------------------------------------------


class BankChangeForm(forms.ModelForm):
    account_number_new = secret_field("Account number", "US account: 4 to 17 digits.")
    iban_new = secret_field("IBAN")

    class Meta:
        model = VendorBankChange
        fields = (
            "vendor",
            "bank_account_holder",
            "bank_routing_number",
            "bank_account_type",
            "bic",
            "reason",
        )


@admin.register(VendorBankChange)
class VendorBankChangeAdmin(ServiceActionsMixin, AuditedAdmin):
    """Roles: view for finance_admin, ap_clerk, approver, controller, auditor; add (request a
    change, ``vendor_bank_change_request``) for finance_admin and ap_clerk; Approve and Reject
    for holders of payables.approve_vendorbankchange, never the requester. Pending changes
    first; a decided change is read-only; never deleted."""

    form = BankChangeForm
    list_display = (
        "change_label",
        "vendor",
        "status",
        "new_account",
        "requested_at",
        "requested_by",
        "decided_by",
    )
    list_display_links = ("change_label",)
    list_filter = (waiting_for_me(DocumentKind.BANK_CHANGE), "status")
    search_fields = ("vendor__name",)
    list_select_related = ("vendor", "requested_by", "decided_by")
    autocomplete_fields = ("vendor",)
    actions = ("approve_selected", "reject_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[VendorBankChange]:
        pending_first = Case(
            When(status=BankChangeStatus.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return (
            super()
            .get_queryset(request)
            .annotate(queue=pending_first)
            .order_by("queue", "-requested_at", "-pk")
        )

    def get_fields(self, request: HttpRequest, obj: VendorBankChange | None = None) -> Any:
        if obj is None:
            return (
                "vendor",
                "bank_account_holder",
                "bank_routing_number",
                "account_number_new",
                "bank_account_type",
                "iban_new",
                "bic",
                "reason",
            )
        return (
            "vendor",
            "status",
            "bank_account_holder",
            "bank_routing_number",
            "account_masked",
            "bank_account_type",
            "iban_masked_display",
            "bic",
            "reason",
            "requested_at",
            "requested_by",
            "decided_at",
            "decided_by",
            "comment",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: VendorBankChange | None = None) -> Any:
        return self.get_fields(request, obj) if obj is not None else ()

    def has_change_permission(
        self, request: HttpRequest, obj: VendorBankChange | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: VendorBankChange | None = None
    ) -> bool:
        return False

    has_decide_permission = perm_checker("payables.approve_vendorbankchange")

    @admin.display(description="Account")
    def account_masked(self, change: VendorBankChange) -> str:
        return change.bank_account_masked or "-"

    @admin.display(description="IBAN")
    def iban_masked_display(self, change: VendorBankChange) -> str:
        return change.iban_masked or "-"

    @admin.display(description="Change", ordering="pk")
    def change_label(self, change: VendorBankChange) -> str:
        return f"Change {change.pk}"

    @admin.display(description="New account")
    def new_account(self, change: VendorBankChange) -> str:
        if change.iban_masked:
            return f"IBAN {change.iban_masked}"
        if change.bank_account_masked:
            return f"{change.bank_routing_number} / {change.bank_account_masked}"
        return "-"

    def save_model(
        self, request: HttpRequest, obj: VendorBankChange, form: Any, change: bool
    ) -> None:
        if change:
            return
        data = form.cleaned_data
        saved = vendor_bank_change_request(
            vendor_id=data["vendor"].pk,
            bank=BankDetails(
                account_holder=data.get("bank_account_holder") or "",
                routing_number=data.get("bank_routing_number") or "",
                account_number=data.get("account_number_new") or "",
                account_type=data.get("bank_account_type") or "checking",
                iban=data.get("iban_new") or "",
                bic=data.get("bic") or "",
            ),
            reason=data.get("reason") or "",
            actor=request.user,
        )
        obj.pk = saved.pk

    @admin.action(description="Approve selected bank detail changes…", permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="approve_selected",
            title="Approve bank detail changes",
            explanation="From now on the vendor is paid to the new account, and its payment "
            "hold is lifted. Check each change against the vendor's confirmation (a call-back "
            "to a known number) before approving; an approval cannot be withdrawn.",
            label="Comment (optional)",
            button="Approve the changes",
            apply=lambda c, comment: vendor_bank_change_approve(change_id=c.pk, actor=request.user),
            done="bank detail change(s) approved",
            comment_required=False,
        )

    @admin.action(description="Reject selected bank detail changes", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.with_comment(
            request,
            queryset,
            action="reject_selected",
            title="Reject bank detail changes",
            explanation="The vendor keeps the bank details in force and its payment hold is "
            "lifted.",
            label="Comment",
            button="Reject",
            apply=lambda c, comment: vendor_bank_change_reject(
                change_id=c.pk, actor=request.user, comment=comment
            ),
            done="bank detail change(s) rejected",
        )


# --- Approval configuration ---------------------------------------------------------------------


@admin.register(ApprovalLevel)
class ApprovalLevelAdmin(AuditedAdmin):
    """Roles: view for every payables role; add, change and delete for finance_admin. From
    ``min_amount`` (functional currency) a document of the kind also needs a person holding
    the role. Changes apply to documents submitted afterwards."""

    list_display = ("kind", "min_amount_display", "role")
    list_filter = ("kind", "role")
    fields = ("kind", "min_amount", "role")
    ordering = ("kind", "min_amount")

    @admin.display(description="From (functional currency)", ordering="min_amount")
    def min_amount_display(self, level: ApprovalLevel) -> str:
        from payables.admin_documents import functional_display

        return functional_display(level.min_amount)


@admin.register(ApprovalDelegation)
class ApprovalDelegationAdmin(AuditedAdmin):
    """Roles: view for every payables role; add for approver, controller, finance_admin
    (an approver or controller delegates only their own authority, a finance admin anyone's;
    never the delegate themselves); delete for the delegator and finance_admin. Both go
    through the approval services, which refuse a delegate who is not an active person
    holding the delegated role. A delegation is never edited: remove it and add another.
    While the delegator is away the delegate decides with the delegator's roles (both names
    are recorded on each decision)."""

    list_display = ("delegator", "delegate", "starts_on", "ends_on", "reason", "created_by")
    list_filter = ("starts_on", "ends_on")
    search_fields = ("delegator__username", "delegate__username", "reason")
    raw_id_fields = ("delegator", "delegate")
    fields = ("delegator", "delegate", "starts_on", "ends_on", "reason", "created_at", "created_by")
    readonly_fields = ("created_at", "created_by")

    def _own_only(self, request: HttpRequest) -> bool:
        # An approver delegates their own authority, never someone else's.
        return not request.user.has_perm("payables.change_approvaldelegation")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "delegator" and self._own_only(request):
            kwargs["queryset"] = User.objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"delegator": request.user.pk, **super().get_changeform_initial_data(request)}

    def has_change_permission(
        self, request: HttpRequest, obj: ApprovalDelegation | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ApprovalDelegation | None = None
    ) -> bool:
        if obj is not None and obj.delegator_id == request.user.pk:
            return True
        return super().has_delete_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: ApprovalDelegation, form: Any, change: bool
    ) -> None:
        if change:
            raise PermissionDenied
        saved = approval_delegation_create(
            delegator_id=obj.delegator_id,
            delegate_id=obj.delegate_id,
            starts_on=obj.starts_on,
            ends_on=obj.ends_on,
            reason=obj.reason,
            actor=request.user,
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at
        obj.created_by = saved.created_by

    def delete_model(self, request: HttpRequest, obj: ApprovalDelegation) -> None:
        approval_delegation_delete(delegation_id=obj.pk, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            approval_delegation_delete(delegation_id=pk, actor=request.user)


@admin.register(MatchTolerance)
class MatchToleranceAdmin(AuditedAdmin):
    """Roles: view for every payables role; change for finance_admin. One row: how far a bill
    may differ from its order (price) and receipt (quantity) before an approver decides."""

    list_display = ("__str__", "price_percent", "quantity_percent")
    fields = ("price_percent", "quantity_percent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: MatchTolerance | None = None
    ) -> bool:
        return False


def _currency(category: ExpenseCategory) -> str:
    from core.system_settings import system_settings

    return category.limit_currency or system_settings().functional_currency


@admin.register(ExpenseCategory)
class ExpenseCategoryAdmin(AuditedAdmin):
    """Roles: view for every payables role; add and change for finance_admin. Each category
    debits its GL account; a line above the limit needs a justification. Retire a category
    by making it inactive (lines point at it)."""

    list_display = ("name", "account", "limit_display", "receipt_display", "active")
    list_filter = ("active",)
    search_fields = ("name",)
    raw_id_fields = ("account",)
    fields = (
        "name",
        "account",
        "limit_amount",
        "limit_currency",
        "receipt_required_above",
        "active",
    )

    def has_delete_permission(
        self, request: HttpRequest, obj: ExpenseCategory | None = None
    ) -> bool:
        return False

    @admin.display(description="Limit per line", ordering="limit_amount")
    def limit_display(self, category: ExpenseCategory) -> str:
        if category.limit_amount is None:
            return "-"
        return money_display(Money(category.limit_amount, _currency(category)))

    @admin.display(description="Receipt required above")
    def receipt_display(self, category: ExpenseCategory) -> str:
        if category.receipt_required_above is None:
            return "-"
        return money_display(Money(category.receipt_required_above, _currency(category)))


# --- Decisions ----------------------------------------------------------------------------------


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    """Roles: view for every payables role. Every decision taken on a payables document:
    written by the approval services only; an edit of the document afterwards voids it (the
    row stays)."""

    list_display = (
        "decided_at",
        "document_link",
        "decision",
        "role",
        "who",
        "short_comment",
        "voided_at",
    )
    list_filter = ("kind", "decision", "role")
    search_fields = ("user__username", "comment")
    list_select_related = ("user", "on_behalf_of")
    readonly_fields = (*(f.name for f in Approval._meta.fields), "document_link")

    @admin.display(description="Who", ordering="user__username")
    def who(self, approval: Approval) -> str:
        name = approval.user.get_username()
        if approval.on_behalf_of_id:
            return f"{name} for {approval.on_behalf_of.get_username()}"
        return name

    @admin.display(description="Comment")
    def short_comment(self, approval: Approval) -> str:
        return Truncator(approval.comment).chars(50) or "-"

    @admin.display(description="Document")
    def document_link(self, approval: Approval) -> str:
        model = DOCUMENT_MODELS.get(approval.kind)
        if model is None:
            return str(approval.object_id)
        url = reverse(f"admin:payables_{model._meta.model_name}_change", args=[approval.object_id])
        return format_html(
            '<a href="{}">{} {}</a>', url, approval.get_kind_display(), approval.object_id
        )


def _document_models() -> dict[str, type[Model]]:
    from payables.enums import DocumentKind
    from payables.models import Bill, ExpenseReport, PaymentRun, PurchaseOrder

    return {
        DocumentKind.PURCHASE_ORDER: PurchaseOrder,
        DocumentKind.BILL: Bill,
        DocumentKind.EXPENSE_REPORT: ExpenseReport,
        DocumentKind.PAYMENT_RUN: PaymentRun,
        DocumentKind.BANK_CHANGE: VendorBankChange,
    }


DOCUMENT_MODELS = _document_models()

import payables.admin_documents  # noqa: E402, F401
