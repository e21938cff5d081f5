"""Collections admin: the worklist, policies and steps, the timeline, pauses and promises,
late fees.

Writes go through the collections services (pauses, promises, lifting, waivers, the run);
policies and steps are configuration rows edited in place by finance_admin, with history.
The timeline and the fees are read-only. Buttons that change anything are POST-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from unfold.admin import ModelAdmin, TabularInline

from core.admin import AuditedAdmin, money_display
from core.exceptions import DomainError
from receivables.models import (
    CollectionEvent,
    CollectionPause,
    CollectionsWorklistItem,
    CustomerDunningPolicy,
    DunningPolicy,
    DunningStep,
    LateFee,
)
from receivables.models_disputes import ACTIVE_DISPUTE_STATUSES, Dispute
from receivables.models_plans import PaymentPlanInvoice, PaymentPlanStatus
from receivables.selectors import collections_worklist, dunning_policies_by_customer
from receivables.selectors import invoice_next_step as next_step_of
from receivables.services.collections import (
    collection_pause_create,
    collection_pause_lift,
    collections_run,
    promise_to_pay_record,
)
from receivables.services.late_fees import late_fee_waive


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Worklist -----------------------------------------------------------------------------------


@admin.register(CollectionsWorklistItem)
class CollectionsWorklistAdmin(ReadOnlyAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor; the run button for
    finance_admin and ar_clerk. What to chase today: open overdue invoices not paused,
    largest and oldest first, with the last step done and the next step due. "Preview"
    lists what today's run would do and changes nothing."""

    change_list_template = "admin/receivables/worklist_change_list.html"
    list_display = (
        "number",
        "customer",
        "amount_due_display",
        "due_date",
        "days_overdue",
        "last_step",
        "next_step",
    )
    list_display_links = None
    search_fields = ("number", "customer__name")
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Why the run leaves an invoice alone, read with the rows: a late-fee invoice is not
        # chased step by step; a disputed one or one on an active plan is held from dunning.
        return (
            collections_worklist(as_of=timezone.localdate(), queryset=self.model.objects.all())
            .annotate(
                is_fee_invoice=Exists(LateFee.objects.filter(fee_invoice=OuterRef("pk"))),
                is_disputed=Exists(
                    Dispute.objects.filter(
                        invoice=OuterRef("pk"), status__in=ACTIVE_DISPUTE_STATUSES
                    )
                ),
                is_on_plan=Exists(
                    PaymentPlanInvoice.objects.filter(
                        invoice=OuterRef("pk"), plan__status=PaymentPlanStatus.ACTIVE
                    )
                ),
            )
            .prefetch_related("collection_events")
        )

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        return ("-amount_due_value", "due_date", "pk")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._policies: dict[int, DunningPolicy] = {}
        extra = {
            **(extra_context or {}),
            "can_run": request.user.has_perm("receivables.run_collections"),
            "today": timezone.localdate(),
        }
        return super().changelist_view(request, extra)

    @admin.display(description="Amount due", ordering="amount_due_value")
    def amount_due_display(self, obj: Any) -> str:
        return money_display(obj.amount_due)

    @admin.display(description="Days overdue", ordering="due_date")
    def days_overdue(self, obj: Any) -> int:
        return (timezone.localdate() - obj.due_date).days

    @admin.display(description="Last step")
    def last_step(self, obj: Any) -> str:
        if not obj.last_step_name:
            return "-"
        return f"{obj.last_step_name} ({obj.last_step_date:%Y-%m-%d})"

    @admin.display(description="Next step due")
    def next_step(self, obj: Any) -> str:
        if obj.is_fee_invoice:
            return "None: late-fee invoices are not chased"
        if obj.is_disputed:
            return "On hold: disputed"
        if obj.is_on_plan:
            return "On hold: payment plan"
        if obj.customer_id not in self._policies:
            self._policies.update(dunning_policies_by_customer({obj.customer_id}))
        done = {e.step_id for e in obj.collection_events.all()}
        found = next_step_of(
            invoice=obj, policy=self._policies.get(obj.customer_id), done_step_ids=done
        )
        return f"{found[0].name} ({found[1]:%Y-%m-%d})" if found else "-"

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="%s_%s_preview" % info,  # noqa: UP031
            ),
            path(
                "run/",
                self.admin_site.admin_view(self.run_view),
                name="%s_%s_run" % info,  # noqa: UP031
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The dry run: what today's run would do. Reads only."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        result = collections_run(as_of=timezone.localdate(), dry_run=True, actor=request.user)
        return TemplateResponse(
            request,
            "admin/receivables/collections_preview.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Collections run preview for {result.as_of:%Y-%m-%d}",
                "result": result,
                "can_run": request.user.has_perm("receivables.run_collections"),
            },
        )

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("receivables.run_collections"):
            raise PermissionDenied
        result = collections_run(as_of=timezone.localdate(), actor=request.user)
        self.message_user(
            request,
            f"Collections run: {len(result.actions)} action(s) on "
            f"{result.invoices_seen} invoice(s).",
            messages.SUCCESS,
        )
        for invoice_id, error in result.failures.items():
            self.message_user(request, f"Invoice {invoice_id}: {error}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:receivables_collectionsworklistitem_changelist"))


