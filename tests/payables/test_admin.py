"""Payables admin: every page loads for finance_admin and, read-only, for an auditor; the
actions and the bill capture go through the services (the requester cannot approve their
own order, a duplicate bill is a form error, a vendor's creator cannot activate it); tax
ids and bank numbers never appear in clear on any admin page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from payables.enums import BillStatus, MatchStatus, VendorStatus
from payables.enums import PurchaseOrderStatus as PO
from payables.models import (
    Approval,
    ApprovalDelegation,
    ApprovalLevel,
    Bill,
    ExpenseCategory,
    ExpenseReport,
    MatchTolerance,
    PaymentRun,
    PurchaseOrder,
    Receipt,
    Vendor,
    VendorBankChange,
)
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.expenses import (
    ExpenseLineInput,
    expense_report_create,
    expense_report_submit,
)
from payables.services.orders import (
    ReceiptLineInput,
    purchase_order_place,
    purchase_order_submit,
    receipt_create,
)
from payables.services.runs import payment_run_create
from payables.services.vendors import (
    BankDetails,
    vendor_bank_change_request,
    vendor_document_upload,
)
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db

# Clear values that must never reach an admin page.
ACCOUNT = "98765432101"
NEW_ACCOUNT = "55500012345"
IBAN = "DE89370400440532013000"
EIN = "941144100"


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def changelist(model: str) -> str:
    return reverse(f"admin:payables_{model}_changelist")


def change(model: str, pk: int) -> str:
    return reverse(f"admin:payables_{model}_change", args=[pk])


def act(client: Any, model: str, action: str, *pks: int, **extra: str) -> Any:
    return client.post(
        changelist(model),
        {"action": action, "_selected_action": [str(pk) for pk in pks], **extra},
        follow=True,
    )


def approve(client: Any, model: str, pk: int, **extra: str) -> Any:
    """Approve on the document's confirmation page: open it, then press its button."""
    url = reverse(f"admin:payables_{model}_approve_detail", args=[pk])
    page = client.get(url)
    version = page.context["form"]["version"].value() if page.status_code == 200 else ""
    return client.post(url, {"confirm": "1", "version": version, **extra}, follow=True)


def run_step(client: Any, step: str, pk: int) -> Any:
    """Release or confirm a payment run from its confirmation page."""
    url = reverse(f"admin:payables_paymentrun_{step}_detail", args=[pk])
    return client.post(url, {"confirm": "1"}, follow=True)


