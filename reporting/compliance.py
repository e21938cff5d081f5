"""Compliance audit reports (SOX evidence), each a ``ReportTable`` for a period.

One selector per report, ``<report>_table(date_from, date_to)``, reads what the other apps
recorded and flags what breaks a control:

- ``approvals``: every document approved in the period with its requester and each approver;
  EXCEPTION when the requester is among the approvers or one person counts twice.
- ``bank_changes``: vendor bank-detail changes, who asked and who decided.
- ``journal_entries``: manual journal entries and reversals with their authors.
- ``master_data``: edits of customers, products, prices, tax rates, vendors, approval levels,
  tolerances, expense categories, accounts, bank accounts and match rules, from their
  history, one row per changed field with its value before and after.
- ``users``: users, their roles and second factor (EXCEPTION: an active user without a
  confirmed device), with the admin log of account changes in the period.
- ``logins``: failed and locked-out logins recorded by django-axes.
- ``sign_offs``: bank reconciliation sign-offs and reopenings.
- ``personal_data``: GDPR exports and erasures of customers, vendors and users.

The period covers both days, in the project's time zone, and applies to when things happened
(decided, requested, posted, changed). ``report_production_record`` is the one write: the log
of each download (``reporting.ReportProduction``), with the SHA-256 of what was served.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import Customer, Price, Product, TaxRate
from core.exceptions import DomainError
from core.gdpr import LOG_PREFIX as GDPR_LOG_PREFIX
from core.gdpr import personal_data_log_list
from core.ledger.models import Account, JournalEntry, JournalLine
from core.otp import AuthenticatorDevice, RecoveryCodeDevice
from payables.enums import ApprovalDecision, BankChangeStatus, DocumentKind
from payables.models import (
    Approval,
    ApprovalLevel,
    Bill,
    ExpenseCategory,
    ExpenseReport,
    MatchTolerance,
    PaymentRun,
    PurchaseOrder,
    Vendor,
    VendorBankChange,
)
from reconciliation.enums import SignOffStatus
from reconciliation.models import BankAccount, MatchRule, SignOff
from reporting.models import ReportProduction
from reporting.report_files import (
    Amount,
    Cell,
    Format,
    ReportRow,
    ReportTable,
    report_bytes,
    rows_sha256,
)

EXCEPTION = "EXCEPTION"
# The longest period one report covers, both days included: a leap year.
MAX_DAYS = 366


class InvalidPeriod(DomainError):
    code = "invalid_period"


# -------------------------------------------------------------------------------- helpers


def period_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[start, end) in the current time zone covering both days; refused when reversed or
    longer than ``MAX_DAYS``."""
    if date_from > date_to:
        raise InvalidPeriod("The period ends before it starts.", field="date_to")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise InvalidPeriod(
            f"A compliance report covers at most {MAX_DAYS} days; choose a shorter period.",
            field="date_from",
        )
    zone = timezone.get_current_timezone()
    start = datetime.combine(date_from, time.min, tzinfo=zone)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def at_text(moment: datetime | None) -> str:
    """A moment as people read it, in the project's time zone, to the second."""
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def user_text(user: Any) -> str:
    if user is None:
        return ""
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{user.get_username()} ({full})" if full else str(user.get_username())


def _period_parameters(date_from: date, date_to: date) -> list[tuple[str, str]]:
    return [
        ("Period", f"{date_from.isoformat()} to {date_to.isoformat()}"),
        ("Time zone", str(timezone.get_current_timezone())),
    ]


def _stem(code: str, date_from: date, date_to: date) -> str:
    return f"compliance-{code.replace('_', '-')}-{date_from.isoformat()}-{date_to.isoformat()}"


# ------------------------------------------------------------------------------ approvals


@dataclass(frozen=True)
class _Document:
    number: str
    amount: Amount | None
    requester: Any


