"""Ledger admin: chart of accounts, journal entries (read-only, reversible), period locks.

Journal lines are shown only inside their entry and are never editable: the ledger is
append-only, and a correction is a reversing entry posted by ``journal_reverse``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from core.admin import AuditedAdmin, ReadOnlyAdminMixin, ServiceModelAdmin
from core.admin_confirm import amount_text, confirm_action
from core.admin_paginator import EstimatedCountPaginator
from core.exceptions import DomainError
from core.ledger.close import last_ended_month, month_close, month_close_status, month_reopen
from core.ledger.enums import ManualEntryStatus
from core.ledger.manual import manual_entry_approve, manual_entry_reject
from core.ledger.models import (
    Account,
    JournalEntry,
    JournalLine,
    LedgerCheckRun,
    ManualEntry,
    MonthClose,
    PeriodLock,
)
from core.ledger.ownership import document_of
from core.ledger.services import account_save, journal_reverse, period_lock_set


@admin.register(Account)
class AccountAdmin(AuditedAdmin):
    """Roles: view for every staff role; add/change for finance_admin. Never deleted."""

    list_display = ("code", "name", "type", "role_label", "currency_label", "is_active")
    list_filter = ("type", "is_active", "role")
    search_fields = ("code", "name", "description")
    fields = ("code", "name", "type", "role", "currency", "description", "is_active", "created_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Model | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ("created_at",)
        return ("code", "type", "role", "currency", "created_at")

    @admin.display(description="Role", ordering="role")
    def role_label(self, account: Account) -> str:
        return account.get_role_display() if account.role else "-"

    @admin.display(description="Currency", ordering="currency")
    def currency_label(self, account: Account) -> str:
        return account.currency or "Any"

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        account_save(account=obj, actor=request.user)


class JournalLineInline(TabularInline):
    model = JournalLine
    fields = (
        "account",
        "debit_text",
        "credit_text",
        "functional_debit_text",
        "functional_credit_text",
        "memo",
    )
    readonly_fields = fields
    extra = 0
    # The row caption would repeat each line unformatted ("1000 Dr 1459.3900 USD").
    hide_title = True

    @admin.display(description="Debit")
    def debit_text(self, line: JournalLine) -> str:
        return amount_text(line.debit, line.currency) if line.debit else ""

    @admin.display(description="Credit")
    def credit_text(self, line: JournalLine) -> str:
        return amount_text(line.credit, line.currency) if line.credit else ""

    @admin.display(description="Debit (functional)")
    def functional_debit_text(self, line: JournalLine) -> str:
        if not line.functional_debit:
            return ""
        return amount_text(line.functional_debit, line.entry.functional_currency)

    @admin.display(description="Credit (functional)")
    def functional_credit_text(self, line: JournalLine) -> str:
        if not line.functional_credit:
            return ""
        return amount_text(line.functional_credit, line.entry.functional_currency)

    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[JournalLine]:
        return super().get_queryset(request).select_related("account", "entry")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReverseForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3}))
    entry_date = forms.DateField(
        required=False,
        help_text="Date of the reversing entry; today when empty. It must be in an open period.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )


def _entry_link(entry: JournalEntry | None) -> str:
    if entry is None:
        return "-"
    url = reverse("admin:ledger_journalentry_change", args=[entry.pk])
    return format_html('<a href="{}">JE-{}</a>', url, entry.pk)


def source_admin_url(source: str) -> str | None:
    """The admin page of the document an entry's source names ("billing.invoice:42" is
    invoice 42's page); None for a manual entry or a document without an admin page."""
    prefix, _, doc_id = source.partition(":")
    app_label, _, model = prefix.partition(".")
    if not (app_label and model and doc_id.isdigit()):
        return None
    try:
        return reverse(f"admin:{app_label}_{model.replace('_', '')}_change", args=[doc_id])
    except NoReverseMatch:
        return None


def _source_link(source: str) -> str:
    document = document_of(source)
    if document is None:
        return "Manual"
    label = document.label.strip("'")
    label = label[:1].upper() + label[1:]
    url = source_admin_url(source)
    if url is None:
        return label
    return format_html(
        '<a class="text-primary-600 dark:text-primary-500" href="{}">{}</a>', url, label
    )


# "1,250.00", "1250", "1250.00 USD", "USD 1,250.00": an exact amount typed in the search box.
_AMOUNT = re.compile(r"^(?:[A-Za-z]{3}\s+)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s+[A-Za-z]{3})?$")
# "JE-42" or "42": an entry number.
_ENTRY_NUMBER = re.compile(r"^(?:JE-?)?(\d+)$", re.IGNORECASE)


