"""Payables states and choices."""

from __future__ import annotations

from django.db import models


class VendorStatus(models.TextChoices):
    INVITED = "invited", "Invited"
    PENDING_REVIEW = "pending_review", "Pending review"
    ACTIVE = "active", "Active"
    BLOCKED = "blocked", "Blocked"


class VendorKind(models.TextChoices):
    SUPPLIER = "supplier", "Supplier"
    # An employee paid back for expenses: a payee like any vendor (bank details, holds).
    EMPLOYEE = "employee", "Employee (reimbursements)"


class TaxIdType(models.TextChoices):
    NONE = "", "None"
    US_EIN = "us_ein", "US EIN"
    EU_VAT = "eu_vat", "EU VAT number"
    GB_VAT = "gb_vat", "GB VAT number"


class BankChangeStatus(models.TextChoices):
    PENDING = "pending", "Pending second approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class DocumentKind(models.TextChoices):
    """What an approval level or decision applies to."""

    PURCHASE_ORDER = "purchase_order", "Purchase order"
    BILL = "bill", "Vendor bill"
    EXPENSE_REPORT = "expense_report", "Expense report"
    PAYMENT_RUN = "payment_run", "Payment run"
    BANK_CHANGE = "bank_change", "Vendor bank details change"


class ApprovalDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PurchaseOrderStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    ORDERED = "ordered", "Ordered"
    RECEIVED = "received", "Received"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


class BillStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled for payment"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class MatchStatus(models.TextChoices):
    NOT_APPLICABLE = "not_applicable", "No purchase order"
    MATCHED = "matched", "Matched"
    EXCEPTION = "exception", "Match exception"
    OVERRIDDEN = "overridden", "Exception accepted by an approver"


class ExpenseReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REIMBURSED = "reimbursed", "Reimbursed"


class PaymentRunStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    EXPORTED = "exported", "File exported"
    PAID = "paid", "Paid"
    CANCELLED = "cancelled", "Cancelled"


class PaymentFileFormat(models.TextChoices):
    NACHA = "nacha", "NACHA ACH (US)"
    PAIN001 = "pain001", "ISO 20022 pain.001 credit transfer"
