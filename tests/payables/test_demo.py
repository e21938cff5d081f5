"""The payables demo data: seeded through the services once (a second seed adds nothing),
the AP sub-ledger agrees with the ledger, and the printed demo admin can approve the order
waiting for approval (someone else requested it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from core.demo import DEMO_USERNAME, demo_seed
from payables import models
from payables.demo import APPROVER_USERNAME, CLERK_USERNAME
from payables.enums import BillStatus, MatchStatus, PaymentRunStatus, VendorStatus
from payables.enums import PurchaseOrderStatus as PO
from payables.selectors import ap_subledger_check
from payables.services.orders import purchase_order_approve

pytestmark = pytest.mark.django_db


def payables_counts() -> dict[str, int]:
    return {name: getattr(models, name).objects.count() for name in models.__all__} | {
        "users": User.objects.count()
    }


def test_demo_seeded_once_and_ap_matches_the_ledger() -> None:
    # given the demo seeded (every app's seeder, as `make run` does)
    today = timezone.localdate()
    first = demo_seed(today=today, scale=0)
    assert any(r.startswith("Payables demo data: 3 vendors") for r in first.app_reports)
    counts = payables_counts()

    # when it is seeded again
    second = demo_seed(today=today, scale=0)

    # then nothing new was written
    assert "Payables demo data: already there." in second.app_reports
    assert payables_counts() == counts
    # and the AP sub-ledger agrees with the AP control account
    assert ap_subledger_check() == []

    # and the data shows each state the screens and the admin deal with
    vendors = dict(models.Vendor.objects.values_list("name", "status"))
    assert vendors["Northwind Supplies Inc."] == VendorStatus.ACTIVE
    assert vendors["Bluebird Logistics LLC"] == VendorStatus.PENDING_REVIEW
    euro = models.Vendor.objects.get(currency="EUR")
    assert euro.iban
    assert euro.status == VendorStatus.ACTIVE
    northwind = models.Vendor.objects.get(name="Northwind Supplies Inc.")
    assert (northwind.discount_percent, northwind.discount_days) == (2, 10)
    bills = {b.number: b for b in models.Bill.objects.all()}
    assert bills["NW-10231"].match_status == MatchStatus.MATCHED
    assert bills["NW-10231"].status == BillStatus.SCHEDULED  # approved, in the run
    assert bills["NW-10232"].match_status == MatchStatus.EXCEPTION
    assert bills["NW-10232"].status == BillStatus.PENDING_APPROVAL
    # an overdue bill in the run, one due in three days for the next, one in EUR to approve
    assert bills["NW-10198"].status == BillStatus.SCHEDULED
    assert bills["NW-10198"].due_date == today - timedelta(days=15)
    assert bills["NW-10240"].status == BillStatus.APPROVED
    assert bills["NW-10240"].due_date == today + timedelta(days=3)
    assert bills["KM-2291"].status == BillStatus.PENDING_APPROVAL
    assert models.ExpenseReport.objects.get().status == "approved"
    # the run is approved: ready to release (export the payment file)
    run = models.PaymentRun.objects.get()
    assert run.status == PaymentRunStatus.APPROVED
    assert sorted(run.items.values_list("bill__number", flat=True)) == ["NW-10198", "NW-10231"]
    placed = models.PurchaseOrder.objects.get(status=PO.ORDERED)
    received = [line.quantity_outstanding for line in placed.lines.order_by("position")]
    assert received == [0, 2]  # partly received

    # and the demo admin, who requested nothing, can approve the waiting order
    waiting = models.PurchaseOrder.objects.get(status=PO.PENDING_APPROVAL)
    assert waiting.requester.username == CLERK_USERNAME
    admin = User.objects.get(username=DEMO_USERNAME)
    assert purchase_order_approve(order_id=waiting.pk, actor=admin).status == PO.APPROVED
    assert User.objects.get(username=APPROVER_USERNAME).groups.filter(name="approver").exists()