@admin.register(JournalEntry)
class JournalEntryAdmin(ModelAdmin):
    """Roles: view for finance_admin, controller, auditor; "Reverse" for holders of
    ledger.reverse_journalentry (finance_admin, controller), on manual entries only: an entry
    a document posted shows the document's route instead. Nobody adds, edits or deletes."""

    list_display = (
        "entry_label",
        "entry_date",
        "description",
        "total_display",
        "source_link",
        "created_by",
        "reversal_of_link",
        "reversed_by_link",
    )
    # No date hierarchy and no functional-currency filter: over a million entries each asks
    # the database for DISTINCT values on every page (bench/admin_changelist.py), and the
    # functional currency is the company's one. The date filter covers the same need.
    list_filter = ("entry_date",)
    list_select_related = ("created_by", "reversal_of", "reversed_by")
    search_fields = ("description", "source", "idempotency_key")
    search_help_text = (
        "Entry number (JE-42), description, source (billing.invoice:42) or an exact amount "
        "(1,250.00)."
    )
    fields = (
        "entry_date",
        "description",
        "total_display",
        "source_link",
        "undone_through",
        "idempotency_key",
        "functional_currency",
        "created_by",
        "created_at",
        "reversal_of_link",
        "reversed_by_link",
        "digest",
    )
    readonly_fields = fields
    inlines = (JournalLineInline,)

    # A million entries: the planner's estimate, not COUNT(*) (core.admin_paginator).
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[JournalEntry]:
        # The total in the list's own query, not one query per row; a correlated subquery,
        # so it is summed for the page's rows only (a join + GROUP BY summed every entry).
        total = (
            JournalLine.objects.filter(entry=OuterRef("pk"))
            .order_by()
            .values("entry")
            .annotate(total=Sum("functional_debit"))
            .values("total")
        )
        return super().get_queryset(request).annotate(total_functional=Subquery(total))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[JournalEntry], search_term: str
    ) -> tuple[QuerySet[JournalEntry], bool]:
        results, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        extra = Q()
        number = _ENTRY_NUMBER.match(term)
        if number:
            extra |= Q(pk=int(number.group(1)))
        amount = _AMOUNT.match(term)
        if amount:
            try:
                value = Decimal(amount.group(1).replace(",", "") + (amount.group(2) or ""))
            except InvalidOperation:  # pragma: no cover - the pattern admits only digits
                value = None
            if value is not None:
                lines = JournalLine.objects.filter(
                    Q(debit=value)
                    | Q(credit=value)
                    | Q(functional_debit=value)
                    | Q(functional_credit=value)
                )
                totals = (
                    JournalEntry.objects.annotate(total=Sum("lines__functional_debit"))
                    .filter(total=value)
                    .values("pk")
                )
                extra |= Q(pk__in=totals) | Q(pk__in=lines.values("entry_id"))
        if extra:
            results = results | queryset.filter(extra)
        return results, duplicates

    @admin.display(description="Entry", ordering="id")
    def entry_label(self, entry: JournalEntry) -> str:
        return f"JE-{entry.pk}"

    @admin.display(description="Total", ordering="total_functional")
    def total_display(self, entry: JournalEntry) -> str:
        """The sum of the debits in the functional currency (equal to the credits)."""
        total = getattr(entry, "total_functional", None)
        if total is None:
            total = entry.lines.aggregate(total=Sum("functional_debit"))["total"]
        return format_html(
            '<span class="whitespace-nowrap">{}</span>',
            amount_text(total or Decimal(0), entry.functional_currency),
        )

    @admin.display(description="Source", ordering="source")
    def source_link(self, entry: JournalEntry) -> str:
        return _source_link(entry.source)

    @admin.display(description="Undone through")
    def undone_through(self, entry: JournalEntry) -> str:
        document = document_of(entry.source)
        if document is None:
            reversal = getattr(entry, "reversed_by", None)
            if reversal is not None:
                return format_html("Reversed by {}", _entry_link(reversal))
            return "A reversing entry (the Reverse button above)"
        url = source_admin_url(entry.source)
        label = document.label
        if url is None:
            return f"The operation that posted it ({label}), never in the ledger alone"
        return format_html(
            '<a class="text-primary-600 dark:text-primary-500" href="{}">{}</a>, on its own '
            "page (the ledger follows the document)",
            url,
            label[:1].upper() + label[1:],
        )

    @admin.display(description="Reverses")
    def reversal_of_link(self, entry: JournalEntry) -> str:
        return _entry_link(entry.reversal_of)

    @admin.display(description="Reversed by")
    def reversed_by_link(self, entry: JournalEntry) -> str:
        return _entry_link(getattr(entry, "reversed_by", None))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def _can_reverse(self, request: HttpRequest, entry: JournalEntry) -> bool:
        return (
            request.user.has_perm("ledger.reverse_journalentry")
            and document_of(entry.source) is None
            and entry.reversal_of_id is None
            and not JournalEntry.objects.filter(reversal_of_id=entry.pk).exists()
        )

    def get_urls(self) -> list[URLPattern]:
        reverse_url = path(
            "<path:object_id>/reverse/",
            self.admin_site.admin_view(self.reverse_view),
            name="ledger_journalentry_reverse",
        )
        return [reverse_url, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        entry = self.get_object(request, object_id)
        can_reverse = entry is not None and self._can_reverse(request, entry)
        context = {**(extra_context or {}), "can_reverse": can_reverse}
        return super().change_view(request, object_id, form_url, context)

    def reverse_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask for a reason, then post the reversing entry through ``journal_reverse``."""
        entry = get_object_or_404(
            JournalEntry.objects.prefetch_related("lines__account"), pk=object_id
        )
        if not (
            self.has_view_permission(request, entry)
            and request.user.has_perm("ledger.reverse_journalentry")
        ):
            raise PermissionDenied
        change_url = reverse("admin:ledger_journalentry_change", args=[entry.pk])
        form = ReverseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            entry_date: date | None = form.cleaned_data["entry_date"]
            try:
                reversal = journal_reverse(
                    entry_id=entry.pk,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    entry_date=entry_date,
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return HttpResponseRedirect(change_url)
            self.message_user(
                request,
                format_html("JE-{} reversed by {}.", entry.pk, _entry_link(reversal)),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:ledger_journalentry_change", args=[reversal.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reverse JE-{entry.pk}",
            "opts": self.opts,
            "entry": entry,
            "lines": [
                (
                    line.account,
                    amount_text(line.debit, line.currency) if line.debit else "",
                    amount_text(line.credit, line.currency) if line.credit else "",
                )
                for line in entry.lines.all()
            ],
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/ledger/journalentry/reverse.html", context)


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the entry and shown to its author.",
    )


def _reason(form: forms.Form | None) -> str:
    # confirm_action performs only with the bound, valid form it was given.
    assert form is not None  # noqa: S101
    return str(form.cleaned_data["reason"])


@admin.register(ManualEntry)
class ManualEntryAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Manual journal entries as their authors asked for them. One above the threshold
    waits here for someone other than its author (controller, finance admin) to approve or
    reject it; nothing is edited here. Roles: view for finance_admin, controller, auditor."""

    list_display = (
        "__str__",
        "status",
        "amount_display",
        "author",
        "decided_by",
        "created_at",
        "entry_link",
    )
    list_filter = ("status",)
    list_select_related = ("author", "decided_by", "journal_entry")
    search_fields = ("description",)
    date_hierarchy = "entry_date"
    fields = (
        "entry_date",
        "description",
        "lines_display",
        "amount_display",
        "status",
        "author",
        "created_at",
        "decided_by",
        "decided_at",
        "rejection_reason",
        "entry_link",
    )
    readonly_fields = fields
    actions_detail = ("approve_detail", "reject_detail")

    @admin.display(description="Debits (functional)")
    def amount_display(self, manual: ManualEntry) -> str:
        return amount_text(manual.amount_functional, manual.functional_currency)

    @admin.display(description="Posted as")
    def entry_link(self, manual: ManualEntry) -> str:
        return _entry_link(manual.journal_entry)

    @admin.display(description="Lines")
    def lines_display(self, manual: ManualEntry) -> str:
        return format_html_join(
            "",
            "<div>{} · {} {}</div>",
            (
                (
                    line["account"],
                    "Dr" if Decimal(line["debit"]) else "Cr",
                    amount_text(
                        Decimal(line["debit"]) or Decimal(line["credit"]), line["currency"]
                    ),
                )
                for line in manual.lines
            ),
        )

    def _decidable(self, request: HttpRequest, object_id: Any) -> bool:
        return (
            request.user.has_perm("ledger.approve_manualentry")
            and ManualEntry.objects.filter(pk=object_id, status=ManualEntryStatus.PENDING_APPROVAL)
            .exclude(author_id=request.user.pk)
            .exists()
        )

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        # The buttons show only on someone else's pending entry; the service refuses the rest.
        found = super().get_actions_detail(request, object_id)
        return found if self._decidable(request, object_id) else []

    def has_approve_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("ledger.approve_manualentry")

    has_reject_detail_permission = has_approve_detail_permission

    def _summary(self, manual: ManualEntry) -> list[tuple[str, str]]:
        return [
            ("Entry", f"{manual} (dated {manual.entry_date:%Y-%m-%d})"),
            ("Author", manual.author.get_username()),
            ("Debits", self.amount_display(manual)),
            ("Lines", self.lines_display(manual)),
        ]

    def _page(self, request: HttpRequest, object_id: str) -> tuple[ManualEntry, str]:
        manual = get_object_or_404(ManualEntry.objects.select_related("author"), pk=object_id)
        return manual, reverse("admin:ledger_manualentry_change", args=[manual.pk])

    @action(description="Approve…", url_path="approve", permissions=["approve_detail"])
    def approve_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        manual, url = self._page(request, object_id)
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=manual,
            title=f"Approve and post {manual}",
            button="Approve and post",
            perform=lambda form: manual_entry_approve(entry_id=manual.pk, actor=request.user),
            summary=[
                *self._summary(manual),
                ("What it does", "Records your approval and posts the entry to the ledger."),
            ],
            warning="A posted entry is corrected only by a reversing entry.",
            done_url=url,
            cancel_url=url,
            success=lambda done: format_html(
                "{} approved and posted as {}.", done, _entry_link(done.journal_entry)
            ),
        )

    @action(description="Reject…", url_path="reject", permissions=["reject_detail"])
    def reject_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        manual, url = self._page(request, object_id)
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=manual,
            title=f"Reject {manual}",
            button="Reject",
            form_class=RejectForm,
            perform=lambda form: manual_entry_reject(
                entry_id=manual.pk, actor=request.user, reason=_reason(form)
            ),
            summary=[*self._summary(manual), ("What it does", "Nothing is posted.")],
            done_url=url,
            cancel_url=url,
            success=f"{manual} rejected.",
            danger=True,
        )


