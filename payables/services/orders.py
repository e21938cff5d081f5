"""Purchase orders from draft to closed, with approval levels by amount, and receipts.

Every transition locks the order's row first, so two approvers deciding at once are
serialised: the second sees the first's decision (L5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money
from simple_history.utils import bulk_create_with_history

from core.exceptions import NotFound
from core.money import check_limit
from core.numbering import document_number_next
from payables.enums import DocumentKind, VendorStatus
from payables.enums import PurchaseOrderStatus as S
from payables.exceptions import InvalidState, PayablesError, VendorNotPayable
from payables.models import PurchaseOrder, PurchaseOrderLine, Receipt, ReceiptLine, Vendor
from payables.services.approvals import (
    approval_record,
    approvals_match_version,
    approvals_void,
    rejection_record,
    required_roles,
)
from payables.services.common import (
    content_hash,
    functional_amount,
    line_amount_check,
    lines_limit_check,
    require,
)

PO_SERIES = "PO"
KIND = DocumentKind.PURCHASE_ORDER


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    is_inventory: bool = False


def vendor_payable_get(vendor_id: int) -> Vendor:
    """An active vendor, or a 409 saying why orders and bills cannot go to it."""
    vendor = Vendor.objects.filter(pk=vendor_id).first()
    if vendor is None:
        raise NotFound(f"Vendor {vendor_id} does not exist.")
    if vendor.status != VendorStatus.ACTIVE:
        raise VendorNotPayable(
            f"Vendor {vendor} is {vendor.get_status_display().lower()}: orders and bills go "
            "only to active vendors.",
            code="vendor_not_active",
        )
    return vendor


def _line_objects(order: PurchaseOrder, lines: Sequence[LineInput]) -> list[PurchaseOrderLine]:
    if not lines:
        raise PayablesError("An order needs at least one line.", code="no_lines", field="lines")
    lines_limit_check(lines, "An order")
    result = []
    for position, line in enumerate(lines, start=1):
        amount = line_amount_check(
            quantity=line.quantity,
            unit_price=line.unit_price,
            currency=order.currency,
            position=position,
        )
        price = line.unit_price
        result.append(
            PurchaseOrderLine(
                order=order,
                position=position,
                description=line.description.strip()[:300],
                quantity=line.quantity,
                currency=order.currency,
                unit_price=Money(price, order.currency),
                amount=Money(amount, order.currency),
                is_inventory=line.is_inventory,
            )
        )
    return result


def _lines_save(objects: list[PurchaseOrderLine], actor: Any) -> None:
    """Insert the lines in one statement, with their history rows (C3) in another."""
    bulk_create_with_history(objects, PurchaseOrderLine, default_user=actor)


def _total(objects: Sequence[PurchaseOrderLine]) -> Decimal:
    return check_limit(sum((o.amount.amount for o in objects), Decimal(0)), field="lines")


def purchase_order_version(order: PurchaseOrder) -> str:
    """What an approver approves: vendor, currency and every line (C5)."""
    return content_hash(
        {
            "vendor": order.vendor_id,
            "currency": order.currency,
            "total": str(order.total.amount),
            "lines": [
                [line.description, str(line.quantity), str(line.unit_price.amount)]
                for line in order.lines.order_by("position")
            ],
        }
    )


def purchase_order_create(
    *,
    vendor_id: int,
    currency: str,
    lines: Sequence[LineInput],
    actor: Any,
    department: str = "",
    description: str = "",
) -> PurchaseOrder:
    """A draft order, requested by ``actor``, for an active vendor."""
    require(actor, "payables.add_purchaseorder", "create purchase orders")
    vendor = vendor_payable_get(vendor_id)
    with transaction.atomic():
        order = PurchaseOrder(
            number=document_number_next(series=PO_SERIES, on_date=timezone.localdate()),
            vendor=vendor,
            currency=currency,
            department=department[:100],
            description=description[:500],
            requester=actor,
        )
        objects = _line_objects(order, lines)
        order.total = Money(_total(objects), currency)
        order.save()
        _lines_save(objects, actor)
    return order


def _order_for_update(order_id: int) -> PurchaseOrder:
    try:
        return PurchaseOrder.objects.select_for_update().get(pk=order_id)
    except PurchaseOrder.DoesNotExist:
        raise NotFound(f"Purchase order {order_id} does not exist.") from None


def _refuse(order: PurchaseOrder, action: str) -> None:
    raise InvalidState(
        f"Purchase order {order.number} is {order.get_status_display().lower()}: it cannot "
        f"be {action}.",
        code="invalid_state",
    )


def purchase_order_update(
    *,
    order_id: int,
    actor: Any,
    lines: Sequence[LineInput] | None = None,
    department: str | None = None,
    description: str | None = None,
) -> PurchaseOrder:
    """Edit an order not yet placed. An order already submitted or approved goes back to
    draft and every decision on it is voided (C5): it must be approved again."""
    require(actor, "payables.change_purchaseorder", "change purchase orders")
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status not in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED):
            _refuse(order, "edited")
        if order.requester_id != actor.pk and not actor.has_perm("payables.order_purchaseorder"):
            raise PayablesError("Only the requester or purchasing edits an order.", code="denied")
        if department is not None:
            order.department = department[:100]
        if description is not None:
            order.description = description[:500]
        if lines is not None:
            objects = _line_objects(order, lines)
            order.lines.all().delete()
            _lines_save(objects, actor)
            order.total = Money(_total(objects), order.currency)
        if order.status != S.DRAFT:
            order.reopen()
            approvals_void(kind=KIND, object_id=order.pk, reason="edited after the decision")
        order.save()
    return order


def purchase_order_submit(*, order_id: int, actor: Any) -> PurchaseOrder:
    """Ask for approval. An order below the first level needs none: it is approved at once."""
    require(actor, "payables.add_purchaseorder", "submit purchase orders")
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status != S.DRAFT:
            _refuse(order, "submitted")
        order.total_functional = functional_amount(
            order.total.amount, order.currency, timezone.localdate()
        )
        approvals_void(kind=KIND, object_id=order.pk, reason="resubmitted")
        if required_roles(KIND, order.total_functional):
            order.submit()
        else:
            order.approve()
        order.save()
    return order


def purchase_order_approve(
    *, order_id: int, actor: Any, comment: str = "", expected_version: str | None = None
) -> PurchaseOrder:
    """One approval; the order is approved when every level its amount reaches has a
    distinct person. The requester never approves (403 ``requester_cannot_approve``)."""
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status != S.PENDING_APPROVAL:
            _refuse(order, "approved")
        _, outstanding = approval_record(
            kind=KIND,
            object_id=order.pk,
            maker_ids={order.requester_id},
            required=required_roles(KIND, order.total_functional),
            version_hash=purchase_order_version(order),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        if not outstanding:
            order.approve()
            order.save()
    return order


def purchase_order_reject(
    *, order_id: int, actor: Any, comment: str = "", expected_version: str | None = None
) -> PurchaseOrder:
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status != S.PENDING_APPROVAL:
            _refuse(order, "rejected")
        rejection_record(
            kind=KIND,
            object_id=order.pk,
            maker_ids={order.requester_id},
            version_hash=purchase_order_version(order),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        order.reject()
        order.save()
    return order


def purchase_order_place(*, order_id: int, actor: Any, send: bool = True) -> PurchaseOrder:
    """Place an approved order with the vendor (and email it the PDF). Refused if the order
    changed since it was approved."""
    require(actor, "payables.order_purchaseorder", "place purchase orders")
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status != S.APPROVED:
            _refuse(order, "ordered")
        if not approvals_match_version(
            kind=KIND, object_id=order.pk, version_hash=purchase_order_version(order)
        ):
            raise InvalidState(
                f"Purchase order {order.number} changed after it was approved.",
                code="approval_outdated",
            )
        vendor_payable_get(order.vendor_id)
        order.place(by=actor)
        order.save()
        if send:
            from payables.tasks import purchase_order_send_task

            order_pk = str(order.pk)
            transaction.on_commit(lambda: purchase_order_send_task.delay(order_id=order_pk))
    return order


def purchase_order_cancel(*, order_id: int, actor: Any, reason: str) -> PurchaseOrder:
    require(actor, "payables.change_purchaseorder", "cancel purchase orders")
    if not reason.strip():
        raise PayablesError("Say why the order is cancelled.", code="invalid")
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status == S.ORDERED and order.receipts.exists():
            raise InvalidState(
                f"Purchase order {order.number} has receipts: close it instead.",
                code="invalid_state",
            )
        if order.status not in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.ORDERED):
            _refuse(order, "cancelled")
        order.cancel(reason=reason.strip()[:300])
        order.save()
    return order


def purchase_order_close(*, order_id: int, actor: Any) -> PurchaseOrder:
    require(actor, "payables.order_purchaseorder", "close purchase orders")
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status not in (S.ORDERED, S.RECEIVED):
            _refuse(order, "closed")
        order.close()
        order.save()
    return order


@dataclass(frozen=True)
class ReceiptLineInput:
    order_line_id: int
    quantity: Decimal


def receipt_create(
    *,
    order_id: int,
    lines: Sequence[ReceiptLineInput],
    actor: Any,
    received_on: date | None = None,
    note: str = "",
) -> Receipt:
    """Record goods or services received against an ordered order's lines, in part or in
    full; the order is received when every line is."""
    require(actor, "payables.add_receipt", "record receipts")
    if not lines:
        raise PayablesError("A receipt needs at least one line.", code="no_lines")
    with transaction.atomic():
        order = _order_for_update(order_id)
        if order.status != S.ORDERED:
            _refuse(order, "received against")
        order_lines = {line.pk: line for line in order.lines.select_for_update()}
        receipt = Receipt.objects.create(
            order=order,
            received_on=received_on or timezone.localdate(),
            note=note[:500],
            created_by=actor,
        )
        for item in lines:
            line = order_lines.get(item.order_line_id)
            if line is None:
                raise PayablesError(
                    f"Line {item.order_line_id} is not a line of {order.number}.", code="invalid"
                )
            if item.quantity <= 0 or item.quantity > line.quantity_outstanding:
                raise PayablesError(
                    f"Line {line.position}: {item.quantity} received, but "
                    f"{line.quantity_outstanding} is outstanding.",
                    code="over_receipt",
                )
            line.quantity_received += item.quantity
            line.save(update_fields=["quantity_received"])
            ReceiptLine.objects.create(receipt=receipt, order_line=line, quantity=item.quantity)
        if all(line.quantity_outstanding == 0 for line in order_lines.values()):
            order.mark_received()
            order.save()
    return receipt
