"""Vendor bills: capture with duplicate detection, three-way match, approval (posting
Dr expense or inventory / Cr AP), rejection and void.

A bill never approves itself: whoever captured it (a person or an integration) is its maker,
and the approval levels for bills always ask for someone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from djmoney.money import Money

from core.dates import DateKind, add_days, date_check
from core.exceptions import Conflict, NotFound
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_get_by_role
from core.ledger.services import journal_post, journal_reverse
from core.money import check_limit, round_money
from payables.enums import BillStatus as S
from payables.enums import DocumentKind, MatchStatus, PurchaseOrderStatus
from payables.exceptions import DuplicateBill, InvalidState, PayablesError
from payables.models import Bill, BillLine, MatchTolerance, PurchaseOrder, PurchaseOrderLine
from payables.postings import expense_recognition_lines
from payables.services.approvals import (
    approval_record,
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
from payables.services.orders import vendor_payable_get

KIND = DocumentKind.BILL
ZERO = Decimal(0)


@dataclass(frozen=True)
class BillLineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    order_line_id: int | None = None
    account_id: int | None = None


def bill_terms(
    *, bill_date: date, total: Decimal, currency: str, terms_days: int, pct: Decimal, days: int
) -> tuple[date, date | None, Decimal]:
    """Due date, discount deadline and discount amount from the vendor's terms
    (``2/10 net 30``: 2 % off when paid within 10 days, else due in 30)."""
    due = add_days(bill_date, terms_days, field="bill_date")
    if not pct or not days:
        return due, None, ZERO
    discount_date = add_days(bill_date, days, field="bill_date")
    return due, discount_date, round_money(total * pct / 100, currency)


def bill_version(bill: Bill) -> str:
    return content_hash(
        {
            "vendor": bill.vendor_id,
            "number": bill.number,
            "currency": bill.currency,
            "total": str(bill.total.amount),
            "due": str(bill.due_date),
            "lines": [
                [line.description, str(line.quantity), str(line.unit_price.amount)]
                for line in bill.lines.order_by("position")
            ],
        }
    )


def _duplicate_check(
    *, vendor_id: int, number: str, total: Decimal, bill_date: date, override_reason: str
) -> None:
    live = Bill.objects.filter(vendor_id=vendor_id).exclude(status=S.VOID)
    same_number = live.filter(number__iexact=number).first()
    if same_number is not None:
        raise DuplicateBill(
            f"This vendor's bill {number} is already recorded (bill {same_number.pk}).",
            code="duplicate_bill",
            existing=same_number.pk,
        )
    same_amount = live.filter(total=total, bill_date=bill_date).first()
    if same_amount is not None and not override_reason.strip():
        raise DuplicateBill(
            f"A bill from this vendor for the same amount and date exists (bill "
            f"{same_amount.pk}, number {same_amount.number}). If it is not a duplicate, say "
            "why in duplicate_override_reason.",
            code="suspected_duplicate",
            existing=same_amount.pk,
        )


def bill_create(
    *,
    vendor_id: int,
    number: str,
    currency: str,
    bill_date: date,
    lines: Sequence[BillLineInput],
    actor: Any,
    purchase_order_id: int | None = None,
    due_date: date | None = None,
    description: str = "",
    duplicate_override_reason: str = "",
    submit: bool = True,
) -> Bill:
    """Capture a bill (and by default submit it for approval, after the three-way match).
    Duplicates are refused: the same vendor and number, or the same amount and date unless
    a reason is given."""
    require(actor, "payables.add_bill", "capture bills")
    number = number.strip()
    if not number:
        raise PayablesError("A bill needs the vendor's invoice number.", code="invalid")
    if not lines:
        raise PayablesError("A bill needs at least one line.", code="no_lines", field="lines")
    lines_limit_check(lines, "A bill")
    date_check(bill_date, field="bill_date", kind=DateKind.DOCUMENT)
    if due_date is not None:
        date_check(due_date, field="due_date", kind=DateKind.DOCUMENT)
        if due_date < bill_date:
            raise PayablesError(
                "The due date is before the bill date.", code="invalid_date", field="due_date"
            )
    vendor = vendor_payable_get(vendor_id)
    order: PurchaseOrder | None = None
    order_lines: dict[int, PurchaseOrderLine] = {}
    if purchase_order_id is not None:
        order = PurchaseOrder.objects.filter(pk=purchase_order_id, vendor=vendor).first()
        if order is None:
            raise PayablesError(
                f"Purchase order {purchase_order_id} is not an order of {vendor}.",
                code="invalid",
            )
        if order.status not in (
            PurchaseOrderStatus.ORDERED,
            PurchaseOrderStatus.RECEIVED,
            PurchaseOrderStatus.CLOSED,
        ):
            raise InvalidState(
                f"Purchase order {order.number} is {order.status}: bills match placed orders.",
                code="invalid_state",
            )
        if order.currency != currency:
            raise PayablesError(
                f"The bill is in {currency}, the order in {order.currency}.",
                code="currency_mismatch",
            )
        order_lines = {line.pk: line for line in order.lines.all()}
    objects = []
    for position, item in enumerate(lines, start=1):
        amount = line_amount_check(
            quantity=item.quantity, unit_price=item.unit_price, currency=currency, position=position
        )
        price = item.unit_price
        if item.order_line_id is not None and item.order_line_id not in order_lines:
            raise PayablesError(
                f"Line {position}: order line {item.order_line_id} is not on the bill's order.",
                code="invalid",
            )
        account = None
        if item.account_id is not None:
            account = Account.objects.filter(pk=item.account_id, is_active=True).first()
            if account is None or account.type not in ("expense", "asset"):
                raise PayablesError(
                    f"Line {position}: account {item.account_id} is not an active expense or "
                    "asset account.",
                    code="invalid",
                )
        objects.append(
            BillLine(
                position=position,
                description=item.description.strip()[:300],
                quantity=item.quantity,
                currency=currency,
                unit_price=Money(price, currency),
                amount=Money(amount, currency),
                order_line_id=item.order_line_id,
                account=account,
            )
        )
    total = sum((o.amount.amount for o in objects), ZERO)
    if total <= 0:
        raise PayablesError("A bill's total must be positive.", code="invalid", field="lines")
    check_limit(total, field="lines")
    due, discount_date, discount = bill_terms(
        bill_date=bill_date,
        total=total,
        currency=currency,
        terms_days=vendor.payment_terms_days,
        pct=vendor.discount_percent,
        days=vendor.discount_days,
    )
    with transaction.atomic():
        # One capture per vendor at a time, so two identical submissions cannot both pass
        # the duplicate check.
        type(vendor).objects.select_for_update().get(pk=vendor.pk)
        _duplicate_check(
            vendor_id=vendor.pk,
            number=number,
            total=total,
            bill_date=bill_date,
            override_reason=duplicate_override_reason,
        )
        bill = Bill.objects.create(
            vendor=vendor,
            number=number[:60],
            currency=currency,
            purchase_order=order,
            bill_date=bill_date,
            due_date=due_date or due,
            discount_date=discount_date,
            discount_amount=Money(discount, currency),
            description=description[:500],
            total=Money(total, currency),
            duplicate_override_reason=duplicate_override_reason.strip()[:300],
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        for obj in objects:
            obj.bill = bill
        BillLine.objects.bulk_create(objects)
        if submit:
            _submit(bill)
    return bill


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def three_way_match(bill: Bill) -> tuple[str, dict[str, Any]]:
    """Compare each line with its order line (price) and what was received (quantity, this
    bill and earlier live bills together) within the configured tolerances."""
    if bill.purchase_order_id is None:
        return MatchStatus.NOT_APPLICABLE, {}
    tolerance = MatchTolerance.objects.get_or_create(pk=1)[0]
    lines = list(bill.lines.select_related("order_line").order_by("position"))
    billed_before = dict(
        BillLine.objects.filter(order_line_id__in=[line.order_line_id for line in lines])
        .exclude(bill=bill)
        .exclude(bill__status=S.VOID)
        .values("order_line_id")
        .annotate(q=Sum("quantity"))
        .values_list("order_line_id", "q")
    )
    results = []
    ok = True
    for line in lines:
        order_line = line.order_line
        if order_line is None:
            results.append(
                {"position": line.position, "ok": False, "reason": "not on the purchase order"}
            )
            ok = False
            continue
        billed = billed_before.get(order_line.pk, ZERO) + line.quantity
        received = order_line.quantity_received
        po_price = order_line.unit_price.amount
        price = line.unit_price.amount
        variance = (price - po_price) / po_price if po_price else (Decimal(1) if price else ZERO)
        price_ok = price <= po_price * (1 + tolerance.price_percent)
        quantity_ok = billed <= received * (1 + tolerance.quantity_percent)
        reasons = []
        if not price_ok:
            reasons.append(f"unit price {price} vs {po_price} ordered ({variance:.2%})")
        if not quantity_ok:
            reasons.append(f"billed {_qty(billed)} vs {_qty(received)} received")
        results.append(
            {
                "position": line.position,
                "order_line": order_line.pk,
                "ordered": str(order_line.quantity),
                "received": str(received),
                "billed": str(billed),
                "order_unit_price": str(po_price),
                "unit_price": str(price),
                "price_variance": f"{variance:.4f}",
                "price_ok": price_ok,
                "quantity_ok": quantity_ok,
                "ok": price_ok and quantity_ok,
                "reason": "; ".join(reasons),
            }
        )
        ok = ok and price_ok and quantity_ok
    result = {
        "lines": results,
        "tolerance": {
            "price_percent": str(tolerance.price_percent),
            "quantity_percent": str(tolerance.quantity_percent),
        },
        "ok": ok,
    }
    return (MatchStatus.MATCHED if ok else MatchStatus.EXCEPTION), result


def _submit(bill: Bill) -> None:
    bill.match_status, bill.match_result = three_way_match(bill)
    bill.total_functional = functional_amount(bill.total.amount, bill.currency, bill.bill_date)
    approvals_void(kind=KIND, object_id=bill.pk, reason="resubmitted")
    bill.submit()
    bill.save()


def _bill_for_update(bill_id: int) -> Bill:
    try:
        return Bill.objects.select_for_update().get(pk=bill_id)
    except Bill.DoesNotExist:
        raise NotFound(f"Bill {bill_id} does not exist.") from None


def _refuse(bill: Bill, action: str) -> None:
    raise InvalidState(
        f"Bill {bill.number} is {bill.get_status_display().lower()}: it cannot be {action}.",
        code="invalid_state",
    )


def bill_submit(*, bill_id: int, actor: Any) -> Bill:
    require(actor, "payables.change_bill", "submit bills")
    with transaction.atomic():
        bill = _bill_for_update(bill_id)
        if bill.status != S.DRAFT:
            _refuse(bill, "submitted")
        _submit(bill)
    return bill


def _debit_account(line: BillLine, accounts: dict[str, Account]) -> Account:
    if line.account is not None:
        return line.account
    if line.order_line is not None and line.order_line.is_inventory:
        return accounts[AccountRole.INVENTORY]
    return accounts[AccountRole.EXPENSES]


def _post_bill(bill: Bill, actor: Any) -> None:
    accounts: dict[str, Account] = {
        role: account_get_by_role(role)
        for role in (AccountRole.EXPENSES, AccountRole.INVENTORY, AccountRole.ACCOUNTS_PAYABLE)
    }
    lines = list(bill.lines.select_related("account", "order_line").order_by("position"))
    entry = journal_post(
        lines=expense_recognition_lines(
            currency=bill.currency,
            debits=[(_debit_account(line, accounts), line.amount.amount) for line in lines],
            total_functional=bill.total_functional,
            payable=accounts[AccountRole.ACCOUNTS_PAYABLE],
        ),
        entry_date=bill.bill_date,
        description=f"Bill {bill.number} from {bill.vendor.name}",
        source=f"payables.bill:{bill.pk}",
        idempotency_key=f"payables.bill:{bill.pk}:approve",
        actor=actor,
    )
    bill.journal_entry = entry


def bill_approve(
    *,
    bill_id: int,
    actor: Any,
    comment: str = "",
    accept_match_exception: bool = False,
    expected_version: str | None = None,
) -> Bill:
    """One approval. A bill whose match found an exception needs an approver to accept it
    explicitly (``accept_match_exception``, recorded with the comment). When every level
    has its person the bill is approved and posted: Dr expense or inventory / Cr AP."""
    with transaction.atomic():
        bill = _bill_for_update(bill_id)
        if bill.status != S.PENDING_APPROVAL:
            _refuse(bill, "approved")
        _, outstanding = approval_record(
            kind=KIND,
            object_id=bill.pk,
            maker_ids={bill.created_by_id} if bill.created_by_id else set(),
            required=required_roles(KIND, bill.total_functional),
            version_hash=bill_version(bill),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        if bill.match_status == MatchStatus.EXCEPTION:
            if not accept_match_exception:
                raise Conflict(
                    f"Bill {bill.number} does not match its order and receipt within the "
                    "tolerances: an approver must accept the difference "
                    "(accept_match_exception) or reject the bill.",
                    code="match_exception",
                )
            bill.match_status = MatchStatus.OVERRIDDEN
        if not outstanding:
            bill.approve()
            _post_bill(bill, actor)
        bill.save()
    return bill


def bill_reject(
    *, bill_id: int, actor: Any, comment: str, expected_version: str | None = None
) -> Bill:
    """Send the bill back to its maker (draft) with the reason."""
    if not comment.strip():
        raise PayablesError("Say why the bill is rejected.", code="comment_required")
    with transaction.atomic():
        bill = _bill_for_update(bill_id)
        if bill.status != S.PENDING_APPROVAL:
            _refuse(bill, "rejected")
        rejection_record(
            kind=KIND,
            object_id=bill.pk,
            maker_ids={bill.created_by_id} if bill.created_by_id else set(),
            version_hash=bill_version(bill),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        bill.reopen()
        bill.save()
    return bill


def bill_void(*, bill_id: int, actor: Any, reason: str) -> Bill:
    """Void a bill nothing was paid on; an approved bill's posting is reversed."""
    require(actor, "payables.change_bill", "void bills")
    if not reason.strip():
        raise PayablesError("Say why the bill is voided.", code="reason_required")
    with transaction.atomic():
        bill = _bill_for_update(bill_id)
        if bill.status not in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED) or bill.amount_paid:
            _refuse(bill, "voided")
        if bill.journal_entry_id:
            journal_reverse(
                entry_id=bill.journal_entry_id,
                actor=actor,
                reason=f"Bill {bill.number} voided: {reason}",
                authorized_by_caller=True,
            )
        bill.void(reason=reason.strip()[:300])
        bill.save()
    return bill
