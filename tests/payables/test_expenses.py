"""Expense reports: policy limits, approval posting to the categories' accounts, and
reimbursement through a payment run to the employee's payee record."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.exceptions import DomainError
from core.ledger.enums import AccountRole
from core.ledger.models import JournalLine
from core.ledger.selectors import account_balances, account_get_by_role
from payables.enums import ExpenseReportStatus
from payables.exceptions import ApprovalRefused
from payables.models import ExpenseCategory, ExpenseReport
from payables.selectors import ap_subledger_check
from payables.services.expenses import (
    ExpenseLineInput,
    expense_report_approve,
    expense_report_create,
    expense_report_reject,
    expense_report_submit,
)
from payables.services.runs import (
    payment_run_approve,
    payment_run_confirm,
    payment_run_create,
    payment_run_export,
    payment_run_submit,
)
from payables.services.vendors import (
    BankDetails,
    vendor_bank_change_approve,
    vendor_bank_change_request,
)

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)


def _report(employee, *lines):
    return expense_report_create(
        actor=employee,
        title="Trip",
        currency="USD",
        lines=[
            ExpenseLineInput(DAY, ExpenseCategory.objects.get(name=name).pk, name, Decimal(a), j)
            for name, a, j in lines
        ],
    )


def test_over_limit_needs_a_justification(make_user):
    employee = make_user("ap_clerk")
    report = _report(employee, ("Meals and entertainment", "150.01", ""))
    assert report.lines.get().over_limit
    with pytest.raises(DomainError) as refused:
        expense_report_submit(report_id=report.pk, actor=employee)
    assert refused.value.code == "policy_limit_exceeded"
    assert "line 1" in refused.value.message
    assert ExpenseReport.objects.get(pk=report.pk).status == ExpenseReportStatus.DRAFT
    at_limit = _report(employee, ("Meals and entertainment", "150.00", ""))
    assert not at_limit.lines.get().over_limit
    justified = _report(employee, ("Meals and entertainment", "400.00", "Team dinner, 6 people"))
    assert expense_report_submit(report_id=justified.pk, actor=employee).status == "submitted"


def test_approval_posts_to_category_accounts_and_is_reimbursed(make_user, ap_clerk):
    employee = make_user("ar_clerk")
    approver = make_user("approver")
    report = _report(employee, ("Travel", "420.00", ""), ("Office supplies", "35.50", ""))
    expense_report_submit(report_id=report.pk, actor=employee)
    with pytest.raises(ApprovalRefused):
        expense_report_approve(report_id=report.pk, actor=employee)
    report = expense_report_approve(report_id=report.pk, actor=approver, comment="ok")
    assert report.status == ExpenseReportStatus.APPROVED
    travel = ExpenseCategory.objects.get(name="Travel").account
    assert JournalLine.objects.get(entry=report.journal_entry, account=travel).debit == Decimal(
        "420.00"
    )
    assert ap_subledger_check() == []
    # the employee's payee record gets bank details through the second-person rule
    admin = make_user("finance_admin")
    change = vendor_bank_change_request(
        vendor_id=report.payee_id,
        bank=BankDetails(routing_number="011000015", account_number="44445555"),
        reason="Payroll account",
        actor=ap_clerk,
    )
    vendor_bank_change_approve(change_id=change.pk, actor=admin)
    from payables.services.vendors import vendor_activate

    vendor_activate(vendor_id=report.payee_id, actor=admin)
    run = payment_run_create(actor=ap_clerk, currency="USD", pay_by=DAY, payment_date=DAY)
    assert run.total.amount == Decimal("455.50")
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    payment_run_approve(run_id=run.pk, actor=approver)
    # the clerk who changed the bank details may not release the file that pays to them
    payment_run_export(run_id=run.pk, actor=admin)
    payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    assert ExpenseReport.objects.get(pk=report.pk).status == ExpenseReportStatus.REIMBURSED
    ap = account_balances(account=account_get_by_role(AccountRole.ACCOUNTS_PAYABLE))["USD"]
    assert ap.balance == 0
    assert ap_subledger_check() == []


def test_rejected_report_can_be_fixed_and_resubmitted(make_user):
    employee = make_user("ap_clerk")
    report = _report(employee, ("Travel", "80.00", ""))
    expense_report_submit(report_id=report.pk, actor=employee)
    report = expense_report_reject(
        report_id=report.pk, actor=make_user("approver"), comment="No receipt"
    )
    assert report.status == ExpenseReportStatus.REJECTED
    assert expense_report_submit(report_id=report.pk, actor=employee).status == "submitted"