def _documents(kind: str, ids: set[int]) -> dict[int, _Document]:
    """Number, total and requester of the approved documents of ``kind`` (the requester is
    the person the approval service keeps from approving: maker-checker)."""
    found: dict[int, _Document] = {}
    if kind == DocumentKind.PURCHASE_ORDER:
        for order in PurchaseOrder.objects.filter(pk__in=ids).select_related("requester"):
            found[order.pk] = _Document(
                order.number, Amount(order.total.amount, order.currency), order.requester
            )
    elif kind == DocumentKind.BILL:
        for bill in Bill.objects.filter(pk__in=ids).select_related("vendor", "created_by"):
            found[bill.pk] = _Document(
                f"{bill.vendor.name} #{bill.number}",
                Amount(bill.total.amount, bill.currency),
                bill.created_by,
            )
    elif kind == DocumentKind.EXPENSE_REPORT:
        for report in ExpenseReport.objects.filter(pk__in=ids).select_related("employee"):
            found[report.pk] = _Document(
                report.number, Amount(report.total.amount, report.currency), report.employee
            )
    elif kind == DocumentKind.PAYMENT_RUN:
        for run in PaymentRun.objects.filter(pk__in=ids).select_related("created_by"):
            found[run.pk] = _Document(
                run.number, Amount(run.total.amount, run.currency), run.created_by
            )
    elif kind == DocumentKind.BANK_CHANGE:
        for change in VendorBankChange.objects.filter(pk__in=ids).select_related(
            "vendor", "requested_by"
        ):
            found[change.pk] = _Document(
                f"Bank details of {change.vendor.name}", None, change.requested_by
            )
    return found


def approval_findings(requester_id: int | None, approvals: Sequence[Approval]) -> list[str]:
    """What breaks maker-checker on one document: the requester among the approvers (in
    person or through a delegate), or one person counted twice; empty when clean. A
    document whose requester is unknown cannot be shown to differ, so it is a finding too."""
    findings = []
    people = [a.user_id for a in approvals] + [
        a.on_behalf_of_id for a in approvals if a.on_behalf_of_id is not None
    ]
    if requester_id is None:
        findings.append("requester not recorded")
    elif requester_id in people:
        findings.append("requester approved")
    twice = sorted({p for p in people if people.count(p) > 1})
    if twice:
        findings.append("same person counted twice")
    return findings


def approvals_table(date_from: date, date_to: date) -> ReportTable:
    """One row per approval of every document with an approval decided in the period (its
    live approvals, all of them, even those decided earlier)."""
    start, end = period_bounds(date_from, date_to)
    keys = set(
        Approval.objects.filter(
            decision=ApprovalDecision.APPROVED,
            voided_at__isnull=True,
            decided_at__gte=start,
            decided_at__lt=end,
        ).values_list("kind", "object_id")
    )
    by_document: dict[tuple[str, int], list[Approval]] = defaultdict(list)
    if keys:
        matching = Q()
        for kind, object_id in keys:
            matching |= Q(kind=kind, object_id=object_id)
        live = (
            Approval.objects.filter(matching, decision=ApprovalDecision.APPROVED)
            .filter(voided_at__isnull=True)
            .select_related("user", "on_behalf_of")
            .order_by("decided_at", "pk")
        )
        for approval in live:
            by_document[(approval.kind, approval.object_id)].append(approval)
    ids_by_kind: dict[str, set[int]] = defaultdict(set)
    for kind, object_id in keys:
        ids_by_kind[kind].add(object_id)
    documents = {kind: _documents(kind, ids) for kind, ids in ids_by_kind.items()}
    labels = dict(DocumentKind.choices)
    rows: list[ReportRow] = []
    exceptions = 0
    ordered = sorted(by_document.items(), key=lambda item: (item[1][-1].decided_at, item[0]))
    for (kind, object_id), approvals in ordered:
        document = documents.get(kind, {}).get(object_id)
        requester = document.requester if document else None
        findings = approval_findings(requester.pk if requester else None, approvals)
        exceptions += bool(findings)
        differs = "yes" if requester is not None and "requester approved" not in findings else "NO"
        flag = f"{EXCEPTION}: {'; '.join(findings)}" if findings else ""
        for approval in approvals:
            rows.append(
                ReportRow(
                    [
                        labels.get(kind, kind),
                        document.number if document else f"#{object_id} (not found)",
                        document.amount if document else None,
                        user_text(requester),
                        user_text(approval.user),
                        user_text(approval.on_behalf_of),
                        approval.get_role_display() if approval.role else "",
                        at_text(approval.decided_at),
                        differs,
                        flag,
                    ]
                )
            )
    return ReportTable(
        title="Approvals: requester and approvers",
        parameters=[
            *_period_parameters(date_from, date_to),
            ("Documents", str(len(by_document))),
            ("Exceptions", str(exceptions)),
        ],
        headers=[
            "Kind",
            "Document",
            "Amount",
            "Requester",
            "Approver",
            "On behalf of",
            "Slot",
            "Decided at",
            "Requester differs from every approver",
            "Flag",
        ],
        rows=rows,
        notes=[
            "Documents with an approval decided in the period, one row per live approval "
            "(approvals voided by a later edit are left out). The requester is who created or "
            "requested the document (purchase order: requester; bill and payment run: "
            "creator; expense report: the employee). EXCEPTION when the requester approved, "
            "in person or through a delegate, or one person counts twice."
        ],
        filename=_stem("approvals", date_from, date_to),
    )