def lines_formset(*lines: tuple[str, str, str, str]) -> dict[str, str]:
    """POST data of the bill capture inline: (description, quantity, price, order line)."""
    data = {
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for n, (description, quantity, price, order_line) in enumerate(lines):
        data |= {
            f"lines-{n}-description": description,
            f"lines-{n}-quantity": quantity,
            f"lines-{n}-price": price,
            f"lines-{n}-order_line": order_line,
            f"lines-{n}-account": "",
        }
    return data


def bill_form(vendor: Vendor, number: str, **overrides: str) -> dict[str, str]:
    return {
        "vendor": str(vendor.pk),
        "number": number,
        "currency": "",
        "bill_date": timezone.localdate().isoformat(),
        "purchase_order": "",
        "description": "Office chairs",
        "duplicate_override_reason": "",
        **lines_formset(("Office chair", "3", "250.00", "")),
        **overrides,
    }


@pytest.fixture
def approver(make_user):
    return make_user(Role.APPROVER)


@pytest.fixture
def world(ap_clerk, approver, make_vendor, make_order, make_user) -> dict[str, Any]:
    """One of every payables document, written through the services."""
    vendor = make_vendor(
        "Globex Supplies",
        tax_id_type="us_ein",
        tax_id="94-1144100",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number=ACCOUNT
        ),
    )
    euro = make_vendor(
        "Kessler GmbH",
        currency="EUR",
        bank=BankDetails(account_holder="Kessler", iban=IBAN, bic="COBADEFFXXX"),
    )
    held = make_vendor("Initech Parts")
    bank_change = vendor_bank_change_request(
        vendor_id=held.pk,
        bank=BankDetails(
            account_holder="Initech", routing_number="011000015", account_number=NEW_ACCOUNT
        ),
        reason="New bank",
        actor=ap_clerk,
    )
    document = vendor_document_upload(
        vendor_id=vendor.pk,
        kind="w9",
        upload=SimpleUploadedFile("w9.pdf", b"%PDF-1.4 " + b"x" * 512),
        actor=ap_clerk,
    )
    order = make_order("500.00", "300.00", on=vendor)
    order = purchase_order_submit(order_id=order.pk, actor=ap_clerk)  # below 1,000: approved
    purchase_order_place(order_id=order.pk, actor=ap_clerk, send=False)
    first, second = order.lines.order_by("position")
    receipt = receipt_create(
        order_id=order.pk,
        actor=ap_clerk,
        lines=[
            ReceiptLineInput(order_line_id=first.pk, quantity=D(1)),
            ReceiptLineInput(order_line_id=second.pk, quantity=D(1)),
        ],
    )
    waiting = make_order("5000.00", on=vendor)
    purchase_order_submit(order_id=waiting.pk, actor=ap_clerk)
    matched = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="INV-1",
        currency="USD",
        bill_date=timezone.localdate() - timedelta(days=3),
        purchase_order_id=order.pk,
        lines=[BillLineInput("Item 1", D(1), D("500.00"), order_line_id=first.pk)],
    )
    bill_approve(bill_id=matched.pk, actor=approver)
    exception = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="INV-2",
        currency="USD",
        bill_date=timezone.localdate() - timedelta(days=2),
        purchase_order_id=order.pk,
        lines=[BillLineInput("Item 2", D(2), D("330.00"), order_line_id=second.pk)],
    )
    category = ExpenseCategory.objects.get(name="Travel")
    report = expense_report_create(
        actor=ap_clerk,
        title="Trip",
        currency="USD",
        lines=[ExpenseLineInput(timezone.localdate(), category.pk, "Train", D("80.00"))],
    )
    expense_report_submit(report_id=report.pk, actor=ap_clerk)
    run = payment_run_create(
        currency="USD",
        pay_by=timezone.localdate() + timedelta(days=60),
        actor=ap_clerk,
        include_expenses=False,
    )
    delegation = ApprovalDelegation.objects.create(
        delegator=approver,
        delegate=make_user(Role.CONTROLLER),
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate() + timedelta(days=7),
        reason="Holiday",
    )
    return {
        "vendor": vendor,
        "euro": euro,
        "vendorbankchange": bank_change,
        "document": document,
        "purchaseorder": order,
        "waiting": waiting,
        "receipt": receipt,
        "bill": matched,
        "exception": exception,
        "expensereport": report,
        "paymentrun": run,
        "approvaldelegation": delegation,
        "approvallevel": ApprovalLevel.objects.first(),
        "matchtolerance": MatchTolerance.objects.get(pk=1),
        "expensecategory": category,
        "approval": Approval.objects.first(),
    }


PAGES = [
    ("vendor", "vendor"),
    ("vendorbankchange", "vendorbankchange"),
    ("approvallevel", "approvallevel"),
    ("approvaldelegation", "approvaldelegation"),
    ("matchtolerance", "matchtolerance"),
    ("expensecategory", "expensecategory"),
    ("approval", "approval"),
    ("purchaseorder", "purchaseorder"),
    ("receipt", "receipt"),
    ("bill", "bill"),
    ("expensereport", "expensereport"),
    ("paymentrun", "paymentrun"),
]