@admin.register(PeriodLock)
class PeriodLockAdmin(ServiceModelAdmin):
    """Roles: view for finance_admin, controller, auditor; add for finance_admin and
    controller. Rows are only added (the table is the lock's own history)."""

    list_display = ("lock_date", "scope", "reason", "created_by", "created_at")
    list_select_related = ("created_by", "account")
    list_filter = (("account", admin.RelatedOnlyFieldListFilter),)
    fields = ("lock_date", "account", "currency", "reason", "created_by", "created_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Model | None = None
    ) -> tuple[str, ...]:
        # Account locks come from reconciliation sign-offs; here only the whole books.
        if obj is None:
            return ("account", "currency", "created_by", "created_at")
        return self.fields

    @admin.display(description="closes")
    def scope(self, obj: PeriodLock) -> str:
        if obj.account_id is None:
            return "the whole books"
        return f"{obj.account} {obj.currency or 'all currencies'}"

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PeriodLock, form: Any, change: bool) -> None:
        lock = period_lock_set(lock_date=obj.lock_date, reason=obj.reason, actor=request.user)
        obj.pk = lock.pk
        obj.created_by = lock.created_by
        obj.created_at = lock.created_at


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ModelAdmin):
    """Roles: finance_admin, controller and auditor see the nightly check's runs; read-only."""

    list_display = ("started_at", "ok", "entries_checked", "problem_count")
    list_filter = ("ok",)
    readonly_fields = ("started_at", "finished_at", "ok", "entries_checked", "problems")

    @admin.display(description="problems")
    def problem_count(self, obj: LedgerCheckRun) -> int:
        return len(obj.problems)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReopenForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the close and in the lock's history.",
    )