# --------------------------------------------------------------------------- bank changes


def bank_changes_table(date_from: date, date_to: date) -> ReportTable:
    """Vendor bank-detail changes requested or decided in the period (numbers masked)."""
    start, end = period_bounds(date_from, date_to)
    changes = (
        VendorBankChange.objects.filter(
            Q(requested_at__gte=start, requested_at__lt=end)
            | Q(decided_at__gte=start, decided_at__lt=end)
        )
        .select_related("vendor", "requested_by", "decided_by")
        .order_by("requested_at", "pk")
    )
    rows = []
    exceptions = 0
    for change in changes:
        findings = []
        if change.requested_by_id is None:
            findings.append("requester not recorded")
        if change.status != BankChangeStatus.PENDING:
            if change.decided_by_id is None:
                findings.append("decider not recorded")
            elif change.decided_by_id == change.requested_by_id:
                findings.append("requester decided")
        exceptions += bool(findings)
        details = ", ".join(
            part
            for part in (
                change.bank_account_holder,
                f"routing {change.bank_routing_number}" if change.bank_routing_number else "",
                f"account {change.bank_account_masked}" if change.bank_account_number else "",
                f"IBAN {change.iban_masked}" if change.iban else "",
                f"BIC {change.bic}" if change.bic else "",
            )
            if part
        )
        rows.append(
            ReportRow(
                [
                    change.vendor.name,
                    details,
                    change.reason,
                    at_text(change.requested_at),
                    user_text(change.requested_by),
                    change.get_status_display(),
                    at_text(change.decided_at),
                    user_text(change.decided_by),
                    change.comment,
                    f"{EXCEPTION}: {'; '.join(findings)}" if findings else "",
                ]
            )
        )
    return ReportTable(
        title="Vendor bank-detail changes",
        parameters=[
            *_period_parameters(date_from, date_to),
            ("Changes", str(len(rows))),
            ("Exceptions", str(exceptions)),
        ],
        headers=[
            "Vendor",
            "New details (masked)",
            "Reason",
            "Requested at",
            "Requested by",
            "Status",
            "Decided at",
            "Decided by",
            "Comment",
            "Flag",
        ],
        rows=rows,
        notes=[
            "Changes requested or decided in the period. New details take effect only when a "
            "second person approves; EXCEPTION when the requester decided or either person "
            "is not recorded."
        ],
        filename=_stem("bank_changes", date_from, date_to),
    )


# ------------------------------------------------------------------------ journal entries


