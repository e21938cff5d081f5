"""Payables decisions in the admin go through a confirmation page: opening it changes
nothing and shows what will be posted (or what the action does); only its button acts; a
refusal is shown on the page in the service's words."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from core.ledger.models import JournalEntry
from core.roles import Role
from payables.enums import BillStatus
from payables.enums import PurchaseOrderStatus as PO
from payables.models import Approval, Bill, PaymentRun, PurchaseOrder
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.orders import purchase_order_submit
from payables.services.runs import payment_run_approve, payment_run_create, payment_run_submit
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db


def page_url(model: str, step: str, pk: int) -> str:
    return reverse(f"admin:payables_{model}_{step}_detail", args=[pk])


def press(client: Any, url: str, **data: str) -> Any:
    page = client.get(url)
    form = page.context["form"]
    version = {"version": form["version"].value()} if form is not None else {}
    return client.post(url, {"confirm": "1", **version, **data}, follow=True)


@pytest.fixture
def bill(vendor, ap_clerk) -> Bill:
    return bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="INV-77",
        currency="USD",
        bill_date=timezone.localdate(),
        lines=[BillLineInput("Office chair", D(3), D("1250.50"))],
    )


def test_bill_approval_page_shows_the_posting_and_changes_nothing(bill, make_user) -> None:
    # given a captured bill of 3,751.50 USD and an approver
    client = verified_client(make_user(Role.APPROVER))
    entries = JournalEntry.objects.count()

    # when the approver opens Approve on the bill's page
    response = client.get(page_url("bill", "approve", bill.pk))

    # then the page shows the entry the approval posts, with amounts as people read them
    assert response.status_code == 200
    html = response.content.decode()
    assert "What will be posted to the ledger" in html
    [entry] = response.context["preview"].entries
    assert sorted(line.debit for line in entry.lines if line.debit) == ["3,751.50 USD"]
    assert sorted(line.credit for line in entry.lines if line.credit) == ["3,751.50 USD"]
    # and nothing happened: no entry, no decision, the bill still waits
    assert JournalEntry.objects.count() == entries
    assert not Approval.objects.filter(kind="bill", object_id=bill.pk).exists()
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.PENDING_APPROVAL


def test_bill_approved_and_posted_by_the_pages_button(bill, make_user) -> None:
    # given an approver on the bill's confirmation page
    approver = make_user(Role.APPROVER)
    client = verified_client(approver)

    # when they press Approve with a comment
    response = press(client, page_url("bill", "approve", bill.pk), comment="Checked")

    # then the bill is approved and posted, the decision carries the comment
    bill.refresh_from_db()
    assert bill.status == BillStatus.APPROVED
    assert bill.journal_entry_id is not None
    assert Approval.objects.get(kind="bill", object_id=bill.pk).comment == "Checked"
    assert response.redirect_chain[-1][0] == reverse("admin:payables_bill_change", args=[bill.pk])
    assert "Bill INV-77: approved." in response.content.decode()


def test_bill_changed_since_the_page_was_opened_is_not_approved(bill, make_user) -> None:
    # given an approver who opened the page, then the bill was decided by someone else
    client = verified_client(make_user(Role.APPROVER))
    url = page_url("bill", "approve", bill.pk)
    version = client.get(url).context["form"]["version"].value()
    bill_approve(bill_id=bill.pk, actor=make_user(Role.CONTROLLER))
    entries = JournalEntry.objects.count()

    # when they press Approve
    response = client.post(url, {"confirm": "1", "version": version, "comment": ""})

    # then the refusal is on the page (not a 403/500) and nothing more is posted
    assert response.status_code == 200
    assert response.context["error"]
    assert JournalEntry.objects.count() == entries
    assert Approval.objects.filter(kind="bill", object_id=bill.pk).count() == 1


def test_order_approval_page_says_what_it_does_and_only_its_button_approves(
    make_order, ap_clerk, make_user
) -> None:
    # given an order of 5,000 USD waiting for approval
    order = make_order("5000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    client = verified_client(make_user(Role.APPROVER))

    # when an approver opens Approve
    page = client.get(page_url("purchaseorder", "approve", order.pk))

    # then the page describes the approval (nothing is posted) and nothing changed
    html = page.content.decode()
    assert "5,000.00 USD" in html
    assert "Nothing is posted to the ledger" in html
    assert PurchaseOrder.objects.get(pk=order.pk).status == PO.PENDING_APPROVAL

    # when they press the button
    press(client, page_url("purchaseorder", "approve", order.pk))

    # then the order is approved
    assert PurchaseOrder.objects.get(pk=order.pk).status == PO.APPROVED


def test_the_approve_button_shows_only_on_a_pending_document_for_an_approver(
    bill, make_user, ap_clerk
) -> None:
    url = page_url("bill", "approve", bill.pk)
    change = reverse("admin:payables_bill_change", args=[bill.pk])
    # an approver sees it on a pending bill
    assert url in verified_client(make_user(Role.APPROVER)).get(change).content.decode()
    # the clerk who captured it does not, and cannot open it
    clerk = verified_client(ap_clerk)
    assert url not in clerk.get(change).content.decode()
    assert clerk.get(url).status_code == 403


@pytest.fixture
def approved_run(bill, make_user, ap_clerk) -> PaymentRun:
    bill_approve(bill_id=bill.pk, actor=make_user(Role.APPROVER))
    run = payment_run_create(
        currency="USD",
        pay_by=timezone.localdate() + timedelta(days=90),
        actor=ap_clerk,
        include_expenses=False,
    )
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    return payment_run_approve(run_id=run.pk, actor=make_user(Role.APPROVER))


def test_run_release_and_payment_each_need_their_page(approved_run, ap_clerk) -> None:
    client = verified_client(ap_clerk)
    entries = JournalEntry.objects.count()

    # when the clerk opens "Release the bank file"
    page = client.get(page_url("paymentrun", "release", approved_run.pk))
    # then it says what it does and that it cannot be undone, and no file is written
    html = page.content.decode()
    assert "cannot be undone" in html
    assert "3,751.50 USD" in html
    approved_run.refresh_from_db()
    assert (approved_run.status, bool(approved_run.file)) == ("approved", False)

    # when they press it
    press(client, page_url("paymentrun", "release", approved_run.pk))
    # then the file is written
    approved_run.refresh_from_db()
    assert approved_run.status == "exported"
    assert approved_run.file

    # when they open "Confirm paid"
    page = client.get(page_url("paymentrun", "confirm", approved_run.pk))
    # then the payment entry is shown (AP debited, bank credited) and nothing posted yet
    [entry] = page.context["preview"].entries
    assert [line.debit for line in entry.lines if line.debit] == ["3,751.50 USD"]
    assert JournalEntry.objects.count() == entries
    assert PaymentRun.objects.get(pk=approved_run.pk).status == "exported"

    # when they press it
    press(client, page_url("paymentrun", "confirm", approved_run.pk))
    # then the run is paid and the entry posted
    assert PaymentRun.objects.get(pk=approved_run.pk).status == "paid"
    assert JournalEntry.objects.count() == entries + 1