def test_every_page_loads_for_finance_admin(world, make_user) -> None:
    # given a finance admin with a verified second factor
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    # when every changelist and one change page per model are opened
    pages = {}
    for model, key in PAGES:
        pages[f"{model} list"] = client.get(changelist(model))
        pages[f"{model} page"] = client.get(change(model, world[key].pk))
    pages["bill exception page"] = client.get(change("bill", world["exception"].pk))
    pages["bill add"] = client.get(reverse("admin:payables_bill_add"))
    pages["vendor add"] = client.get(reverse("admin:payables_vendor_add"))
    pages["bank change add"] = client.get(reverse("admin:payables_vendorbankchange_add"))
    pages["vendor history"] = client.get(
        reverse("admin:payables_vendor_history", args=[world["vendor"].pk])
    )
    # then every one answers 200
    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    # and the documents show what matters: decisions, match results, run payments, files
    order_page = pages["purchaseorder page"].content.decode()
    assert "Item 1" in order_page
    assert "Receipt" in order_page
    waiting_page = client.get(change("purchaseorder", world["waiting"].pk)).content.decode()
    assert "No decision yet." in waiting_page
    bill_page = pages["bill page"].content.decode()
    assert "Approved" in bill_page  # the decision row: who, when
    exception_page = pages["bill exception page"].content.decode().replace(".0000", "")
    assert "Exception: unit price 330 vs 300 ordered (10.00%)" in exception_page
    assert "billed 2 vs 1 received" in exception_page
    run_page = pages["paymentrun page"].content.decode()
    assert world["paymentrun"].items.first().end_to_end_id in run_page
    document_url = reverse(
        "admin:payables_vendor_document", args=[world["vendor"].pk, world["document"].pk]
    )
    assert document_url in pages["vendor page"].content.decode()
    download = client.get(document_url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF-1.4")


def test_auditor_views_everything_but_has_no_writing_action(world, make_user) -> None:
    # given an auditor
    client = verified_client(make_user(Role.AUDITOR))
    for model, key in PAGES:
        # when they open the list and a page
        listing = client.get(changelist(model))
        page = client.get(change(model, world[key].pk))
        # then both load, with no action to run and nothing to save or delete
        assert (listing.status_code, page.status_code) == (200, 200), model
        assert listing.context["action_form"] is None, model
        assert not listing.context["has_add_permission"], model
        assert not page.context["has_change_permission"], model
        assert not page.context["has_delete_permission"], model
    # and an approval posted anyway is refused and does nothing
    waiting = world["waiting"]
    assert approve(client, "purchaseorder", waiting.pk).status_code == 403
    assert PurchaseOrder.objects.get(pk=waiting.pk).status == PO.PENDING_APPROVAL
    assert not Approval.objects.filter(kind="purchase_order", object_id=waiting.pk).exists()


def test_requester_cannot_approve_own_order_in_the_admin(make_order, make_user) -> None:
    # given an approver who requested an order of 5,000 and submitted it
    requester = make_user(Role.APPROVER)
    order = make_order("5000.00", requester=requester)
    purchase_order_submit(order_id=order.pk, actor=requester)
    client = verified_client(requester)
    # when they confirm "Approve" on it in the admin
    response = approve(client, "purchaseorder", order.pk)
    # then the refusal is shown on the page, the order still waits and no decision was recorded
    assert response.status_code == 200
    assert "someone else must decide on it" in response.context["error"]
    assert PurchaseOrder.objects.get(pk=order.pk).status == PO.PENDING_APPROVAL
    assert not Approval.objects.filter(object_id=order.pk, kind="purchase_order").exists()

    # when another approver does
    other = make_user(Role.APPROVER)
    response = approve(verified_client(other), "purchaseorder", order.pk)
    # then the order is approved and the decision names them
    assert PurchaseOrder.objects.get(pk=order.pk).status == PO.APPROVED
    assert list(
        Approval.objects.filter(kind="purchase_order", object_id=order.pk).values_list(
            "user", "decision"
        )
    ) == [(other.pk, "approved")]
    assert any(f"{order.number}: approved." in m for m in messages_of(response))
    page = verified_client(other).get(change("purchaseorder", order.pk)).content.decode()
    assert other.username in page


def test_reject_asks_for_a_comment_and_records_it(make_order, make_user, ap_clerk) -> None:
    # given an order waiting for approval
    order = make_order("2000.00")
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    client = verified_client(make_user(Role.CONTROLLER))
    # when an approver chooses Reject: first the comment page
    page = act(client, "purchaseorder", "reject_selected", order.pk)
    assert page.status_code == 200
    assert "Reject purchase orders" in page.content.decode()
    assert PurchaseOrder.objects.get(pk=order.pk).status == PO.PENDING_APPROVAL
    # and then the comment
    act(client, "purchaseorder", "reject_selected", order.pk, apply_comment="1", comment="Too dear")
    # then the order is rejected with the comment
    assert PurchaseOrder.objects.get(pk=order.pk).status == PO.REJECTED
    assert Approval.objects.get(object_id=order.pk, kind="purchase_order").comment == "Too dear"


def test_bill_captured_in_the_admin_through_the_service(vendor, ap_clerk) -> None:
    client = verified_client(ap_clerk)
    add_url = reverse("admin:payables_bill_add")
    # when a clerk captures a bill with its lines
    response = client.post(add_url, bill_form(vendor, "A-100"))
    # then the service created it, pending approval, with its lines, and the admin shows it
    assert response.status_code == 302, response.content.decode()[:3000]
    bill = Bill.objects.get(vendor=vendor, number="A-100")
    assert response["Location"].endswith(change("bill", bill.pk))
    assert bill.status == BillStatus.PENDING_APPROVAL
    assert bill.match_status == MatchStatus.NOT_APPLICABLE
    assert bill.created_by == ap_clerk
    assert bill.total.amount == D("750.00")
    assert str(bill.total.currency) == "USD"
    assert list(bill.lines.values_list("description", "quantity")) == [("Office chair", D(3))]
    assert bill.due_date == bill.bill_date + timedelta(days=vendor.payment_terms_days)

    # when the same amount on the same date comes again under another number
    response = client.post(add_url, bill_form(vendor, "A-101"))
    # then the refusal is a form error and nothing is created
    assert response.status_code == 200
    html = response.content.decode()
    assert "same amount and date" in html
    assert "errornote" in html
    assert Bill.objects.count() == 1

    # when the same number comes again
    response = client.post(
        add_url, bill_form(vendor, "A-100", **lines_formset(("Desk", "1", "99.00", "")))
    )
    assert response.status_code == 200
    assert Bill.objects.count() == 1

    # when the duplicate is let through with a reason
    response = client.post(
        add_url, bill_form(vendor, "A-101", duplicate_override_reason="Second delivery")
    )
    assert response.status_code == 302
    assert Bill.objects.count() == 2


def test_bill_approval_actions(world, make_user) -> None:
    exception = world["exception"]
    client = verified_client(make_user(Role.APPROVER))
    # when an approver approves a bill with a match exception without saying why
    response = approve(client, "bill", exception.pk)
    # then the page asks for the reason and the bill still waits
    assert response.context["form"].errors["comment"]
    assert Bill.objects.get(pk=exception.pk).status == BillStatus.PENDING_APPROVAL
    # when they accept the exception with a comment
    approve(client, "bill", exception.pk, comment="Price rise agreed by phone")
    bill = Bill.objects.get(pk=exception.pk)
    assert (bill.status, bill.match_status) == (BillStatus.APPROVED, MatchStatus.OVERRIDDEN)
    assert bill.journal_entry_id is not None


def test_vendor_creator_cannot_activate_it(make_user) -> None:
    # given a finance admin who adds a vendor in the admin (through vendor_create)
    creator = make_user(Role.FINANCE_ADMIN)
    client = verified_client(creator)
    response = client.post(
        reverse("admin:payables_vendor_add"),
        {
            "name": "Umbrella Corp",
            "email": "ap@umbrella.example",
            "currency": "usd",
            "country": "us",
            "address": "",
            "tax_id_type": "us_ein",
            "tax_id_new": "94-1144100",
            "payment_terms_days": "30",
            "discount_percent": "2",
            "discount_days": "10",
            "bank_account_holder": "Umbrella",
            "bank_routing_number": "011000015",
            "account_number_new": ACCOUNT,
            "bank_account_type": "checking",
            "iban_new": "",
            "bic": "",
        },
    )
    assert response.status_code == 302
    vendor = Vendor.objects.get(name="Umbrella Corp")
    assert (vendor.status, vendor.created_by) == (VendorStatus.PENDING_REVIEW, creator)
    assert vendor.bank_account_number == ACCOUNT
    assert vendor.tax_id == EIN
    # when the creator runs "Activate"
    response = act(client, "vendor", "activate_selected", vendor.pk)
    # then the reason is shown and the vendor stays in review
    assert any("someone else must activate it" in m for m in messages_of(response))
    assert Vendor.objects.get(pk=vendor.pk).status == VendorStatus.PENDING_REVIEW
    # when a second person does, it is active; and Block asks for a reason
    other = verified_client(make_user(Role.CONTROLLER))
    act(other, "vendor", "activate_selected", vendor.pk)
    assert Vendor.objects.get(pk=vendor.pk).status == VendorStatus.ACTIVE
    act(other, "vendor", "block_selected", vendor.pk, apply_comment="1", comment="Fraud alert")
    blocked = Vendor.objects.get(pk=vendor.pk)
    assert blocked.status == VendorStatus.BLOCKED
    assert blocked.blocked_reason.startswith("Fraud alert (blocked in the admin by")


def test_bank_change_requester_cannot_approve_it(world, ap_clerk, make_user) -> None:
    change_row = world["vendorbankchange"]
    # given the requester also holds the approving role
    ap_clerk.groups.add(*make_user(Role.APPROVER).groups.all())
    client = verified_client(ap_clerk)
    response = act(client, "vendorbankchange", "approve_selected", change_row.pk, apply_comment="1")
    assert any("a second person must decide on it" in m for m in messages_of(response))
    assert VendorBankChange.objects.get(pk=change_row.pk).status == "pending"
    # and a second person approves it: the first click only asks, the page's button approves
    controller = verified_client(make_user(Role.CONTROLLER))
    page = act(controller, "vendorbankchange", "approve_selected", change_row.pk)
    assert "Approve the changes" in page.content.decode()
    assert VendorBankChange.objects.get(pk=change_row.pk).status == "pending"
    act(controller, "vendorbankchange", "approve_selected", change_row.pk, apply_comment="1")
    assert VendorBankChange.objects.get(pk=change_row.pk).status == "approved"
    assert Vendor.objects.get(pk=change_row.vendor_id).bank_account_number == NEW_ACCOUNT


def test_bank_numbers_and_tax_ids_never_in_clear_on_admin_pages(world, make_user) -> None:
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    vendor, euro, change_row = world["vendor"], world["euro"], world["vendorbankchange"]
    urls = [
        changelist("vendor"),
        change("vendor", vendor.pk),
        change("vendor", euro.pk),
        change("vendor", change_row.vendor_id),
        reverse("admin:payables_vendor_history", args=[vendor.pk]),
        reverse(
            "admin:payables_vendor_simple_history",
            args=[vendor.pk, vendor.history.earliest().history_id],
        ),
        changelist("vendorbankchange"),
        change("vendorbankchange", change_row.pk),
        reverse("admin:payables_vendorbankchange_history", args=[change_row.pk]),
        change("paymentrun", world["paymentrun"].pk),
        changelist("paymentrun"),
    ]
    secrets = (ACCOUNT, NEW_ACCOUNT, IBAN, EIN, "94-1144100")
    for url in urls:
        html = client.get(url).content.decode()
        assert not [s for s in secrets if s in html], url
    # the masked forms are shown instead
    vendor_page = client.get(change("vendor", vendor.pk)).content.decode()
    assert "••••2101" in vendor_page
    assert "••••4100" in vendor_page
    assert "••••3000" in client.get(change("vendor", euro.pk)).content.decode()
    assert "••••2345" in client.get(changelist("vendorbankchange")).content.decode()

    # and a refused add form does not echo the numbers typed in
    response = client.post(
        reverse("admin:payables_vendor_add"),
        {
            "name": "Echo Ltd",
            "email": "ap@echo.example",
            "currency": "USD",
            "tax_id_type": "us_ein",
            "tax_id_new": "94-1144100",
            "payment_terms_days": "30",
            "discount_percent": "0",
            "discount_days": "0",
            "bank_routing_number": "123456789",  # bad checksum: refused by the service
            "account_number_new": "31415926535",
            "bank_account_type": "checking",
            "iban_new": IBAN,
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Not a valid ABA routing number" in html
    assert not [s for s in ("31415926535", IBAN, "94-1144100", EIN) if s in html]
    assert not Vendor.objects.filter(name="Echo Ltd").exists()


def test_payment_run_actions_and_file(world, ap_clerk, make_user) -> None:
    run = world["paymentrun"]
    clerk = verified_client(ap_clerk)
    act(clerk, "paymentrun", "submit_selected", run.pk)
    # the run's creator may not approve it
    response = approve(clerk, "paymentrun", run.pk)
    assert PaymentRun.objects.get(pk=run.pk).status == "pending_approval"
    assert response.status_code == 403
    approve(verified_client(make_user(Role.APPROVER)), "paymentrun", run.pk)
    run_step(clerk, "release", run.pk)
    run.refresh_from_db()
    assert run.status == "exported"
    assert run.file
    page = clerk.get(change("paymentrun", run.pk)).content.decode()
    file_url = reverse("admin:payables_paymentrun_file", args=[run.pk])
    assert file_url in page
    download = clerk.get(file_url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"101")  # NACHA file header
    run_step(clerk, "confirm", run.pk)
    assert PaymentRun.objects.get(pk=run.pk).status == "paid"
    assert ExpenseReport.objects.exists()
    assert Receipt.objects.exists()


def test_cancelling_a_run_asks_first(world, ap_clerk) -> None:
    run = world["paymentrun"]
    clerk = verified_client(ap_clerk)
    # the action's first click lists the run and what cancelling does; nothing changes
    page = act(clerk, "paymentrun", "cancel_selected", run.pk)
    assert "Cancel the runs" in page.content.decode()
    assert str(run) in page.content.decode()
    assert PaymentRun.objects.get(pk=run.pk).status == "draft"
    # the page's button cancels it
    act(clerk, "paymentrun", "cancel_selected", run.pk, apply_comment="1")
    assert PaymentRun.objects.get(pk=run.pk).status == "cancelled"


def test_vendor_edited_through_the_service_keeps_bank_details(world, make_user) -> None:
    vendor = world["vendor"]
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    inlines = {
        f"{prefix}-{key}": "0"
        for prefix in ("bank_changes", "documents")
        for key in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")
    } | {"bank_changes-MAX_NUM_FORMS": "1000", "documents-MAX_NUM_FORMS": "1000"}
    form = {
        "name": "Globex Supplies Ltd",
        "email": "ap@globex.example",
        "country": "US",
        "address": "1 Main St",
        "tax_id_type": "us_ein",
        "tax_id_new": "",
        "payment_terms_days": "45",
        "discount_percent": "1.5",
        "discount_days": "15",
        # ignored: bank details change only through a bank detail change
        "account_number_new": "11112222",
        **inlines,
    }
    # when the change form is saved
    response = client.post(change("vendor", vendor.pk), form)
    # then vendor_update changed the contact details and terms, nothing else
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = Vendor.objects.get(pk=vendor.pk)
    assert (saved.name, saved.payment_terms_days, saved.discount_days) == (
        "Globex Supplies Ltd",
        45,
        15,
    )
    assert saved.bank_account_number == ACCOUNT
    assert saved.tax_id == EIN
    # and a refusal (discount period longer than the terms) is a form error
    response = client.post(change("vendor", vendor.pk), form | {"discount_days": "60"})
    assert response.status_code == 200
    assert (
        "The discount period must be shorter than the payment terms." in response.content.decode()
    )
    assert Vendor.objects.get(pk=vendor.pk).discount_days == 15


def test_approver_delegates_only_their_own_authority(make_user) -> None:
    approver, other, stand_in = (make_user(Role.APPROVER) for _ in range(3))
    client = verified_client(approver)
    today = timezone.localdate()
    form = {
        "delegate": str(stand_in.pk),
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=5)).isoformat(),
        "reason": "Holiday",
    }
    add_url = reverse("admin:payables_approvaldelegation_add")
    # when an approver delegates someone else's authority
    response = client.post(add_url, form | {"delegator": str(other.pk)})
    # then it is refused as a form error
    assert response.status_code == 200
    assert not ApprovalDelegation.objects.exists()
    # and their own is recorded with who made it
    response = client.post(add_url, form | {"delegator": str(approver.pk)})
    assert response.status_code == 302
    delegation = ApprovalDelegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.created_by) == (
        approver,
        stand_in,
        approver,
    )


def test_bank_change_requested_in_the_admin(vendor, ap_clerk) -> None:
    client = verified_client(ap_clerk)
    response = client.post(
        reverse("admin:payables_vendorbankchange_add"),
        {
            "vendor": str(vendor.pk),
            "bank_account_holder": "Globex",
            "bank_routing_number": "011000015",
            "account_number_new": NEW_ACCOUNT,
            "bank_account_type": "checking",
            "iban_new": "",
            "bic": "",
            "reason": "Moved banks",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    requested = VendorBankChange.objects.get(vendor=vendor)
    assert (requested.status, requested.requested_by) == ("pending", ap_clerk)
    assert requested.bank_account_number == NEW_ACCOUNT
    # the vendor keeps its details (and is on hold) until a second person decides
    assert Vendor.objects.get(pk=vendor.pk).bank_account_number != NEW_ACCOUNT
    listing = client.get(changelist("vendor") + "?on_hold=yes").content.decode()
    assert vendor.name in listing
    assert NEW_ACCOUNT not in listing
