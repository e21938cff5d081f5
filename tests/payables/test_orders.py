"""Purchase orders: approval levels by amount, maker-checker, one slot per person, L5."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from core.exceptions import PermissionDeniedError
from payables.enums import PurchaseOrderStatus as S
from payables.exceptions import ApprovalRefused, InvalidState, PayablesError, VendorNotPayable
from payables.models import Approval, PurchaseOrder
from payables.services.orders import (
    LineInput,
    ReceiptLineInput,
    purchase_order_approve,
    purchase_order_create,
    purchase_order_place,
    purchase_order_reject,
    purchase_order_submit,
    purchase_order_update,
    receipt_create,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "needed"),
    [
        ("999.99", []),
        ("1000.00", ["approver"]),
        ("9999.99", ["approver"]),
        ("10000.00", ["controller", "approver"]),
        ("99999.99", ["controller", "approver"]),
        ("100000.00", ["finance_admin", "controller", "approver"]),
    ],
)
def test_approval_matrix_by_amount(amount, needed, make_order, make_user, ap_clerk):
    # given an order of that amount, submitted
    order = make_order(amount)
    order = purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    # then below 1,000 it is approved at once, else it waits for one person per level
    if not needed:
        assert order.status == S.APPROVED
        return
    assert order.status == S.PENDING_APPROVAL
    people = {role: make_user(role) for role in ("approver", "controller", "finance_admin")}
    # when each needed role approves in turn (lowest first)
    for i, role in enumerate(reversed(needed)):
        order = purchase_order_approve(order_id=order.pk, actor=people[role], comment=role)
        expected = S.APPROVED if i == len(needed) - 1 else S.PENDING_APPROVAL
        assert order.status == expected
    slots = sorted(Approval.objects.filter(object_id=order.pk).values_list("role", flat=True))
    assert slots == sorted(needed)


def test_requester_cannot_approve_own_order_even_as_superuser(make_order, make_user):
    # given a superuser approver who requested the order
    boss = make_user("finance_admin")
    boss.is_superuser = True
    boss.save()
    order = make_order("5000.00", requester=boss)
    purchase_order_submit(order_id=order.pk, actor=boss)
    # when they approve it
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=boss)
    # then 403 requester_cannot_approve and nothing changed
    assert refused.value.code == "requester_cannot_approve"
    assert refused.value.status_code == 403
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert not Approval.objects.exists()


def test_same_person_never_counts_twice(make_order, make_user, ap_clerk):
    # given an order of 20,000 needing an approver and a controller
    order = make_order("20000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    controller = make_user("controller")
    purchase_order_approve(order_id=order.pk, actor=controller)
    # when the same controller approves again
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=controller)
    # then refused, one approval stays, the order still waits
    assert refused.value.code == "already_counted"
    assert Approval.objects.filter(object_id=order.pk).count() == 1
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL


def test_role_without_the_right_cannot_approve(make_order, make_user, ap_clerk):
    order = make_order("2000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=make_user("ap_clerk"))
    assert refused.value.code == "approval_role_required"
    assert not Approval.objects.exists()


def test_approver_cannot_fill_a_controller_slot(make_order, make_user, ap_clerk):
    # given 20,000: approver and controller needed; one approver has approved
    order = make_order("20000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    purchase_order_approve(order_id=order.pk, actor=make_user("approver"))
    # when a second approver tries
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=make_user("approver"))
    # then the controller slot is not theirs to fill
    assert refused.value.code == "approval_role_required"
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL


def test_reject_with_comment_is_recorded(make_order, make_user, ap_clerk):
    order = make_order("3000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    approver = make_user("approver")
    order = purchase_order_reject(order_id=order.pk, actor=approver, comment="Too expensive")
    assert order.status == S.REJECTED
    decision = Approval.objects.get(object_id=order.pk)
    assert (decision.decision, decision.comment, decision.user) == (
        "rejected",
        "Too expensive",
        approver,
    )


def test_edit_after_approval_voids_it(make_order, make_user, ap_clerk):
    # given an approved order (C5)
    order = make_order("3000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    purchase_order_approve(order_id=order.pk, actor=make_user("approver"))
    # when the requester edits a line
    order = purchase_order_update(
        order_id=order.pk,
        actor=ap_clerk,
        lines=[LineInput(description="More", quantity=Decimal(2), unit_price=Decimal("3000"))],
    )
    # then the order is a draft again and the approval is void (kept for the record)
    assert order.status == S.DRAFT
    approval = Approval.objects.get(object_id=order.pk)
    assert approval.voided_at is not None
    assert order.total.amount == Decimal("6000.00")


def test_orders_only_for_active_vendors(make_vendor, ap_clerk):
    pending = make_vendor("Initech", active=False)
    with pytest.raises(VendorNotPayable):
        purchase_order_create(
            actor=ap_clerk,
            vendor_id=pending.pk,
            currency="USD",
            lines=[LineInput("x", Decimal(1), Decimal(1))],
        )
    assert not PurchaseOrder.objects.exists()


def test_place_and_receive_in_parts(
    vendor, ap_clerk, django_capture_on_commit_callbacks, mailoutbox
):
    # given an order of 4 units, approved (under the first level) and placed
    order = purchase_order_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        currency="USD",
        lines=[LineInput(description="Chairs", quantity=Decimal(4), unit_price=Decimal("90.00"))],
    )
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    with django_capture_on_commit_callbacks(execute=True):
        order = purchase_order_place(order_id=order.pk, actor=ap_clerk)
    assert order.status == S.ORDERED
    # then the vendor got the PDF by email
    assert [m.to for m in mailoutbox] == [[vendor.email]]
    assert mailoutbox[0].attachments[0][0] == f"{order.number}.pdf"
    assert mailoutbox[0].attachments[0][1].startswith(b"%PDF")
    # when 1 then 3 are received (4 more would be too many)
    line = order.lines.get()
    receipt_create(order_id=order.pk, actor=ap_clerk, lines=[ReceiptLineInput(line.pk, Decimal(1))])
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.ORDERED
    with pytest.raises(PayablesError) as refused:
        receipt_create(
            order_id=order.pk, actor=ap_clerk, lines=[ReceiptLineInput(line.pk, Decimal(4))]
        )
    assert refused.value.code == "over_receipt"
    receipt_create(order_id=order.pk, actor=ap_clerk, lines=[ReceiptLineInput(line.pk, Decimal(3))])
    # then the order is received
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.RECEIVED


def test_clerk_cannot_approve_without_permission(make_order, ap_clerk, make_user):
    order = make_order("100.00")
    with pytest.raises(PermissionDeniedError):
        purchase_order_place(order_id=order.pk, actor=make_user("auditor"))
    with pytest.raises(InvalidState):
        purchase_order_approve(order_id=order.pk, actor=make_user("approver"))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L5_two_approvers_approve_one_order_needing_one(make_order, make_user, ap_clerk):
    # given an order needing one approval and two approvers
    order = make_order("5000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    approvers = [make_user("approver"), make_user("approver")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user):
        try:
            barrier.wait()
            purchase_order_approve(order_id=order.pk, actor=user)
            outcomes.append("ok")
        except InvalidState as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    # when both approve at once
    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then one approval counts, the other is told the order is no longer pending
    assert sorted(outcomes) == ["invalid_state", "ok"]
    assert Approval.objects.filter(object_id=order.pk).count() == 1
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.APPROVED


def test_decision_on_a_version_no_longer_current_is_refused(make_order, make_user, ap_clerk):
    # given an order pending approval, and the hash of what an approver was shown
    from payables.services.orders import purchase_order_version

    order = make_order("3000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    seen = purchase_order_version(order)
    # when the requester edits and resubmits before the approver decides
    purchase_order_update(
        order_id=order.pk,
        actor=ap_clerk,
        lines=[LineInput(description="Other", quantity=Decimal(1), unit_price=Decimal("3500"))],
    )
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    # then the decision on the old version is refused and nothing is recorded
    with pytest.raises(InvalidState) as refused:
        purchase_order_approve(
            order_id=order.pk, actor=make_user("approver"), expected_version=seen
        )
    assert refused.value.code == "approval_outdated"
    assert not Approval.objects.filter(object_id=order.pk, voided_at__isnull=True).exists()
