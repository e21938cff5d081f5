"""Expense reports: lines with categories and receipts, policy limits, approval (posting Dr
the categories' accounts / Cr AP), reimbursement through payment runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from core.exceptions import NotFound
from core.ledger.enums import AccountRole
from core.ledger.selectors import account_get_by_role
from core.ledger.services import journal_post
from core.money import check_amount
from core.numbering import document_number_next
from core.system_settings import system_settings
from payables.enums import DocumentKind
from payables.enums import ExpenseReportStatus as S
from payables.exceptions import InvalidState, PayablesError
from payables.models import ExpenseCategory, ExpenseLine, ExpenseReport
from payables.postings import expense_recognition_lines
from payables.services.approvals import (
    approval_record,
    approvals_void,
    rejection_record,
    required_roles,
)
from payables.services.common import content_hash, functional_amount, require
from payables.services.vendors import employee_payee_get_or_create
from payables.uploads import upload_check

KIND = DocumentKind.EXPENSE_REPORT
EXPENSE_SERIES = "EXP"


@dataclass(frozen=True)
class ExpenseLineInput:
    spent_on: date
    category_id: int
    description: str
    amount: Decimal
    justification: str = ""


def _over_limit(category: ExpenseCategory, amount: Decimal, currency: str, on: date) -> bool:
    if category.limit_amount is None:
        return False
    limit_currency = category.limit_currency or system_settings().functional_currency
    if currency == limit_currency:
        return amount > category.limit_amount
    from core.fx import fx_convert

    converted = fx_convert(
        amount=amount, from_currency=currency, to_currency=limit_currency, on_date=on, exact=True
    )
    return converted > category.limit_amount


def expense_report_create(
    *, title: str, currency: str, lines: Sequence[ExpenseLineInput], actor: Any
) -> ExpenseReport:
    """A draft report of ``actor``'s own spending, reimbursed to their payee record."""
    require(actor, "payables.add_expensereport", "create expense reports")
    if not lines:
        raise PayablesError("A report needs at least one line.", code="no_lines")
    categories = {c.pk: c for c in ExpenseCategory.objects.filter(active=True)}
    with transaction.atomic():
        report = ExpenseReport.objects.create(
            number=document_number_next(series=EXPENSE_SERIES, on_date=timezone.localdate()),
            employee=actor,
            payee=employee_payee_get_or_create(user=actor),
            title=title.strip()[:200] or "Expenses",
            currency=currency,
        )
        total = Decimal(0)
        for position, item in enumerate(lines, start=1):
            category = categories.get(item.category_id)
            if category is None:
                raise PayablesError(
                    f"Line {position}: category {item.category_id} does not exist.",
                    code="invalid",
                )
            amount = check_amount(item.amount, currency)
            if amount <= 0:
                raise PayablesError(f"Line {position}: amount must be positive.", code="invalid")
            ExpenseLine.objects.create(
                report=report,
                position=position,
                spent_on=item.spent_on,
                category=category,
                description=item.description.strip()[:300],
                currency=currency,
                amount=Money(amount, currency),
                justification=item.justification.strip()[:500],
                over_limit=_over_limit(category, amount, currency, item.spent_on),
            )
            total += amount
        report.total = Money(total, currency)
        report.save()
    return report


def _report_for_update(report_id: int) -> ExpenseReport:
    try:
        return ExpenseReport.objects.select_for_update().get(pk=report_id)
    except ExpenseReport.DoesNotExist:
        raise NotFound(f"Expense report {report_id} does not exist.") from None


def _refuse(report: ExpenseReport, action: str) -> None:
    raise InvalidState(
        f"Expense report {report.number} is {report.get_status_display().lower()}: it cannot "
        f"be {action}.",
        code="invalid_state",
    )


