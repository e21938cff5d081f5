"""Vendor bills: duplicates, three-way match tolerances, approval posting Dr expense / Cr AP,
maker-checker, void."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.exceptions import Conflict
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry, JournalLine
from core.ledger.selectors import account_balances, account_get_by_role
from payables.enums import BillStatus, MatchStatus
from payables.exceptions import ApprovalRefused, DuplicateBill
from payables.models import Bill, MatchTolerance
from payables.selectors import ap_subledger_check
from payables.services.bills import (
    BillLineInput,
    bill_approve,
    bill_create,
    bill_reject,
    bill_void,
)
from payables.services.orders import (
    LineInput,
    ReceiptLineInput,
    purchase_order_create,
    purchase_order_place,
    purchase_order_submit,
    receipt_create,
)

pytestmark = pytest.mark.django_db

BILL_DATE = date(2026, 11, 2)


def _bill(ap_clerk, vendor, number="INV-1", amount="250.00", **kw):
    return bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number=number,
        currency="USD",
        bill_date=kw.pop("bill_date", BILL_DATE),
        lines=kw.pop(
            "lines",
            [BillLineInput(description="Paper", quantity=Decimal(1), unit_price=Decimal(amount))],
        ),
        **kw,
    )


def _ap_balance() -> Decimal:
    balances = account_balances(account=account_get_by_role(AccountRole.ACCOUNTS_PAYABLE))
    return -balances["USD"].balance if "USD" in balances else Decimal(0)


@pytest.fixture
def received_order(ap_clerk, vendor):
    """An order of 10 units at 20.00, placed, 8 received."""
    order = purchase_order_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        currency="USD",
        lines=[LineInput(description="Toner", quantity=Decimal(10), unit_price=Decimal("20.00"))],
    )
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    purchase_order_place(order_id=order.pk, actor=ap_clerk, send=False)
    line = order.lines.get()
    receipt_create(order_id=order.pk, actor=ap_clerk, lines=[ReceiptLineInput(line.pk, Decimal(8))])
    return order


def test_bill_terms_due_date_and_discount(ap_clerk, make_vendor):
    # given a vendor on 2/10 net 30
    vendor = make_vendor("Terms Co", discount_percent=Decimal(2), discount_days=10)
    # when a bill of 1,000.00 dated 2 November is captured
    bill = _bill(ap_clerk, vendor, amount="1000.00")
    # then it is due 2 December, with 20.00 off until 12 November, and waits for approval
    assert bill.due_date == BILL_DATE + timedelta(days=30)
    assert bill.discount_date == BILL_DATE + timedelta(days=10)
    assert bill.discount_amount.amount == Decimal("20.00")
    assert bill.status == BillStatus.PENDING_APPROVAL


def test_duplicate_number_refused_and_nothing_written(ap_clerk, vendor):
    _bill(ap_clerk, vendor, number="INV-7")
    with pytest.raises(DuplicateBill) as refused:
        _bill(ap_clerk, vendor, number="inv-7", amount="99.00")
    assert refused.value.code == "duplicate_bill"
    assert Bill.objects.count() == 1


def test_same_amount_and_date_is_a_suspected_duplicate(ap_clerk, vendor):
    _bill(ap_clerk, vendor, number="A-1")
    with pytest.raises(DuplicateBill) as refused:
        _bill(ap_clerk, vendor, number="A-2")
    assert refused.value.code == "suspected_duplicate"
    assert Bill.objects.count() == 1
    # with a reason it goes through, and the reason is kept
    bill = _bill(ap_clerk, vendor, number="A-2", duplicate_override_reason="Two deliveries")
    assert bill.duplicate_override_reason == "Two deliveries"


def test_approval_posts_expense_and_ap_and_subledger_agrees(ap_clerk, vendor, make_user):
    bill = _bill(ap_clerk, vendor, amount="250.00")
    assert not JournalEntry.objects.exists()
    bill = bill_approve(bill_id=bill.pk, actor=make_user("approver"), comment="ok")
    assert bill.status == BillStatus.APPROVED
    lines = JournalLine.objects.filter(entry=bill.journal_entry)
    expense = lines.get(account=account_get_by_role(AccountRole.EXPENSES))
    payable = lines.get(account=account_get_by_role(AccountRole.ACCOUNTS_PAYABLE))
    assert (expense.debit, payable.credit) == (Decimal("250.00"), Decimal("250.00"))
    assert _ap_balance() == Decimal("250.00")
    assert ap_subledger_check() == []


def test_whoever_captured_the_bill_cannot_approve_it(make_user, make_vendor):
    # given a finance admin who captured a bill (A2)
    admin = make_user("finance_admin")
    vendor = make_vendor("Self Co")
    bill = _bill(admin, vendor)
    with pytest.raises(ApprovalRefused) as refused:
        bill_approve(bill_id=bill.pk, actor=admin)
    assert refused.value.code == "requester_cannot_approve"
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.PENDING_APPROVAL
    assert not JournalEntry.objects.exists()


@pytest.mark.parametrize(
    ("price", "quantity", "price_pct", "qty_pct", "expected"),
    [
        ("20.00", "8", "0.02", "0", MatchStatus.MATCHED),  # exact
        ("20.40", "8", "0.02", "0", MatchStatus.MATCHED),  # +2 % price: at the tolerance
        ("20.41", "8", "0.02", "0", MatchStatus.EXCEPTION),  # just above it
        ("19.00", "8", "0.02", "0", MatchStatus.MATCHED),  # cheaper is fine
        ("20.00", "9", "0.02", "0", MatchStatus.EXCEPTION),  # billed more than received
        ("20.00", "9", "0.02", "0.125", MatchStatus.MATCHED),  # within +12.5 % quantity
        ("20.00", "10", "0.02", "0.125", MatchStatus.EXCEPTION),  # beyond it
    ],
)
def test_three_way_match_tolerances(
    price, quantity, price_pct, qty_pct, expected, ap_clerk, vendor, received_order
):
    MatchTolerance.objects.filter(pk=1).update(
        price_percent=Decimal(price_pct), quantity_percent=Decimal(qty_pct)
    )
    line = received_order.lines.get()
    bill = _bill(
        ap_clerk,
        vendor,
        purchase_order_id=received_order.pk,
        lines=[
            BillLineInput(
                description="Toner",
                quantity=Decimal(quantity),
                unit_price=Decimal(price),
                order_line_id=line.pk,
            )
        ],
    )
    assert bill.match_status == expected
    assert bill.match_result["ok"] is (expected == MatchStatus.MATCHED)


def test_match_exception_needs_an_explicit_decision(ap_clerk, vendor, received_order, make_user):
    line = received_order.lines.get()
    bill = _bill(
        ap_clerk,
        vendor,
        purchase_order_id=received_order.pk,
        lines=[BillLineInput("Toner", Decimal(10), Decimal("20.00"), order_line_id=line.pk)],
    )
    assert bill.match_status == MatchStatus.EXCEPTION
    approver = make_user("approver")
    with pytest.raises(Conflict) as refused:
        bill_approve(bill_id=bill.pk, actor=approver)
    assert refused.value.code == "match_exception"
    bill.refresh_from_db()
    assert bill.status == BillStatus.PENDING_APPROVAL
    assert not JournalEntry.objects.exists()
    bill = bill_approve(
        bill_id=bill.pk, actor=approver, comment="2 more arrive Monday", accept_match_exception=True
    )
    assert (bill.status, bill.match_status) == (BillStatus.APPROVED, MatchStatus.OVERRIDDEN)


def test_reject_sends_back_and_void_reverses(ap_clerk, vendor, make_user):
    bill = _bill(ap_clerk, vendor)
    bill = bill_reject(bill_id=bill.pk, actor=make_user("approver"), comment="Wrong cost centre")
    assert bill.status == BillStatus.DRAFT
    other = _bill(ap_clerk, vendor, number="INV-2", amount="75.00")
    bill_approve(bill_id=other.pk, actor=make_user("approver"))
    assert _ap_balance() == Decimal("75.00")
    bill_void(bill_id=other.pk, actor=ap_clerk, reason="Sent in error")
    assert _ap_balance() == Decimal(0)
    assert ap_subledger_check() == []


def test_bills_only_for_active_vendors(ap_clerk, make_vendor):
    pending = make_vendor("Pending Co", active=False)
    with pytest.raises(Conflict) as refused:
        _bill(ap_clerk, pending)
    assert refused.value.code == "vendor_not_active"
    assert not Bill.objects.exists()
