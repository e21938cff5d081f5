"""Payables models. Written by ``payables.services`` only; status fields are protected FSM
fields that only the services' transitions change."""

from payables.models.approvals import Approval, ApprovalDelegation, ApprovalLevel
from payables.models.bills import Bill, BillLine, MatchTolerance
from payables.models.expenses import ExpenseCategory, ExpenseLine, ExpenseReport
from payables.models.orders import PurchaseOrder, PurchaseOrderLine, Receipt, ReceiptLine
from payables.models.runs import PaymentRun, PaymentRunItem
from payables.models.vendors import Vendor, VendorBankChange, VendorDocument

__all__ = [
    "Approval",
    "ApprovalDelegation",
    "ApprovalLevel",
    "Bill",
    "BillLine",
    "ExpenseCategory",
    "ExpenseLine",
    "ExpenseReport",
    "MatchTolerance",
    "PaymentRun",
    "PaymentRunItem",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "Receipt",
    "ReceiptLine",
    "Vendor",
    "VendorBankChange",
    "VendorDocument",
]
