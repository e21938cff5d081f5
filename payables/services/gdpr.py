"""GDPR for vendors (sole traders and employee payees are people): the export of everything
held about one (art. 15 and 20) and its erasure by pseudonymisation (art. 17) while the
bills, orders, payments and ledger entries the law requires are kept.

Erasure replaces the vendor's name, email, address, tax id, bank details and free-text notes
with a pseudonym (``Erased vendor 12``), here, in its bank-detail changes and in every history
row of both, and blocks the vendor (``GDPR erasure``) so no run pays it again. Bills, orders,
payment runs and their ledger entries are untouched (amounts, numbers, states). Uploaded
onboarding documents (W-9, W-8BEN, certificates) are tax records kept for their retention
period and are not deleted. Refused (409 ``erasure_open_items``) while bills are unpaid or
unapproved, orders open, payments scheduled, a bank change or an expense report pending. A
second erasure answers the erased vendor and changes nothing; an erased vendor is never
edited, activated or given bank details again.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from core.exceptions import NotFound
from core.gdpr import (
    ERASED,
    ERASURE,
    EXPORT,
    erasure_change_reason,
    erasure_reason_clean,
    history_data,
    open_items_refuse,
    personal_data_log,
    plain,
    record_data,
    require,
)
from core.history_guard import history_erasure_allow
from payables.enums import (
    BankChangeStatus,
    BillStatus,
    ExpenseReportStatus,
    PaymentRunStatus,
    PurchaseOrderStatus,
)
from payables.exceptions import InvalidState
from payables.models import (
    Bill,
    ExpenseReport,
    PaymentRunItem,
    PurchaseOrder,
    Vendor,
    VendorBankChange,
    VendorDocument,
)

ERASURE_BLOCK_REASON = "GDPR erasure"


class VendorErased(InvalidState):
    code = "vendor_erased"


def vendor_erased_refuse(vendor: Vendor) -> None:
    """An erased vendor is never edited, activated or given bank details again."""
    if vendor.erased_at is not None:
        raise VendorErased(
            f"Vendor {vendor.pk}'s personal data was erased (GDPR); it cannot be changed."
        )


def vendor_pseudonym(vendor_id: int) -> dict[str, Any]:
    """What stands in for the vendor's personal data once erased (history rows too: the
    tax id, account number and IBAN are not kept in history)."""
    return {
        "name": f"Erased vendor {vendor_id}",
        "email": f"erased-vendor-{vendor_id}@erased.invalid",
        "address": "",
        "bank_account_holder": "",
        "bank_routing_number": "",
        "bic": "",
    }


_SECRETS = {"tax_id": "", "bank_account_number": "", "iban": ""}
_BANK_CHANGE_ERASED = {
    "bank_account_holder": "",
    "bank_routing_number": "",
    "bic": "",
}

_UNPAID_BILLS = (BillStatus.APPROVED, BillStatus.SCHEDULED)
_UNAPPROVED_BILLS = (BillStatus.DRAFT, BillStatus.PENDING_APPROVAL)
_OPEN_ORDERS = (
    PurchaseOrderStatus.DRAFT,
    PurchaseOrderStatus.PENDING_APPROVAL,
    PurchaseOrderStatus.APPROVED,
    PurchaseOrderStatus.ORDERED,
    PurchaseOrderStatus.RECEIVED,
)
_RUNS_NOT_PAID = (
    PaymentRunStatus.DRAFT,
    PaymentRunStatus.PENDING_APPROVAL,
    PaymentRunStatus.APPROVED,
    PaymentRunStatus.EXPORTED,
)
_OPEN_EXPENSES = (ExpenseReportStatus.SUBMITTED, ExpenseReportStatus.APPROVED)


def _vendor(vendor_id: int, *, lock: bool = False) -> Vendor:
    qs = Vendor.objects.select_for_update() if lock else Vendor.objects
    vendor = qs.filter(pk=vendor_id).first()
    if vendor is None:
        raise NotFound(f"Vendor {vendor_id} does not exist.")
    return vendor


def vendor_open_items(vendor: Vendor) -> dict[str, int]:
    """What must be paid, closed or decided before the vendor can be erased, kind -> count."""
    return {
        "unapproved_bills": Bill.objects.filter(
            vendor=vendor, status__in=_UNAPPROVED_BILLS
        ).count(),
        "unpaid_bills": Bill.objects.filter(vendor=vendor, status__in=_UNPAID_BILLS).count(),
        "open_purchase_orders": PurchaseOrder.objects.filter(
            vendor=vendor, status__in=_OPEN_ORDERS
        ).count(),
        "scheduled_payments": PaymentRunItem.objects.filter(
            vendor=vendor, run__status__in=_RUNS_NOT_PAID
        ).count(),
        "pending_bank_changes": VendorBankChange.objects.filter(
            vendor=vendor, status=BankChangeStatus.PENDING
        ).count(),
        "open_expense_reports": ExpenseReport.objects.filter(
            payee=vendor, status__in=_OPEN_EXPENSES
        ).count(),
    }


def vendor_export(*, actor: Any, vendor_id: int) -> dict[str, Any]:
    """Everything held about the vendor as JSON: the record and its bank-detail changes
    (tax id, account numbers and IBANs masked as the API shows them), summaries of its
    documents, orders, bills, payments and expense reports, and every history row of the
    vendor and its bank changes. Logged as an export by ``actor``."""
    require(actor, "payables.export_vendor", "exporting a vendor's personal data")
    vendor = _vendor(vendor_id)
    changes = list(VendorBankChange.objects.filter(vendor=vendor).order_by("pk"))
    data: dict[str, Any] = {
        "subject": {"type": "vendor", "id": vendor.pk},
        "exported_at": plain(timezone.now()),
        "exported_by": actor.get_username(),
        "vendor": record_data(vendor),
        "bank_changes": [record_data(change) for change in changes],
        "documents": [
            record_data(
                doc,
                only={"id", "kind", "original_name", "content_type", "size", "sha256"},
            )
            | {"uploaded_at": plain(doc.uploaded_at)}
            for doc in VendorDocument.objects.filter(vendor=vendor).order_by("pk")
        ],
        "purchase_orders": [
            record_data(
                order,
                only={"id", "number", "status", "currency", "total", "description", "created_at"},
            )
            for order in PurchaseOrder.objects.filter(vendor=vendor).order_by("pk")
        ],
        "bills": [
            record_data(
                bill,
                only={
                    "id",
                    "number",
                    "status",
                    "currency",
                    "bill_date",
                    "due_date",
                    "total",
                    "amount_paid",
                    "description",
                },
            )
            for bill in Bill.objects.filter(vendor=vendor).order_by("pk")
        ],
        "payments": [
            record_data(item, only={"id", "run", "bill", "expense_report", "amount", "discount"})
            | {"run_status": item.run.status, "paid_at": plain(item.run.paid_at)}
            for item in PaymentRunItem.objects.filter(vendor=vendor)
            .select_related("run")
            .order_by("pk")
        ],
        "expense_reports": [
            record_data(report, only={"id", "number", "title", "status", "total", "amount_paid"})
            for report in ExpenseReport.objects.filter(payee=vendor).order_by("pk")
        ],
        "history": {
            "vendor": history_data(Vendor, [vendor.pk]),
            "bank_changes": history_data(VendorBankChange, [c.pk for c in changes]),
        },
    }
    with transaction.atomic():
        personal_data_log(actor=actor, target=vendor, action=EXPORT)
    return data


def vendor_erase(*, actor: Any, vendor_id: int, reason: str) -> Vendor:
    """Pseudonymise the vendor's personal data here, in its bank changes and in their
    history rows, and block it; keep its bills, orders and ledger entries as they are;
    refused while open items remain. Idempotent: an erased vendor is answered as it is."""
    require(actor, "payables.erase_vendor", "erase a vendor's personal data")
    reason = erasure_reason_clean(reason)
    with transaction.atomic():
        vendor = _vendor(vendor_id, lock=True)
        if vendor.erased_at is not None:
            return vendor
        open_items_refuse(vendor_open_items(vendor), subject=f"Vendor {vendor.pk}")
        history_erasure_allow()
        change_reason = erasure_change_reason(reason)
        changes = list(VendorBankChange.objects.select_for_update().filter(vendor=vendor))
        for change in changes:
            for name, value in {**_BANK_CHANGE_ERASED, **_SECRETS}.items():
                if name != "tax_id":
                    setattr(change, name, value)
            if change.reason:
                change.reason = ERASED
            if change.comment:
                change.comment = ERASED
            change._change_reason = change_reason  # type: ignore[attr-defined]
            change._history_user = actor  # type: ignore[attr-defined]
            change.save()
        change_history = VendorBankChange.history.filter(id__in=[c.pk for c in changes])
        change_history.update(**_BANK_CHANGE_ERASED)
        change_history.exclude(reason="").update(reason=ERASED)
        change_history.exclude(comment="").update(comment=ERASED)
        pseudonym = vendor_pseudonym(vendor.pk)
        for name, value in {**pseudonym, **_SECRETS}.items():
            setattr(vendor, name, value)
        vendor.tax_id_type = ""
        vendor.block(reason=ERASURE_BLOCK_REASON)
        vendor.erased_at = timezone.now()
        vendor._change_reason = change_reason  # type: ignore[attr-defined]
        vendor._history_user = actor  # type: ignore[attr-defined]
        vendor.save()
        history = Vendor.history.filter(id=vendor.pk)
        history.update(**pseudonym)
        history.exclude(blocked_reason="").exclude(blocked_reason=ERASURE_BLOCK_REASON).update(
            blocked_reason=ERASED
        )
        personal_data_log(actor=actor, target=vendor, action=ERASURE, reason=reason)
    return vendor