# --- Policies -------------------------------------------------------------------------------------


class DunningStepInline(TabularInline):
    model = DunningStep
    extra = 0
    fields = ("offset_days", "code", "name", "action", "template")


@admin.register(DunningPolicy)
class DunningPolicyAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor; add/change for
    finance_admin. Configuration: a step already on a timeline cannot be deleted (PROTECT)."""

    list_display = (
        "name",
        "is_default",
        "late_fees_enabled",
        "late_fee_percentage",
        "grace_period_days",
        "compound_fees",
    )
    inlines = (DunningStepInline,)


@admin.register(CustomerDunningPolicy)
class CustomerDunningPolicyAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor; change for
    finance_admin. A customer chased under another policy than the default."""

    list_display = ("customer", "policy")
    autocomplete_fields = ("customer",)


# --- Timeline -------------------------------------------------------------------------------------


@admin.register(CollectionEvent)
class CollectionEventAdmin(ReadOnlyAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor. Append-only: written by
    the collections run alone."""

    list_display = ("invoice", "step", "outcome", "scheduled_date", "run_date", "email_to")
    list_filter = ("outcome", "action", "run_date")
    search_fields = ("invoice__number", "invoice__customer__name")
    readonly_fields = tuple(f.name for f in CollectionEvent._meta.fields)


# --- Late fees ------------------------------------------------------------------------------------


class WaiveForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(LateFee)
class LateFeeAdmin(ReadOnlyAdmin, AuditedAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor; waive for finance_admin
    and controller (asks for a reason; ``late_fee_waive`` voids or credits the fee)."""

    list_display = (
        "invoice",
        "sequence",
        "amount_display",
        "base_display",
        "charged_date",
        "status",
        "fee_invoice",
    )
    list_filter = ("status", "currency", "charged_date")
    search_fields = ("invoice__number", "fee_invoice__number", "invoice__customer__name")
    readonly_fields = tuple(f.name for f in LateFee._meta.fields)
    actions = ("waive_selected",)

    @admin.display(description="Amount")
    def amount_display(self, obj: LateFee) -> str:
        return money_display(obj.amount)

    @admin.display(description="Overdue base")
    def base_display(self, obj: LateFee) -> str:
        return money_display(obj.base_amount)

    def has_waive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("receivables.waive_latefee")

    @admin.action(description="Waive selected late fees", permissions=["waive"])
    def waive_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = WaiveForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for fee in queryset:
                try:
                    late_fee_waive(
                        actor=request.user, late_fee_id=fee.pk, reason=form.cleaned_data["reason"]
                    )
                    done += 1
                except DomainError as exc:
                    self.message_user(request, f"{fee}: {exc.message}", messages.ERROR)
            self.message_user(request, f"{done} late fee(s) waived.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/receivables/latefee_waive.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Waive late fees",
                "form": form,
                "fees": queryset,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )


# --- Pauses and promises --------------------------------------------------------------------------


@admin.register(CollectionPause)
class CollectionPauseAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor; add (pause or promise)
    and lift for finance_admin and ar_clerk. Saved through ``collection_pause_create`` /
    ``promise_to_pay_record``; a pause is never edited, only lifted."""

    list_display = ("kind", "customer", "invoice", "start_date", "until_date", "reason", "lifted")
    list_filter = ("kind",)
    fields = (
        "kind",
        "customer",
        "invoice",
        "reason",
        "start_date",
        "until_date",
        "promised_amount",
    )
    raw_id_fields = ("customer", "invoice")
    actions = ("lift_selected",)

    @admin.display(boolean=True)
    def lifted(self, obj: CollectionPause) -> bool:
        return obj.lifted_at is not None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.fields if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: CollectionPause, form: Any, change: bool
    ) -> None:
        if change:
            return
        if obj.kind == "promise":
            if obj.invoice_id is None or obj.until_date is None:
                raise DomainError("A promise to pay needs an invoice and a date.")
            saved = promise_to_pay_record(
                actor=request.user,
                invoice_id=obj.invoice_id,
                promised_date=obj.until_date,
                reason=obj.reason,
                amount=obj.promised_amount.amount if obj.promised_amount is not None else None,
                start_date=obj.start_date,
            )
        else:
            saved = collection_pause_create(
                actor=request.user,
                reason=obj.reason,
                customer_id=obj.customer_id,
                invoice_id=obj.invoice_id,
                until_date=obj.until_date,
                start_date=obj.start_date,
            )
        obj.pk = saved.pk

    @admin.action(description="Lift selected pauses / promises", permissions=["change"])
    def lift_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for pause in queryset:
            collection_pause_lift(actor=request.user, pause_id=pause.pk)
        self.message_user(request, f"{queryset.count()} lifted.", messages.SUCCESS)


import receivables.admin_credit  # noqa: E402
import receivables.admin_disputes  # noqa: E402
import receivables.admin_plans  # noqa: E402, F401