# Tailwind classes the workspace's stylesheet holds (unfold's build).
GREEN, RED, LINK = "text-green-700", "text-red-700", "text-primary-600 underline"


def _checklist_rows(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for item in items:
        if item["ok"]:
            rows.append((item["title"], format_html('<strong class="{}">Done</strong>', GREEN)))
        elif item.get("link"):
            rows.append(
                (
                    item["title"],
                    format_html(
                        '<strong class="{}">Missing</strong>: {} <a class="{}" href="{}">Open</a>',
                        RED,
                        item["detail"],
                        LINK,
                        item["link"],
                    ),
                )
            )
        else:
            rows.append(
                (
                    item["title"],
                    format_html('<strong class="{}">Missing</strong>: {}', RED, item["detail"]),
                )
            )
    return rows


@admin.register(MonthClose)
class MonthCloseAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    """Month-end closes: each month's checklist and who closed it, when, with the lock it
    set; reopened closes stay listed (the month's close history). "Close a month…" shows a
    month's checklist live and closes it when every item is green (controller); "Reopen…"
    takes a reason (finance admin). Roles: view for finance_admin, controller, auditor."""

    list_display = ("month", "state", "closed_by", "closed_at", "lock_date", "reopened_by")
    list_select_related = ("closed_by", "reopened_by", "period_lock")
    list_filter = (("reopened_at", admin.EmptyFieldListFilter),)
    fields = (
        "period",
        "state",
        "closed_by",
        "closed_at",
        "lock_date",
        "checklist_display",
        "reopened_by",
        "reopened_at",
        "reopen_reason",
    )
    readonly_fields = fields
    actions_list = ("close_page",)
    actions_detail = ("reopen_detail",)

    @admin.display(description="Month", ordering="period")
    def month(self, close: MonthClose) -> str:
        return f"{close.period:%B %Y}"

    @admin.display(description="State")
    def state(self, close: MonthClose) -> str:
        return "Reopened" if close.reopened_at else "Closed"

    @admin.display(description="Locked through")
    def lock_date(self, close: MonthClose) -> str:
        return f"{close.period_lock.lock_date:%Y-%m-%d}" if close.period_lock else "-"

    @admin.display(description="Checklist when closed")
    def checklist_display(self, close: MonthClose) -> str:
        return format_html_join("", "<div>{}: {}</div>", _checklist_rows(close.checklist))

    def has_close_page_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ledger.view_monthclose")

    def has_reopen_detail_permission(
        self, request: HttpRequest, object_id: str | None = None
    ) -> bool:
        return request.user.has_perm("ledger.reopen_month")

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        # Reopening is offered on a close in force only; the service refuses the rest.
        found = super().get_actions_detail(request, object_id)
        in_force = MonthClose.objects.filter(pk=object_id, reopened_at=None).exists()
        return found if in_force else []

    @action(description="Close a month…", url_path="close", permissions=["close_page"])
    def close_page(self, request: HttpRequest) -> HttpResponse:
        try:
            period = date.fromisoformat(f"{request.GET.get('period', '')}-01")
        except ValueError:
            period = last_ended_month()
        period = min(period, last_ended_month())
        status = month_close_status(period)
        previous = (period - timedelta(days=1)).replace(day=1)
        following = (period + timedelta(days=32)).replace(day=1)
        here = reverse("admin:ledger_monthclose_close_page")
        months = format_html(
            '<a class="{}" href="{}?period={}">&larr; {}</a>',
            LINK,
            here,
            f"{previous:%Y-%m}",
            f"{previous:%B %Y}",
        )
        if following <= last_ended_month():
            months = format_html(
                '{} · <a class="{}" href="{}?period={}">{} &rarr;</a>',
                months,
                LINK,
                here,
                f"{following:%Y-%m}",
                f"{following:%B %Y}",
            )
        summary = [("Other months", months), *_checklist_rows(status["items"])]
        listed = reverse("admin:ledger_monthclose_changelist")
        if status["closed"]:
            close = status["close"]
            messages.info(
                request,
                f"{period:%B %Y} was closed by {close.closed_by} on {close.closed_at:%Y-%m-%d}.",
            )
            return HttpResponseRedirect(reverse("admin:ledger_monthclose_change", args=[close.pk]))
        if not request.user.has_perm("ledger.close_month"):
            summary.append(("Who closes", "A controller closes the month when all are done."))
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=None,
            title=f"Close {period:%B %Y}",
            button=f"Close {period:%B %Y}",
            perform=lambda form: month_close(actor=request.user, period=period),
            summary=summary,
            warning=(
                "Closing locks the books through the month's last day for everyone; only a "
                "finance admin can reopen it, with a reason."
            ),
            done_url=listed,
            cancel_url=listed,
            success=lambda done: (
                f"{done.period:%B %Y} closed: the books are locked through "
                f"{done.period_lock.lock_date if done.period_lock else done.period:%Y-%m-%d}."
            ),
        )

    @action(description="Reopen…", url_path="reopen", permissions=["reopen_detail"])
    def reopen_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        close = get_object_or_404(MonthClose.objects.select_related("closed_by"), pk=object_id)
        url = reverse("admin:ledger_monthclose_change", args=[close.pk])
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=close,
            title=f"Reopen {close.period:%B %Y}",
            button="Reopen",
            form_class=ReopenForm,
            perform=lambda form: month_reopen(
                actor=request.user, period=close.period, reason=_reason(form)
            ),
            summary=[
                ("Closed by", f"{close.closed_by} on {close.closed_at:%Y-%m-%d}"),
                (
                    "What it does",
                    "Moves the books' lock back to the end of the month before; later closed "
                    "months are reopened with it.",
                ),
            ],
            done_url=url,
            cancel_url=url,
            success=f"{close.period:%B %Y} reopened.",
            danger=True,
        )