def expense_receipt_attach(*, line_id: int, upload: Any, actor: Any) -> ExpenseLine:
    """Attach a receipt (PDF, PNG or JPEG by content, size-limited) to a draft line."""
    checked = upload_check(upload)
    with transaction.atomic():
        line = ExpenseLine.objects.select_related("report").filter(pk=line_id).first()
        if line is None:
            raise NotFound(f"Expense line {line_id} does not exist.")
        report = _report_for_update(line.report_id)
        if report.employee_id != actor.pk:
            raise PayablesError("Only the employee attaches receipts.", code="denied")
        if report.status not in (S.DRAFT, S.REJECTED):
            _refuse(report, "changed")
        line.receipt_name = checked.original_name
        line.receipt_sha256 = checked.sha256
        line.receipt_ext = checked.extension
        line.receipt.save(checked.content.name, checked.content, save=False)
        line.save()
    return line


def expense_report_version(report: ExpenseReport) -> str:
    return content_hash(
        {
            "currency": report.currency,
            "total": str(report.total.amount),
            "lines": [
                [
                    str(line.spent_on),
                    line.category_id,
                    line.description,
                    str(line.amount.amount),
                    line.receipt_sha256,
                ]
                for line in report.lines.order_by("position")
            ],
        }
    )


def expense_report_submit(*, report_id: int, actor: Any) -> ExpenseReport:
    """Submit for approval: every line above its category's limit needs a justification,
    and a receipt where the category asks for one above an amount."""
    with transaction.atomic():
        report = _report_for_update(report_id)
        if report.employee_id != actor.pk:
            raise PayablesError("Only the employee submits their report.", code="denied")
        if report.status not in (S.DRAFT, S.REJECTED):
            _refuse(report, "submitted")
        problems = []
        for line in report.lines.select_related("category").order_by("position"):
            if line.over_limit and not line.justification:
                problems.append(
                    f"line {line.position}: {line.amount.amount} is above the "
                    f"{line.category.name} limit of {line.category.limit_amount}; add a "
                    "justification"
                )
            threshold = line.category.receipt_required_above
            if threshold is not None and line.amount.amount > threshold and not line.receipt:
                problems.append(f"line {line.position}: a receipt is required")
        if problems:
            raise PayablesError(
                "The report breaks the expense policy: " + "; ".join(problems) + ".",
                code="policy_limit_exceeded",
            )
        report.total_functional = functional_amount(
            report.total.amount, report.currency, timezone.localdate()
        )
        approvals_void(kind=KIND, object_id=report.pk, reason="resubmitted")
        report.submit()
        report.save()
    return report


def expense_report_approve(
    *, report_id: int, actor: Any, comment: str = "", expected_version: str | None = None
) -> ExpenseReport:
    """One approval (never the employee's own); when complete, Dr each category's account /
    Cr AP (the employee is owed the money until a payment run reimburses it)."""
    with transaction.atomic():
        report = _report_for_update(report_id)
        if report.status != S.SUBMITTED:
            _refuse(report, "approved")
        _, outstanding = approval_record(
            kind=KIND,
            object_id=report.pk,
            maker_ids={report.employee_id},
            required=required_roles(KIND, report.total_functional),
            version_hash=expense_report_version(report),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        if not outstanding:
            report.approve()
            lines = list(report.lines.select_related("category__account"))
            entry = journal_post(
                lines=expense_recognition_lines(
                    currency=report.currency,
                    debits=[(line.category.account, line.amount.amount) for line in lines],
                    total_functional=report.total_functional,
                    payable=account_get_by_role(AccountRole.ACCOUNTS_PAYABLE),
                ),
                entry_date=timezone.localdate(),
                description=f"Expense report {report.number}",
                source=f"payables.expense_report:{report.pk}",
                idempotency_key=f"payables.expense_report:{report.pk}:approve",
                actor=actor,
            )
            report.journal_entry = entry
            report.save()
    return report


def expense_report_reject(
    *, report_id: int, actor: Any, comment: str, expected_version: str | None = None
) -> ExpenseReport:
    if not comment.strip():
        raise PayablesError("Say why the report is rejected.", code="comment_required")
    with transaction.atomic():
        report = _report_for_update(report_id)
        if report.status != S.SUBMITTED:
            _refuse(report, "rejected")
        rejection_record(
            kind=KIND,
            object_id=report.pk,
            maker_ids={report.employee_id},
            version_hash=expense_report_version(report),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        report.reject()
        report.save()
    return report