def journal_entries_table(date_from: date, date_to: date) -> ReportTable:
    """Manual journal entries and every reversal posted in the period, with their authors
    and their amount (sum of the debits in the functional currency)."""
    start, end = period_bounds(date_from, date_to)
    entries = list(
        JournalEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .filter(Q(source="manual") | Q(reversal_of__isnull=False))
        .select_related("created_by", "reversal_of__created_by")
        .order_by("created_at", "pk")
    )
    totals = dict(
        JournalLine.objects.filter(entry__in=entries)
        .values("entry")
        .annotate(total=Sum("functional_debit"))
        .values_list("entry", "total")
    )
    reversed_by = {
        e.reversal_of_id: e
        for e in JournalEntry.objects.filter(
            reversal_of__in=[e.pk for e in entries]
        ).select_related("created_by")
    }
    rows = []
    for entry in entries:
        original = entry.reversal_of
        later = reversed_by.get(entry.pk)
        rows.append(
            ReportRow(
                [
                    f"JE-{entry.pk}",
                    entry.entry_date,
                    f"Reversal of JE-{original.pk}" if original else "Manual",
                    entry.description,
                    "" if entry.source == "manual" else entry.source,
                    Amount(totals.get(entry.pk) or Decimal(0), entry.functional_currency),
                    user_text(entry.created_by),
                    at_text(entry.created_at),
                    user_text(original.created_by) if original else "",
                    f"JE-{later.pk} by {user_text(later.created_by)}" if later else "",
                ]
            )
        )
    return ReportTable(
        title="Manual journal entries and reversals",
        parameters=[*_period_parameters(date_from, date_to), ("Entries", str(len(rows)))],
        headers=[
            "Entry",
            "Entry date",
            "Kind",
            "Description",
            "Document source",
            "Amount (debits)",
            "Posted by",
            "Posted at",
            "Original posted by",
            "Reversed by",
        ],
        rows=rows,
        notes=[
            "Entries posted in the period by hand (source 'manual') and every reversing "
            "entry, whatever it reverses; an entry posted by the system shows no author."
        ],
        filename=_stem("journal_entries", date_from, date_to),
    )


# ---------------------------------------------------------------------------- master data


@dataclass(frozen=True)
class MasterData:
    label: str
    model: type[models.Model]
    # Fields naming a record, the first one present is used.
    name_fields: tuple[str, ...] = ("name",)


MASTER_DATA: tuple[MasterData, ...] = (
    MasterData("Customer", Customer),
    MasterData("Product", Product),
    MasterData("Price", Price, ("nickname",)),
    MasterData("Tax rate", TaxRate, ("jurisdiction",)),
    MasterData("Vendor", Vendor),
    MasterData("Approval level", ApprovalLevel, ("kind",)),
    MasterData("Match tolerance", MatchTolerance, ()),
    MasterData("Expense category", ExpenseCategory),
    MasterData("Ledger account", Account, ("code",)),
    MasterData("Bank account", BankAccount),
    MasterData("Match rule", MatchRule),
)
_CHANGE = {"+": "Created", "~": "Changed", "-": "Deleted"}


