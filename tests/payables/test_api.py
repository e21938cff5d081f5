"""The payables API: vendors, purchase orders with their transitions, bills, payment runs,
expense reports and GET /api/accounts/payable; roles and refusal codes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.ledger.models import JournalEntry
from payables.enums import PurchaseOrderStatus
from payables.models import Approval, Bill, ExpenseCategory, PurchaseOrder, Vendor
from payables.selectors import ap_subledger_check

pytestmark = pytest.mark.django_db

API = "/api/payables"


def _order_body(vendor, price="2500.00"):
    return {
        "vendor": vendor.pk,
        "currency": "USD",
        "lines": [{"description": "Laptop", "quantity": "1", "unit_price": price}],
    }


def test_vendor_onboarding_through_the_api(client_for):
    # given an AP clerk
    clerk = client_for("ap_clerk")
    # when they add a vendor with the three required fields
    response = clerk.post(
        f"{API}/vendors",
        {"name": "Soylent", "email": "ap@soylent.example", "currency": "USD"},
        format="json",
    )
    # then 201 in onboarding; activation needs someone else
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "invited"
    vendor_id = body["id"]
    refused = clerk.post(f"{API}/vendors/{vendor_id}/activate")
    assert refused.status_code == 403
    activated = client_for("controller").post(f"{API}/vendors/{vendor_id}/activate")
    assert activated.status_code == 200
    assert activated.json()["status"] == "active"


def test_vendor_output_masks_bank_details(client_for, vendor):
    body = client_for("auditor").get(f"{API}/vendors/{vendor.pk}").json()
    assert body["bank_account_number"] == "\u2022\u2022\u2022\u20226789"
    assert "123456789" not in str(body)


def test_order_lifecycle_and_refusal_codes(client_for, make_user, vendor):
    # given an approver who requests an order of 2,500.00
    requester = make_user("approver")
    from tests.conftest import verified_client

    requester_client = verified_client(requester)
    created = requester_client.post(f"{API}/purchase-orders", _order_body(vendor), format="json")
    assert created.status_code == 201, created.json()
    order = created.json()
    assert order["status"] == "draft"
    submitted = requester_client.post(f"{API}/purchase-orders/{order['id']}/submit")
    assert submitted.json()["status"] == "pending_approval"
    # when the requester approves their own order
    own = requester_client.post(f"{API}/purchase-orders/{order['id']}/approve", {}, format="json")
    # then 403 with the reason, nothing changed
    assert own.status_code == 403
    assert own.json()["code"] == "requester_cannot_approve"
    assert not Approval.objects.exists()
    # a clerk without the right
    clerk = client_for("ap_clerk")
    denied = clerk.post(f"{API}/purchase-orders/{order['id']}/approve", {}, format="json")
    assert (denied.status_code, denied.json()["code"]) == (403, "approval_role_required")
    # another approver approves with a comment
    approver = client_for("approver")
    ok = approver.post(
        f"{API}/purchase-orders/{order['id']}/approve", {"comment": "Budgeted"}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["status"] == "approved"
    assert ok.json()["approvals"][0]["comment"] == "Budgeted"
    # and approving again is refused as counted... on an order that is no longer pending
    again = approver.post(f"{API}/purchase-orders/{order['id']}/approve", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")
    placed = clerk.post(f"{API}/purchase-orders/{order['id']}/order")
    assert placed.json()["status"] == "ordered"


def test_small_order_is_approved_on_submit_and_reject_takes_a_comment(client_for, vendor):
    clerk = client_for("ap_clerk")
    small = clerk.post(f"{API}/purchase-orders", _order_body(vendor, "999.99"), format="json")
    submitted = clerk.post(f"{API}/purchase-orders/{small.json()['id']}/submit")
    assert submitted.json()["status"] == "approved"
    big = clerk.post(f"{API}/purchase-orders", _order_body(vendor, "5000.00"), format="json")
    clerk.post(f"{API}/purchase-orders/{big.json()['id']}/submit")
    rejected = client_for("controller").post(
        f"{API}/purchase-orders/{big.json()['id']}/reject", {"comment": "No"}, format="json"
    )
    assert rejected.json()["status"] == "rejected"
    assert PurchaseOrder.objects.get(pk=big.json()["id"]).status == PurchaseOrderStatus.REJECTED


def test_orders_only_for_active_vendors(client_for, make_vendor):
    pending = make_vendor("Pending", active=False)
    response = client_for("ap_clerk").post(
        f"{API}/purchase-orders", _order_body(pending), format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "vendor_not_active")
    assert not PurchaseOrder.objects.exists()


def test_bill_through_the_api_is_not_approved_automatically(integration_client, client_for, vendor):
    body = {
        "vendor": vendor.pk,
        "number": "V-1001",
        "currency": "USD",
        "bill_date": (timezone.localdate() - timedelta(days=40)).isoformat(),
        "lines": [{"description": "Service", "quantity": "1", "unit_price": "400.00"}],
    }
    created = integration_client.post(f"{API}/bills", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "pending_approval"
    assert not JournalEntry.objects.exists()
    duplicate = integration_client.post(f"{API}/bills", body, format="json")
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate_bill")
    approved = client_for("approver").post(
        f"{API}/bills/{created.json()['id']}/approve", {}, format="json"
    )
    assert approved.json()["status"] == "approved"
    # the open bill is in the AP aging, with its bucket and totals
    aging = client_for("auditor").get("/api/accounts/payable").json()
    assert aging["count"] == 1
    item = aging["results"][0]
    assert (item["bill"], item["amount_due"], item["bucket"], item["days_past_due"]) == (
        created.json()["id"],
        "400.00",
        "1-30",
        10,
    )
    assert aging["totals"]["USD"]["1-30"] == "400.00"
    assert aging["totals"]["USD"]["total"] == "400.00"
    assert ap_subledger_check() == []


def test_payable_aging_filters_and_csv(client_for, vendor, make_vendor, ap_clerk, make_user):
    from payables.services.bills import BillLineInput, bill_approve, bill_create

    approver = make_user("approver")
    today = timezone.localdate()
    other = make_vendor("Other")
    for number, who, days, amount in (
        ("A", vendor, 5, "10.00"),
        ("B", vendor, 70, "20.00"),
        ("C", other, 200, "30.00"),
    ):
        bill = bill_create(
            actor=ap_clerk,
            vendor_id=who.pk,
            number=number,
            currency="USD",
            bill_date=today - timedelta(days=days),
            lines=[BillLineInput("x", Decimal(1), Decimal(amount))],
        )
        bill_approve(bill_id=bill.pk, actor=approver)
    client = client_for("controller")
    body = client.get("/api/accounts/payable", {"vendor": vendor.pk}).json()
    assert [r["number"] for r in body["results"]] == ["B", "A"]
    assert body["totals"]["USD"] == {
        "current": "10.00",
        "1-30": "0.00",
        "31-60": "20.00",
        "61-90": "0.00",
        "90+": "0.00",
        "total": "30.00",
    }
    assert client.get("/api/accounts/payable", {"bucket": "90+"}).json()["count"] == 1
    assert client.get("/api/accounts/payable", {"min_amount": "15"}).json()["count"] == 2
    bad = client.get("/api/accounts/payable", {"min_amount": "1e3", "as_of": "yesterday"})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"min_amount", "as_of"}
    csv = client.get("/api/accounts/payable", {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().splitlines()[0].startswith("bill,number,vendor,currency")


def test_payable_roles(client_for):
    assert client_for("ar_clerk").get("/api/accounts/payable").status_code == 403
    for role in ("finance_admin", "ap_clerk", "approver", "controller", "auditor"):
        assert client_for(role).get("/api/accounts/payable").status_code == 200, role


def test_payment_run_through_the_api(client_for, make_user, vendor, ap_clerk):
    from payables.services.bills import BillLineInput, bill_approve, bill_create

    bill = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="R-1",
        currency="USD",
        bill_date=timezone.localdate() - timedelta(days=45),
        lines=[BillLineInput("x", Decimal(1), Decimal("640.00"))],
    )
    bill_approve(bill_id=bill.pk, actor=make_user("approver"))
    clerk = client_for("ap_clerk")
    created = clerk.post(
        f"{API}/payment-runs",
        {"currency": "USD", "pay_by": timezone.localdate().isoformat()},
        format="json",
    )
    assert created.status_code == 201, created.json()
    run = created.json()
    assert (run["total"], run["item_count"], run["items"][0]["bill"]) == ("640.00", 1, bill.pk)
    clerk.post(f"{API}/payment-runs/{run['id']}/submit")
    own = clerk.post(f"{API}/payment-runs/{run['id']}/approve", {}, format="json")
    assert (own.status_code, own.json()["code"]) == (403, "requester_cannot_approve")
    approved = client_for("approver").post(
        f"{API}/payment-runs/{run['id']}/approve", {}, format="json"
    )
    assert approved.json()["status"] == "approved"
    exported = clerk.post(f"{API}/payment-runs/{run['id']}/export")
    assert exported.json()["status"] == "exported"
    file = clerk.get(f"{API}/payment-runs/{run['id']}/file")
    content = b"".join(file.streaming_content)
    assert content.startswith(b"101")
    assert clerk.post(f"{API}/payment-runs/{run['id']}/confirm").json()["status"] == "paid"
    assert Bill.objects.get(pk=bill.pk).status == "paid"


def test_expense_report_flow(client_for, make_user):
    from tests.conftest import verified_client

    employee = make_user("ar_clerk")
    me = verified_client(employee)
    meals = ExpenseCategory.objects.get(name="Meals and entertainment")
    travel = ExpenseCategory.objects.get(name="Travel")
    day = timezone.localdate().isoformat()
    created = me.post(
        f"{API}/expense-reports",
        {
            "title": "Client visit",
            "currency": "USD",
            "lines": [
                {
                    "spent_on": day,
                    "category": travel.pk,
                    "description": "Train",
                    "amount": "120.00",
                },
                {
                    "spent_on": day,
                    "category": meals.pk,
                    "description": "Dinner",
                    "amount": "180.00",
                },
            ],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    report = created.json()
    assert [line["over_limit"] for line in report["lines"]] == [False, True]
    # over the meals limit without a justification: refused
    refused = me.post(f"{API}/expense-reports/{report['id']}/submit")
    assert (refused.status_code, refused.json()["code"]) == (400, "policy_limit_exceeded")
    # a receipt that is not a PDF/PNG/JPEG is refused; a PDF is kept
    line_id = report["lines"][1]["id"]
    bad = me.post(
        f"{API}/expense-lines/{line_id}/receipt",
        {"file": SimpleUploadedFile("r.pdf", b"GIF89a...")},
        format="multipart",
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "upload_type_refused")
    good = me.post(
        f"{API}/expense-lines/{line_id}/receipt",
        {"file": SimpleUploadedFile("r.pdf", b"%PDF-1.4 receipt")},
        format="multipart",
    )
    assert good.json()["lines"][1]["receipt"] == "r.pdf"
    # the employee never approves their own report
    assert me.post(f"{API}/expense-reports/{report['id']}/approve").status_code == 403


def test_every_payables_route_refuses_anonymous(client):
    for path in (
        f"{API}/vendors",
        f"{API}/purchase-orders",
        f"{API}/bills",
        f"{API}/receipts",
        f"{API}/payment-runs",
        f"{API}/expense-reports",
        "/api/accounts/payable",
    ):
        assert client.get(path).status_code in (401, 403), path
    assert Vendor.objects.count() == 0
