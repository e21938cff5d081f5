"""Delegation never forges the second person (issue 15, hole 1): who may be a delegate, who
may create a delegation, and one human per approval slot counting delegations both ways, on
every kind of document that is approved through the approval services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.exceptions import PermissionDeniedError
from core.roles import Role
from payables.enums import BillStatus, DocumentKind, ExpenseReportStatus
from payables.enums import PurchaseOrderStatus as S
from payables.exceptions import ApprovalRefused, PayablesError
from payables.models import (
    Approval,
    ApprovalDelegation,
    Bill,
    ExpenseCategory,
    ExpenseReport,
    PurchaseOrder,
)
from payables.services.approvals import (
    approval_delegation_create,
    approval_delegation_delete,
    can_decide,
)
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.expenses import (
    ExpenseLineInput,
    expense_report_approve,
    expense_report_create,
    expense_report_submit,
)
from payables.services.orders import (
    purchase_order_approve,
    purchase_order_reject,
    purchase_order_submit,
)
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db


def _delegate_legacy(delegator: User, delegate: User) -> ApprovalDelegation:
    """A delegation written around the service, as the admin accepted before the fix."""
    today = timezone.localdate()
    return ApprovalDelegation.objects.create(
        delegator=delegator, delegate=delegate, starts_on=today, ends_on=today
    )


def _submitted(make_order, ap_clerk, amount: str, requester=None) -> PurchaseOrder:
    order = make_order(amount, requester=requester)
    return purchase_order_submit(order_id=order.pk, actor=requester or ap_clerk)


def _decisions(order: PurchaseOrder) -> list[tuple[str, str, str | None, str]]:
    return [
        (a.user.username, a.role, a.on_behalf_of.username if a.on_behalf_of else None, a.decision)
        for a in Approval.objects.filter(kind=DocumentKind.PURCHASE_ORDER, object_id=order.pk)
    ]


def _without_own_order_approval(role: str) -> None:
    """A deployment where ``role`` approves orders only as a stand-in: its members hold the
    rank but not the permission, so only a delegation lets them decide."""
    Group.objects.get(name=role).permissions.remove(
        Permission.objects.get(codename="approve_purchaseorder")
    )


# --- The probe's two findings -------------------------------------------------------------


def test_auditor_delegate_cannot_fill_a_second_slot_for_a_controller_who_approved(
    make_order, make_user, ap_clerk
) -> None:
    # given a 20,000 order (controller + approver) the controller approved, and a delegation
    # controller -> auditor written before the fix
    controller = make_user(Role.CONTROLLER, username="carol")
    auditor = make_user(Role.AUDITOR, username="audrey")
    order = _submitted(make_order, ap_clerk, "20000.00")
    purchase_order_approve(order_id=order.pk, actor=controller)
    _delegate_legacy(controller, auditor)

    # when the auditor approves as the controller's delegate
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=auditor)

    # then it is refused and the order still waits for its second person
    assert refused.value.code == "approval_role_required"
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert _decisions(order) == [("carol", "controller", None, "approved")]


def test_integration_delegate_cannot_approve_its_delegators_own_order(
    make_order, make_user, integration_client
) -> None:
    # given an approver's own 5,000 order and a delegation approver -> integration user
    approver = make_user(Role.APPROVER, username="amy")
    integration = User.objects.get(username="erp-integration")
    order = _submitted(make_order, None, "5000.00", requester=approver)
    _delegate_legacy(approver, integration)

    # when the integration approves on behalf of the requester
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=integration)

    # then
    assert refused.value.code == "approval_role_required"
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert _decisions(order) == []


def test_integration_in_an_approving_group_still_never_approves(
    make_order, make_user, ap_clerk, integration_client
) -> None:
    # given an integration user somebody also put in the approver group
    integration = User.objects.get(username="erp-integration")
    integration.groups.add(Group.objects.get(name=Role.APPROVER))
    order = _submitted(make_order, ap_clerk, "5000.00")

    # when it approves
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=integration)

    # then
    assert refused.value.code == "approval_role_required"
    assert _decisions(order) == []


# --- A delegation is never used on its delegator's documents or once they counted ----------


def test_delegation_never_approves_the_delegators_own_order(
    make_order, make_user, ap_clerk
) -> None:
    # given controllers who approve orders only as stand-ins, and an approver's own order
    # with the approver away, delegating to a controller
    _without_own_order_approval(Role.CONTROLLER)
    approver = make_user(Role.APPROVER, username="amy")
    stand_in = make_user(Role.CONTROLLER, username="sam")
    order = _submitted(make_order, ap_clerk, "5000.00", requester=approver)
    approval_delegation_create(
        delegator_id=approver.pk,
        delegate_id=stand_in.pk,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        actor=approver,
    )
    assert not can_decide(
        kind=DocumentKind.PURCHASE_ORDER,
        object_id=order.pk,
        maker_ids={approver.pk},
        required=["approver"],
        actor=stand_in,
    )

    # when the stand-in approves, then rejects, the approver's own order
    with pytest.raises(ApprovalRefused) as approving:
        purchase_order_approve(order_id=order.pk, actor=stand_in)
    with pytest.raises(ApprovalRefused) as rejecting:
        purchase_order_reject(order_id=order.pk, actor=stand_in, comment="no")

    # then both are refused and nothing was recorded
    assert (approving.value.code, rejecting.value.code) == (
        "delegator_is_requester",
        "delegator_is_requester",
    )
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert _decisions(order) == []


def test_delegate_cannot_approve_for_a_delegator_who_already_approved(
    make_order, make_user, ap_clerk
) -> None:
    # given finance admins who approve orders only as stand-ins, a 20,000 order the
    # controller approved, and the controller's delegation to a finance admin
    _without_own_order_approval(Role.FINANCE_ADMIN)
    controller = make_user(Role.CONTROLLER, username="carol")
    stand_in = make_user(Role.FINANCE_ADMIN, username="fay")
    order = _submitted(make_order, ap_clerk, "20000.00")
    purchase_order_approve(order_id=order.pk, actor=controller)
    approval_delegation_create(
        delegator_id=controller.pk,
        delegate_id=stand_in.pk,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        actor=controller,
    )

    # when the stand-in fills the approver slot for the controller
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=stand_in)

    # then one person never fills two slots
    assert refused.value.code == "delegator_already_counted"
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert _decisions(order) == [("carol", "controller", None, "approved")]


def test_delegate_decides_for_a_delegator_once_and_neither_counts_again(
    make_order, make_user, ap_clerk
) -> None:
    # given finance admins who approve orders only as stand-ins, a 20,000 order, and the
    # controller fay away, delegating to the finance admin gus
    _without_own_order_approval(Role.FINANCE_ADMIN)
    fay = make_user(Role.CONTROLLER, username="fay")
    gus = make_user(Role.FINANCE_ADMIN, username="gus")
    order = _submitted(make_order, ap_clerk, "20000.00")
    approval_delegation_create(
        delegator_id=fay.pk,
        delegate_id=gus.pk,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        actor=fay,
    )
    # when gus approves for fay
    purchase_order_approve(order_id=order.pk, actor=gus)

    # then fay herself, and gus again, are refused: each has counted once already
    with pytest.raises(ApprovalRefused) as fay_again:
        purchase_order_approve(order_id=order.pk, actor=fay)
    with pytest.raises(ApprovalRefused) as gus_again:
        purchase_order_approve(order_id=order.pk, actor=gus)
    assert (fay_again.value.code, gus_again.value.code) == ("already_counted", "already_counted")
    assert _decisions(order) == [("gus", "controller", "fay", "approved")]
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL


def test_person_who_approved_cannot_approve_again_for_someone_who_delegated_to_them(
    make_order, make_user, ap_clerk
) -> None:
    # given a 150,000 order (finance_admin, controller, approver) the controller cleo
    # approved, then the controller carl away, delegating to cleo
    cleo = make_user(Role.CONTROLLER, username="cleo")
    carl = make_user(Role.CONTROLLER, username="carl")
    order = _submitted(make_order, ap_clerk, "150000.00")
    purchase_order_approve(order_id=order.pk, actor=cleo)
    approval_delegation_create(
        delegator_id=carl.pk,
        delegate_id=cleo.pk,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        actor=carl,
    )

    # when cleo approves again, now as carl's delegate
    with pytest.raises(ApprovalRefused) as refused:
        purchase_order_approve(order_id=order.pk, actor=cleo)

    # then
    assert refused.value.code == "already_counted"
    assert _decisions(order) == [("cleo", "controller", None, "approved")]


def test_one_person_is_acted_for_at_most_once_per_document_in_the_database(
    make_order, make_user, ap_clerk
) -> None:
    # given an order someone approved for the controller
    controller, first, second = (make_user(Role.CONTROLLER) for _ in range(3))
    order = _submitted(make_order, ap_clerk, "20000.00")
    common = {"kind": DocumentKind.PURCHASE_ORDER, "object_id": order.pk, "version_hash": "x"}
    Approval.objects.create(
        **common, decision="approved", role="controller", user=first, on_behalf_of=controller
    )

    # when a second row for the same person, or a row for oneself, is written around the
    # services
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            **common, decision="approved", role="approver", user=second, on_behalf_of=controller
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(**common, decision="rejected", user=second, on_behalf_of=second)

    # then only the first stands
    assert Approval.objects.filter(object_id=order.pk).count() == 1


# --- The same rules on bills and expense reports ----------------------------------------


def test_bill_and_expense_report_refuse_a_delegate_without_the_role(
    make_user, ap_clerk, vendor
) -> None:
    # given a bill and an expense report waiting for an approver, and a delegation
    # approver -> ap clerk written before the fix
    approver = make_user(Role.APPROVER, username="amy")
    clerk = make_user(Role.AP_CLERK, username="cal")
    _delegate_legacy(approver, clerk)
    bill = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="INV-9",
        bill_date=timezone.localdate(),
        currency="USD",
        lines=[BillLineInput(description="Service", quantity=D(1), unit_price=D("90.00"))],
    )
    category = ExpenseCategory.objects.get(name="Travel")
    employee = make_user(Role.AR_CLERK)
    report = expense_report_create(
        actor=employee,
        title="Trip",
        currency="USD",
        lines=[ExpenseLineInput(timezone.localdate(), category.pk, "Train", D("80.00"))],
    )
    expense_report_submit(report_id=report.pk, actor=employee)

    # when the clerk approves both as the approver's delegate
    with pytest.raises(ApprovalRefused) as on_bill:
        bill_approve(bill_id=bill.pk, actor=clerk)
    with pytest.raises(ApprovalRefused) as on_report:
        expense_report_approve(report_id=report.pk, actor=clerk)

    # then both are refused and neither moved
    assert (on_bill.value.code, on_report.value.code) == (
        "approval_role_required",
        "approval_role_required",
    )
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.PENDING_APPROVAL
    assert ExpenseReport.objects.get(pk=report.pk).status == ExpenseReportStatus.SUBMITTED
    assert not Approval.objects.exists()


# --- Creating a delegation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("delegate_role", "active", "code"),
    [
        (Role.INTEGRATION, True, "delegate_not_a_person"),
        (Role.CONTROLLER, False, "delegate_not_a_person"),
        (Role.AUDITOR, True, "delegate_role_insufficient"),
        (Role.APPROVER, True, "delegate_role_insufficient"),
        (Role.AP_CLERK, True, "delegate_role_insufficient"),
    ],
)
def test_delegate_must_be_an_active_person_holding_the_role(
    delegate_role, active, code, make_user
) -> None:
    # given a controller and a would-be delegate
    controller = make_user(Role.CONTROLLER)
    delegate = make_user(delegate_role, mfa=False)
    delegate.is_active = active
    delegate.save()

    # when the controller delegates to them
    with pytest.raises(PayablesError) as refused:
        approval_delegation_create(
            delegator_id=controller.pk,
            delegate_id=delegate.pk,
            starts_on=timezone.localdate(),
            ends_on=timezone.localdate() + timedelta(days=3),
            actor=controller,
        )

    # then
    assert (refused.value.code, refused.value.field) == (code, "delegate")
    assert not ApprovalDelegation.objects.exists()


def test_delegation_created_by_the_delegator_or_a_finance_admin_never_the_delegate(
    make_user,
) -> None:
    # given a controller, two other controllers and a finance admin who is also a delegate
    controller = make_user(Role.CONTROLLER, username="carol")
    peer = make_user(Role.CONTROLLER, username="pete")
    other = make_user(Role.CONTROLLER, username="olga")
    admin_user = make_user(Role.FINANCE_ADMIN, username="fay")
    today = timezone.localdate()
    dates = {"starts_on": today, "ends_on": today + timedelta(days=2)}

    # when a peer delegates the controller's authority, and the finance admin delegates it
    # to herself
    with pytest.raises(ApprovalRefused) as by_peer:
        approval_delegation_create(
            delegator_id=controller.pk, delegate_id=other.pk, actor=peer, **dates
        )
    with pytest.raises(ApprovalRefused) as by_delegate:
        approval_delegation_create(
            delegator_id=controller.pk, delegate_id=admin_user.pk, actor=admin_user, **dates
        )
    # then both are refused
    assert (by_peer.value.code, by_delegate.value.code) == (
        "delegation_not_yours",
        "delegation_by_delegate",
    )
    assert not ApprovalDelegation.objects.exists()

    # when the finance admin delegates the controller's authority to a peer
    delegation = approval_delegation_create(
        delegator_id=controller.pk,
        delegate_id=peer.pk,
        actor=admin_user,
        reason="Holiday",
        **dates,
    )

    # then it is recorded with who made it, in its history too
    assert (delegation.delegator, delegation.delegate, delegation.created_by) == (
        controller,
        peer,
        admin_user,
    )
    assert [(h.history_type, h.history_user) for h in delegation.history.all()] == [
        ("+", admin_user)
    ]


@pytest.mark.parametrize(
    ("start", "end", "code", "field"),
    [(-1, 3, "delegation_backdated", "starts_on"), (3, 1, "delegation_dates_invalid", "ends_on")],
)
def test_delegation_dates_start_today_or_later_and_end_after_the_start(
    start, end, code, field, make_user
) -> None:
    controller, peer = make_user(Role.CONTROLLER), make_user(Role.CONTROLLER)
    today = timezone.localdate()
    with pytest.raises(PayablesError) as refused:
        approval_delegation_create(
            delegator_id=controller.pk,
            delegate_id=peer.pk,
            starts_on=today + timedelta(days=start),
            ends_on=today + timedelta(days=end),
            actor=controller,
        )
    assert (refused.value.code, refused.value.field) == (code, field)
    assert not ApprovalDelegation.objects.exists()


def test_delegation_removed_by_the_delegator_not_the_delegate(make_user) -> None:
    # given a delegation approver -> approver
    approver, stand_in = make_user(Role.APPROVER), make_user(Role.APPROVER)
    delegation = approval_delegation_create(
        delegator_id=approver.pk,
        delegate_id=stand_in.pk,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        actor=approver,
    )
    # when the delegate removes it
    with pytest.raises(PermissionDeniedError) as refused:
        approval_delegation_delete(delegation_id=delegation.pk, actor=stand_in)
    # then it stays
    assert refused.value.code == "permission_denied"
    assert ApprovalDelegation.objects.filter(pk=delegation.pk).exists()
    # when the delegator removes it, then its history says who and when
    approval_delegation_delete(delegation_id=delegation.pk, actor=approver)
    assert not ApprovalDelegation.objects.exists()
    assert [h.history_type for h in ApprovalDelegation.history.order_by("history_id")] == [
        "+",
        "-",
    ]
    assert ApprovalDelegation.history.latest("history_id").history_user == approver


# --- The admin goes through the service ----------------------------------------------------


def test_admin_refuses_an_approver_delegating_to_the_integration_user(
    make_user, integration_client
) -> None:
    # given an approver signed in to the admin with a verified second factor
    approver = make_user(Role.APPROVER)
    client = verified_client(approver)
    integration = User.objects.get(username="erp-integration")
    today = timezone.localdate()

    # when they delegate to the integration user
    response = client.post(
        reverse("admin:payables_approvaldelegation_add"),
        {
            "delegator": str(approver.pk),
            "delegate": str(integration.pk),
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=5)).isoformat(),
            "reason": "Holiday",
        },
    )

    # then the form says why and nothing is stored
    assert response.status_code == 200
    assert "erp-integration is not an active person" in response.content.decode()
    assert not ApprovalDelegation.objects.exists()


def test_admin_delegation_cannot_be_edited_to_another_delegate(make_user) -> None:
    # given a delegation approver -> approver, and a finance admin in the admin
    approver, stand_in = make_user(Role.APPROVER), make_user(Role.APPROVER)
    auditor = make_user(Role.AUDITOR)
    delegation = approval_delegation_create(
        delegator_id=approver.pk,
        delegate_id=stand_in.pk,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        actor=approver,
    )
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    url = reverse("admin:payables_approvaldelegation_change", args=[delegation.pk])

    # when the finance admin posts the change form with the auditor as delegate
    response = client.post(
        url,
        {
            "delegator": str(approver.pk),
            "delegate": str(auditor.pk),
            "starts_on": delegation.starts_on.isoformat(),
            "ends_on": delegation.ends_on.isoformat(),
        },
    )

    # then it is refused and the delegation is unchanged
    assert response.status_code == 403
    assert ApprovalDelegation.objects.get(pk=delegation.pk).delegate == stand_in