def value_text(field: models.Field[Any, Any], value: Any) -> str:
    """A stored value as people read it: choices by label, yes/no, "(empty)"."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    choices = dict(field.flatchoices) if field.choices else {}
    if value in choices:
        return str(choices[value])
    if isinstance(value, Decimal):
        # Stored scale is noise here ("0.072500"): the value as written ("0.0725").
        return f"{value.normalize():f}"
    return str(value)


def _record_name(spec: MasterData, record: Any) -> str:
    for name in spec.name_fields:
        value = getattr(record, name, "")
        if value:
            return f"{value} (#{record.id})"
    return f"#{record.id}"


def master_data_table(date_from: date, date_to: date) -> ReportTable:
    """Every creation, edit and deletion of master data in the period, from the records'
    history: an edit gives one row per changed field with its value before and after."""
    start, end = period_bounds(date_from, date_to)
    found: list[tuple[datetime, int, str, list[Cell]]] = []
    for spec in MASTER_DATA:
        history = spec.model.history  # type: ignore[attr-defined]
        historical = history.model
        fields = [f for f in historical.tracked_fields if f.editable]
        touched = set(
            history.filter(history_date__gte=start, history_date__lt=end).values_list(
                "id", flat=True
            )
        )
        if not touched:
            continue
        # Each touched record's versions up to the period's end: the one before the first
        # change in the period gives the "before" of that change.
        versions = (
            history.filter(id__in=touched, history_date__lt=end)
            .select_related("history_user")
            .order_by("id", "history_date", "history_id")
        )
        previous: dict[Any, Any] = {}
        for record in versions:
            before = previous.get(record.id)
            previous[record.id] = record
            if record.history_date < start:
                continue
            common: list[Cell] = [
                at_text(record.history_date),
                user_text(record.history_user) or "(not recorded)",
                spec.label,
                _record_name(spec, record),
                _CHANGE.get(record.history_type, record.history_type),
            ]
            reason = record.history_change_reason or ""
            if record.history_type == "~" and before is not None:
                for field in fields:
                    old = getattr(before, field.attname)
                    new = getattr(record, field.attname)
                    if old == new:
                        continue
                    found.append(
                        (
                            record.history_date,
                            record.history_id,
                            spec.label,
                            [
                                *common,
                                str(field.verbose_name).capitalize(),
                                value_text(field, old),
                                value_text(field, new),
                                reason,
                            ],
                        )
                    )
            else:
                found.append(
                    (
                        record.history_date,
                        record.history_id,
                        spec.label,
                        [*common, "", "", "", reason],
                    )
                )
    found.sort(key=lambda item: (item[0], item[2], item[1]))
    return ReportTable(
        title="Master data changes",
        parameters=[*_period_parameters(date_from, date_to), ("Changes", str(len(found)))],
        headers=[
            "Changed at",
            "Changed by",
            "Record",
            "Name",
            "Change",
            "Field",
            "Before",
            "After",
            "Reason",
        ],
        rows=[ReportRow(cells) for _, _, _, cells in found],
        notes=[
            "From the history of "
            + ", ".join(spec.label.lower() + "s" for spec in MASTER_DATA)
            + ". Secrets (bank account numbers, IBANs, tax ids of vendors) are not kept in "
            "history and do not appear. 'Changed by' is recorded for changes made through the "
            "workspace or the API; '(not recorded)' marks changes by commands and jobs."
        ],
        filename=_stem("master_data", date_from, date_to),
    )


# ---------------------------------------------------------------------------------- users


def _log_text(entry: LogEntry) -> str:
    action = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}.get(entry.action_flag, "?")
    message = entry.get_change_message()
    return f"{at_text(entry.action_time)} {user_text(entry.user)} {action}: {message}".strip()


def users_table(date_from: date, date_to: date) -> ReportTable:
    """Every user with their roles and second factor as they are now, and the admin log of
    changes to users, roles and devices in the period. EXCEPTION: an active user without a
    confirmed second-factor device (who could not pass the staff login's second step)."""
    start, end = period_bounds(date_from, date_to)
    users = list(User.objects.prefetch_related("groups").order_by("username"))
    totp: dict[int, int] = defaultdict(int)
    for user_id in AuthenticatorDevice.objects.filter(confirmed=True).values_list(
        "user_id", flat=True
    ):
        totp[user_id] += 1
    static = set(
        RecoveryCodeDevice.objects.filter(confirmed=True).values_list("user_id", flat=True)
    )
    types = {
        model: ContentType.objects.get_for_model(model).pk
        for model in (User, Group, AuthenticatorDevice, RecoveryCodeDevice)
    }
    log = (
        LogEntry.objects.filter(
            content_type_id__in=types.values(), action_time__gte=start, action_time__lt=end
        )
        .select_related("user")
        .order_by("action_time", "pk")
    )
    # Whose account a log entry is about: the user, or the owner of the device.
    owners: dict[int, dict[int, int]] = {
        types[AuthenticatorDevice]: dict(AuthenticatorDevice.objects.values_list("pk", "user_id")),
        types[RecoveryCodeDevice]: dict(RecoveryCodeDevice.objects.values_list("pk", "user_id")),
    }
    changes_of: dict[int, list[str]] = defaultdict(list)
    other_changes = []
    for entry in log:
        object_id = int(entry.object_id) if (entry.object_id or "").isdigit() else None
        target: int | None = None
        if entry.content_type_id == types[User]:
            target = object_id
        elif entry.content_type_id in owners and object_id is not None:
            target = owners[entry.content_type_id].get(object_id)
        text = _log_text(entry)
        if target is not None:
            changes_of[target].append(text)
        else:
            other_changes.append(f"{entry.object_repr}: {text}")
    rows = []
    exceptions = 0
    for user in users:
        confirmed = totp.get(user.pk, 0)
        factor = f"{confirmed} authenticator app(s)" if confirmed else "none"
        if user.pk in static:
            factor += ", recovery codes"
        flag = ""
        if user.is_active and not confirmed:
            flag = f"{EXCEPTION}: no confirmed device"
            exceptions += 1
        rows.append(
            ReportRow(
                [
                    user.get_username(),
                    user.get_full_name(),
                    "yes" if user.is_active else "no",
                    "yes" if user.is_staff else "no",
                    "yes" if user.is_superuser else "no",
                    ", ".join(sorted(g.name for g in user.groups.all())),
                    factor,
                    at_text(user.last_login),
                    at_text(user.date_joined),
                    " | ".join(changes_of.get(user.pk, [])),
                    flag,
                ]
            )
        )
    notes = [
        "Users, roles and devices as they are when the report is produced; the changes "
        "column is the workspace's admin log for the period (group membership has no "
        "history table of its own: changes made by management commands are in the "
        "application log 'core.accounts', not here). Integration accounts sign in with API "
        "tokens and are flagged like anyone without a confirmed device."
    ]
    notes += [f"Role change: {text}" for text in other_changes]
    return ReportTable(
        title="Users, roles and second factor",
        parameters=[
            *_period_parameters(date_from, date_to),
            ("Users", str(len(rows))),
            ("Active users without a confirmed device", str(exceptions)),
        ],
        headers=[
            "User",
            "Name",
            "Active",
            "Staff",
            "Superuser",
            "Roles",
            "Confirmed second factor",
            "Last login",
            "Joined",
            "Changes in the period",
            "Flag",
        ],
        rows=rows,
        notes=notes,
        filename=_stem("users", date_from, date_to),
    )


# --------------------------------------------------------------------------------- logins


def logins_table(date_from: date, date_to: date) -> ReportTable:
    """Failed logins and lock-outs recorded by django-axes in the period: its failure log
    (every failure, kept) and its current attempt records (failures since the last success
    per username and address; locked out from ``AXES_FAILURE_LIMIT``)."""
    start, end = period_bounds(date_from, date_to)
    limit = int(getattr(settings, "AXES_FAILURE_LIMIT", 3))
    rows: list[tuple[datetime, int, list[Cell]]] = []
    for failure in AccessFailureLog.objects.filter(attempt_time__gte=start, attempt_time__lt=end):
        rows.append(
            (
                failure.attempt_time,
                0,
                [
                    at_text(failure.attempt_time),
                    failure.username or "",
                    failure.ip_address or "",
                    failure.path_info,
                    "Failure log",
                    None,
                    "yes" if failure.locked_out else "no",
                    failure.user_agent,
                ],
            )
        )
    for attempt in AccessAttempt.objects.filter(attempt_time__gte=start, attempt_time__lt=end):
        rows.append(
            (
                attempt.attempt_time,
                1,
                [
                    at_text(attempt.attempt_time),
                    attempt.username or "",
                    attempt.ip_address or "",
                    attempt.path_info,
                    "Attempt record",
                    attempt.failures_since_start,
                    "yes" if attempt.failures_since_start >= limit else "no",
                    attempt.user_agent,
                ],
            )
        )
    rows.sort(key=lambda item: (item[0], item[1]))
    locked = sum(1 for _, _, cells in rows if cells[6] == "yes")
    return ReportTable(
        title="Failed and locked-out logins",
        parameters=[
            *_period_parameters(date_from, date_to),
            ("Lock-out after", f"{limit} failures"),
            ("Records", str(len(rows))),
            ("Locked out", str(locked)),
        ],
        headers=[
            "At",
            "Username",
            "Address",
            "Path",
            "Source",
            "Failures",
            "Locked out",
            "Browser",
        ],
        rows=[ReportRow(cells) for _, _, cells in rows],
        notes=[
            "django-axes keeps an attempt record per username and address until a successful "
            "login resets it or the cool-off expires; its failure log keeps every failure "
            "when AXES_ENABLE_ACCESS_FAILURE_LOG is on."
        ],
        filename=_stem("logins", date_from, date_to),
    )


# ------------------------------------------------------------------------------ sign-offs


def sign_offs_table(date_from: date, date_to: date) -> ReportTable:
    """Bank reconciliation sign-offs and reopenings in the period, one row per event."""
    start, end = period_bounds(date_from, date_to)
    sign_offs = SignOff.objects.filter(
        Q(signed_at__gte=start, signed_at__lt=end) | Q(reopened_at__gte=start, reopened_at__lt=end)
    ).select_related("bank_account", "signed_by", "reopened_by")
    events: list[tuple[datetime, int, list[Cell]]] = []
    for s in sign_offs:
        common: list[Cell] = [
            str(s.bank_account.name),
            f"{s.period_start.isoformat()} to {s.period_end.isoformat()}",
            Amount(s.statement_balance, s.currency),
            Amount(s.book_balance, s.currency),
            Amount(s.unexplained, s.currency),
        ]
        if start <= s.signed_at < end:
            events.append(
                (
                    s.signed_at,
                    s.pk,
                    [at_text(s.signed_at), "Signed off", user_text(s.signed_by), *common, s.note],
                )
            )
        if s.status == SignOffStatus.REOPENED and s.reopened_at and start <= s.reopened_at < end:
            events.append(
                (
                    s.reopened_at,
                    s.pk,
                    [
                        at_text(s.reopened_at),
                        "Reopened",
                        user_text(s.reopened_by),
                        *common,
                        s.reopen_reason,
                    ],
                )
            )
    events.sort(key=lambda item: (item[0], item[1]))
    return ReportTable(
        title="Reconciliation sign-offs and reopenings",
        parameters=[*_period_parameters(date_from, date_to), ("Events", str(len(events)))],
        headers=[
            "At",
            "Event",
            "By",
            "Bank account",
            "Period reconciled",
            "Statement balance",
            "Book balance",
            "Unexplained",
            "Note or reason",
        ],
        rows=[ReportRow(cells) for _, _, cells in events],
        notes=[
            "Balances as signed. A reopening moves the ledger lock of the bank account back; "
            "the reconciliation audit trail holds the same events."
        ],
        filename=_stem("sign_offs", date_from, date_to),
    )


# ------------------------------------------------------------------- personal data (GDPR)


def personal_data_table(date_from: date, date_to: date) -> ReportTable:
    """Every export and erasure of a person's data (customer, vendor, user) in the period,
    from the admin log: when, who asked, about whom, what and why."""
    start, end = period_bounds(date_from, date_to)
    rows = []
    for entry in personal_data_log_list(start=start, end=end):
        action, _, reason = entry.change_message.removeprefix(GDPR_LOG_PREFIX).partition(": ")
        rows.append(
            ReportRow(
                [
                    at_text(entry.action_time),
                    user_text(entry.user),
                    str(ContentType.objects.get_for_id(entry.content_type_id).name)
                    if entry.content_type_id
                    else "",
                    f"{entry.object_repr} (#{entry.object_id})",
                    action.capitalize(),
                    reason,
                ]
            )
        )
    return ReportTable(
        title="Personal data exports and erasures (GDPR)",
        parameters=[*_period_parameters(date_from, date_to), ("Requests", str(len(rows)))],
        headers=["At", "By", "Record", "Subject", "Request", "Reason"],
        rows=rows,
        notes=[
            "From the admin log. An erased record shows its pseudonym; its history says "
            "what changed (master data report), the erasure's reason is here in full."
        ],
        filename=_stem("personal_data", date_from, date_to),
    )


# -------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class ComplianceReport:
    code: str
    title: str
    description: str
    build: Callable[[date, date], ReportTable]


REPORTS: dict[str, ComplianceReport] = {
    report.code: report
    for report in (
        ComplianceReport(
            "approvals",
            "Approvals",
            "Approved documents with requester and each approver; EXCEPTION when they do not "
            "differ or one person counts twice.",
            approvals_table,
        ),
        ComplianceReport(
            "bank_changes",
            "Vendor bank-detail changes",
            "Who requested and who approved each change of a vendor's bank details.",
            bank_changes_table,
        ),
        ComplianceReport(
            "journal_entries",
            "Manual journal entries and reversals",
            "Entries posted by hand and every reversal, with their authors.",
            journal_entries_table,
        ),
        ComplianceReport(
            "master_data",
            "Master data changes",
            "Customers, prices, tax rates, vendors, approval levels, tolerances and more: "
            "each change with its value before and after.",
            master_data_table,
        ),
        ComplianceReport(
            "users",
            "Users, roles and second factor",
            "Every user's roles and second factor (EXCEPTION: no confirmed device) and the "
            "account changes of the period.",
            users_table,
        ),
        ComplianceReport(
            "logins",
            "Failed and locked-out logins",
            "Failed logins and lock-outs recorded by django-axes.",
            logins_table,
        ),
        ComplianceReport(
            "sign_offs",
            "Reconciliation sign-offs",
            "Bank reconciliation sign-offs and reopenings.",
            sign_offs_table,
        ),
        ComplianceReport(
            "personal_data",
            "Personal data exports and erasures",
            "GDPR exports and erasures of customers, vendors and users: who, whom, when, why.",
            personal_data_table,
        ),
    )
}


# ------------------------------------------------------------------------ production log


@dataclass(frozen=True)
class Produced:
    content: bytes
    production: ReportProduction


def production_stamp(
    table: ReportTable, *, actor: Any, produced_at: datetime
) -> tuple[ReportTable, str]:
    """The table with who produced it, when and the SHA-256 of its rows; and that hash."""
    digest = rows_sha256(table)
    stamped = replace(
        table,
        production=[
            ("Produced at", at_text(produced_at)),
            ("Produced by", user_text(actor)),
            ("SHA-256 of the report's rows", digest),
        ],
        footer=f"SHA-256 of the report's rows (header and rows as CSV): {digest}",
        notes=[
            *table.notes,
            "The SHA-256 of the report's rows is computed over the header and rows of its "
            "CSV download (UTF-8, CRLF line ends, from the header line through the last "
            "row), the same for the CSV, Excel and PDF of one run: a PDF cannot carry the "
            "hash of itself. The production log keeps it with the SHA-256 of each file.",
        ],
    )
    return stamped, digest


def report_production_record(
    *,
    code: str,
    date_from: date,
    date_to: date,
    file_format: Format,
    actor: Any,
) -> Produced:
    """Build report ``code`` for the period, render it in ``file_format`` stamped with its
    producer, time and the SHA-256 of its rows, and log the production with the SHA-256 of
    the file's bytes (the log row is written before the file is handed out)."""
    if code not in REPORTS:
        raise InvalidPeriod(f"No compliance report {code!r}.", field="code")
    table = REPORTS[code].build(date_from, date_to)
    produced_at = timezone.now()
    stamped, digest = production_stamp(table, actor=actor, produced_at=produced_at)
    content = report_bytes(stamped, file_format)
    with transaction.atomic():
        production = ReportProduction.objects.create(
            code=code,
            parameters={"date_from": date_from.isoformat(), "date_to": date_to.isoformat()},
            format=file_format,
            produced_by=actor if getattr(actor, "pk", None) else None,
            produced_at=produced_at,
            sha256=hashlib.sha256(content).hexdigest(),
            rows_sha256=digest,
            row_count=len(table.rows),
        )
    return Produced(content, production)


def productions_list(*, code: str = "", limit: int = 20) -> list[ReportProduction]:
    """The latest productions, newest first (of one report when ``code`` is given)."""
    qs = ReportProduction.objects.select_related("produced_by")
    if code:
        qs = qs.filter(code=code)
    return list(qs.order_by("-produced_at", "-pk")[:limit])
