"""The approvers' screens at /approvals/: access (second factor, staff, payables view), the
inbox per role and its query count, decisions through the services, maker-checker (A2),
and attachments served only to those allowed to view them."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payables.enums import (
    BankChangeStatus,
    BillStatus,
    DocumentKind,
    ExpenseReportStatus,
    MatchStatus,
    PaymentRunStatus,
)
from payables.enums import PurchaseOrderStatus as S
from payables.models import (
    Approval,
    ApprovalDelegation,
    Bill,
    ExpenseCategory,
    ExpenseReport,
    PaymentRun,
    PurchaseOrder,
    VendorBankChange,
)
from payables.screens.documents import SCREENS, SCREENS_BY_KIND
from payables.screens.inbox import inbox_list
from payables.services.approvals import can_decide
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.expenses import (
    ExpenseLineInput,
    expense_receipt_attach,
    expense_report_create,
    expense_report_submit,
)
from payables.services.orders import (
    LineInput,
    ReceiptLineInput,
    purchase_order_approve,
    purchase_order_create,
    purchase_order_place,
    purchase_order_submit,
    purchase_order_update,
    receipt_create,
)
from payables.services.runs import payment_run_create, payment_run_submit
from payables.services.vendors import (
    BankDetails,
    vendor_bank_change_request,
    vendor_document_upload,
)
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

INBOX = "/approvals/"
PDF = b"%PDF-1.4\n% a W-9\n"
APPROVE_BUTTON = 'id="approve"'


def decide(client: Client, kind: str, pk: int, data: dict[str, str], **kw) -> HttpResponse:
    """Post a decision as the page's form does, with the version the page showed."""
    screen = SCREENS[kind]
    version = screen.version(screen.get(pk))
    return client.post(decide_url(kind, pk), {"version": version, **data}, **kw)


def detail_url(kind: str, pk: int) -> str:
    return reverse("approvals:detail", args=(kind, pk))


def decide_url(kind: str, pk: int) -> str:
    return reverse("approvals:decide", args=(kind, pk))


@pytest.fixture
def submit(ap_clerk, make_order):
    """``submit("5000.00")``: an order requested by the AP clerk (or ``requester``), pending."""

    def make(*prices: str, requester: User | None = None) -> PurchaseOrder:
        who = requester or ap_clerk
        order = make_order(*prices, requester=who)
        return purchase_order_submit(order_id=order.pk, actor=who)

    return make


@pytest.fixture
def bank_change(ap_clerk, vendor) -> VendorBankChange:
    return vendor_bank_change_request(
        vendor_id=vendor.pk,
        bank=BankDetails(
            account_holder="Globex Supplies",
            routing_number="021000021",
            account_number="99887766",
        ),
        reason="New bank",
        actor=ap_clerk,
    )


def _bill(ap_clerk, vendor, number="INV-1", amount="250.00", **kw) -> Bill:
    return bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number=number,
        currency="USD",
        bill_date=date(2026, 11, 2),
        lines=kw.pop("lines", [BillLineInput("Paper", Decimal(1), Decimal(amount))]),
        **kw,
    )


def _numbers(user: User) -> list[str]:
    return [item.number for item in inbox_list(actor=user)]


# --- access -----------------------------------------------------------------------------


def test_anonymous_goes_to_the_admin_otp_login_and_back():
    response = Client().get(INBOX)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/approvals/"


def test_signed_in_without_second_factor_goes_to_the_otp_login(make_user, submit):
    # given an approver whose session did not pass the second factor
    order = submit("5000.00")
    client = Client()
    client.force_login(make_user("approver"))
    # when they open a document
    response = client.get(detail_url("purchase-orders", order.pk))
    # then they are sent to the admin's OTP login, and back to the document afterwards
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next=/approvals/purchase-orders/{order.pk}/"
    # and a decision posted from such a session changes nothing
    response = decide(client, "purchase-orders", order.pk, {"decision": "approve"})
    assert response.status_code == 302
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert not Approval.objects.exists()


def test_admin_login_with_a_code_returns_to_the_approvals(make_user):
    # given an approver with an authenticator
    from django_otp.oath import totp

    from core.accounts import mfa_enroll

    user = make_user("approver", username="amy", mfa=False)
    device, _ = mfa_enroll(user=user)
    # when they log in through the admin's form with next=/approvals/
    response = Client().post(
        "/admin/login/?next=/approvals/",
        {
            "username": "amy",
            "password": "correct horse battery staple",
            "otp_token": f"{totp(device.bin_key):06d}",
            "next": "/approvals/",
        },
        follow=True,
    )
    # then they land on their inbox
    assert response.redirect_chain[-1][0] == "/approvals/"
    assert b"Waiting for you" in response.content


@pytest.mark.parametrize("role", ["ar_clerk", None])
def test_staff_without_payables_view_or_non_staff_get_403(role, make_user):
    # an AR clerk (staff, no payables view permission); a verified user who is not staff
    user = make_user(role)
    if role is None:
        user.user_permissions.add(Permission.objects.get(codename="view_purchaseorder"))
    assert verified_client(user).get(INBOX).status_code == 403


def test_decide_is_post_only_and_csrf_checked(make_user, submit):
    order = submit("5000.00")
    approver = make_user("approver")
    client = verified_client(approver)
    assert client.get(decide_url("purchase-orders", order.pk)).status_code == 405
    # a session client that checks CSRF, as a browser would
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    response = decide(strict, "purchase-orders", order.pk, {"decision": "approve"})
    assert response.status_code == 403
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL


# --- inbox ------------------------------------------------------------------------------


def test_inbox_lists_what_waits_for_each_role(make_user, submit, bank_change, ap_clerk):
    # given a pending bank detail change, then orders of 5,000 (an approver) and 20,000
    # (approver + controller), and one under the first level (approved at once)
    small = submit("5000.00")
    large = submit("20000.00")
    submit("500.00")
    approver, controller = make_user("approver"), make_user("controller")

    # then both see the bank change and the two pending orders, oldest first; the clerk
    # sees nothing
    change = f"Bank change {bank_change.pk}"
    assert _numbers(approver) == [change, small.number, large.number]
    assert _numbers(controller) == _numbers(approver)
    assert _numbers(ap_clerk) == []

    # when the approver fills the approver slot of the large one
    purchase_order_approve(order_id=large.pk, actor=approver)
    # then it leaves the approver's inbox (counted) and the controller sees what is left
    assert _numbers(approver) == [change, small.number]
    [item] = [i for i in inbox_list(actor=controller) if i.number == large.number]
    assert item.outstanding == ("controller",)
    # and a second approver cannot fill the controller slot: not in their inbox
    assert large.number not in _numbers(make_user("approver"))


def test_inbox_rows_show_number_party_amount_age_and_what_is_needed(make_user, submit):
    order = submit("20000.00", "1234.5")
    response = verified_client(make_user("controller")).get(INBOX)
    assert response.status_code == 200
    html = response.content.decode()
    assert order.number in html
    assert "Globex Supplies" in html
    assert "21,234.50 USD" in html
    assert "needs: controller, approver" in html
    assert re.search(r"waiting \d+\xa0minutes", html)
    assert f'href="/approvals/purchase-orders/{order.pk}/"' in html


def test_requester_who_is_an_approver_does_not_see_their_own_order(make_user, submit):
    boss = make_user("approver")
    own = submit("5000.00", requester=boss)
    other = submit("6000.00")
    assert _numbers(boss) == [other.number]
    assert own.number in _numbers(make_user("approver"))


def test_inbox_agrees_with_can_decide(make_user, submit, ap_clerk, vendor, bank_change):
    # given documents in several states of approval, and people in every approving role
    people = [make_user(r) for r in ("approver", "approver", "controller", "finance_admin")]
    people += [ap_clerk, make_user("auditor")]
    orders = [submit(p) for p in ("1500.00", "20000.00", "150000.00")]
    orders.append(submit("2500.00", requester=people[0]))
    purchase_order_approve(order_id=orders[1].pk, actor=people[0])
    purchase_order_approve(order_id=orders[2].pk, actor=people[2])
    bills = [_bill(ap_clerk, vendor, f"B-{n}", a) for n, a in enumerate(("90.00", "12000.00"))]
    bill_approve(bill_id=bills[1].pk, actor=people[1])
    documents = [*orders, *bills, bank_change]
    # and the controller away, with a delegation to the second approver written around the
    # service (an approver cannot stand in for a controller: it lends nothing)
    today = timezone.localdate()
    ApprovalDelegation.objects.create(
        delegator=people[2], delegate=people[1], starts_on=today, ends_on=today
    )
    for user in people:
        # when the inbox is built in bulk
        listed = {(i.kind, i.object_id) for i in inbox_list(actor=user)}
        # then it holds exactly the documents can_decide says the user could approve
        expected = set()
        for doc in documents:
            screen = SCREENS_BY_KIND[
                DocumentKind.BANK_CHANGE
                if isinstance(doc, VendorBankChange)
                else DocumentKind.BILL
                if isinstance(doc, Bill)
                else DocumentKind.PURCHASE_ORDER
            ]
            doc = screen.get(doc.pk)
            if screen.is_pending(doc) and can_decide(
                kind=screen.kind,
                object_id=doc.pk,
                maker_ids=screen.maker_ids(doc),
                required=screen.required(doc),
                actor=user,
            ):
                expected.add((screen.kind, doc.pk))
        assert listed == expected, user.username
    # the delegate may not fill the controller slot the 20,000 order still needs
    assert (DocumentKind.PURCHASE_ORDER, orders[1].pk) not in {
        (i.kind, i.object_id) for i in inbox_list(actor=people[1])
    }
    # (the finance admin could approve every pending document: 4 orders, 2 bills, 1 change)
    assert len({(i.kind, i.object_id) for i in inbox_list(actor=people[3])}) == 7


def _inbox_queries(user: User) -> int:
    client = verified_client(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(INBOX)
    assert response.status_code == 200
    return len(captured)


def test_inbox_query_count_does_not_grow_with_rows(make_user, submit, ap_clerk, vendor):
    # given one document of each kind
    approver = make_user("approver")
    submit("5000.00")
    _bill(ap_clerk, vendor, "Q-1")
    few = _inbox_queries(approver)
    # when there are many more, with decisions on some
    for n in range(6):
        order = submit("20000.00")
        purchase_order_approve(order_id=order.pk, actor=make_user("controller"))
        _bill(ap_clerk, vendor, f"Q-{n + 2}", f"{n + 300}.00")
    assert len(inbox_list(actor=approver)) == 14
    # then the page costs the same number of queries, and a bounded one
    assert _inbox_queries(approver) == few
    assert few <= 30


# --- purchase orders through the screen --------------------------------------------------


def test_requester_sees_no_approve_button_and_their_post_is_refused(make_user, submit):
    # given an approver who requested an order
    boss = make_user("approver")
    order = submit("5000.00", requester=boss)
    client = verified_client(boss)
    # when they open it
    page = client.get(detail_url("purchase-orders", order.pk)).content.decode()
    # then no decision form, and the reason
    assert APPROVE_BUTTON not in page
    assert "You requested it: someone else must decide on it." in page
    # when they post an approval anyway
    response = decide(
        client, "purchase-orders", order.pk, {"decision": "approve", "comment": "mine"}
    )
    # then refused with the service's reason, and nothing changed
    assert response.status_code == 403
    assert "You created or requested this document: someone else must decide on it." in (
        response.content.decode()
    )
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert not Approval.objects.exists()


def test_approve_through_the_screen_records_who_and_the_comment(make_user, submit):
    # given an order needing one approver
    order = submit("5000.00")
    approver = make_user("approver")
    client = verified_client(approver)
    page = client.get(detail_url("purchase-orders", order.pk)).content.decode()
    assert APPROVE_BUTTON in page
    assert "Item 1" in page
    # when they approve with a comment
    response = decide(
        client,
        "purchase-orders",
        order.pk,
        {"decision": "approve", "comment": "Budgeted in Q4"},
    )
    # then back to the page, approved, with the decision shown
    assert response.status_code == 302
    assert response["Location"] == detail_url("purchase-orders", order.pk)
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.APPROVED
    decision = Approval.objects.get(object_id=order.pk)
    assert (decision.user, decision.decision, decision.role, decision.comment) == (
        approver,
        "approved",
        "approver",
        "Budgeted in Q4",
    )
    page = client.get(response["Location"]).content.decode()
    assert f"You approved {order.number}." in page
    assert '<span class="status status-approved" id="status">Approved</span>' in page
    assert "Budgeted in Q4" in page
    assert APPROVE_BUTTON not in page


def test_reject_needs_a_comment_and_records_it(make_user, submit):
    order = submit("5000.00")
    client = verified_client(make_user("controller"))
    # when rejected without a reason: the form says so, nothing changes
    response = decide(client, "purchase-orders", order.pk, {"decision": "reject"})
    assert response.status_code == 400
    assert "Say why you reject it." in response.content.decode()
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    assert not Approval.objects.exists()
    # when rejected with one
    response = decide(
        client,
        "purchase-orders",
        order.pk,
        {"decision": "reject", "comment": "Use the framework contract"},
        follow=True,
    )
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.REJECTED
    assert Approval.objects.get(object_id=order.pk).comment == "Use the framework contract"
    assert "Rejected" in response.content.decode()


def test_a_stale_page_gets_the_conflict_not_a_500(make_user, submit):
    # given an order approved by someone else since the page was opened
    order = submit("5000.00")
    purchase_order_approve(order_id=order.pk, actor=make_user("approver"))
    # when a second approver posts from the old page
    response = decide(
        verified_client(make_user("approver")), "purchase-orders", order.pk, {"decision": "approve"}
    )
    # then 409 with the reason, one decision only
    assert response.status_code == 409
    assert "is approved: it cannot be approved" in response.content.decode()
    assert Approval.objects.filter(object_id=order.pk).count() == 1


def test_an_order_changed_since_the_page_was_opened_is_not_decided_unseen(
    make_user, submit, ap_clerk
):
    # given an approver's page of an order, which is then edited and resubmitted
    order = submit("5000.00")
    client = verified_client(make_user("approver"))
    page = client.get(detail_url("purchase-orders", order.pk)).content.decode()
    seen = re.search(r'name="version" value="([0-9a-f]{64})"', page).group(1)
    purchase_order_update(
        order_id=order.pk,
        actor=ap_clerk,
        lines=[LineInput(description="Other", quantity=Decimal(3), unit_price=Decimal("3000"))],
    )
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    # when they approve from the old page
    response = client.post(
        decide_url("purchase-orders", order.pk), {"decision": "approve", "version": seen}
    )
    # then 409, nothing recorded, and the current version is shown to decide on
    assert response.status_code == 409
    assert "It changed since you opened it" in response.content.decode()
    assert "9,000.00 USD" in response.content.decode()
    assert not Approval.objects.exists()
    assert PurchaseOrder.objects.get(pk=order.pk).status == S.PENDING_APPROVAL
    # and a post without the version is a form error
    response = client.post(decide_url("purchase-orders", order.pk), {"decision": "approve"})
    assert response.status_code == 400
    assert not Approval.objects.exists()


def test_detail_shows_history_and_void_marks(make_user, submit, ap_clerk):
    # given an approval voided by an edit, and the order resubmitted (C5)
    order = submit("5000.00")
    approver = make_user("approver", username="vera")
    purchase_order_approve(order_id=order.pk, actor=approver, comment="ok then")
    purchase_order_update(
        order_id=order.pk,
        actor=ap_clerk,
        lines=[LineInput(description="Bigger", quantity=Decimal(2), unit_price=Decimal("3000"))],
    )
    purchase_order_submit(order_id=order.pk, actor=ap_clerk)
    # when the approver opens it again
    page = verified_client(approver).get(detail_url("purchase-orders", order.pk)).content.decode()
    # then the void decision is shown with its reason, the history lists the changes, and
    # the approver may decide again on the new version
    assert "ok then" in page
    assert "edited after the decision" in page
    assert 'class="decision voided"' in page
    assert "Pending approval \u2192 Approved" not in page  # statuses are shown by name
    assert "status: approved \u2192 draft" in page
    assert "6,000.00 USD" in page
    assert APPROVE_BUTTON in page


# --- other kinds --------------------------------------------------------------------------


def test_bank_change_needs_a_second_person_on_the_screen(make_user, bank_change, ap_clerk):
    # the requester (an AP clerk) has no decision form and cannot decide by posting
    clerk = verified_client(ap_clerk)
    page = clerk.get(detail_url("bank-changes", bank_change.pk)).content.decode()
    assert APPROVE_BUTTON not in page
    assert "\u2022\u2022\u2022\u20227766" in page or "7766" in page
    assert "99887766" not in page  # shown masked
    response = decide(clerk, "bank-changes", bank_change.pk, {"decision": "approve"})
    assert response.status_code == 403
    assert VendorBankChange.objects.get(pk=bank_change.pk).status == BankChangeStatus.PENDING
    # an approver approves it, and the vendor's details change
    approver = verified_client(make_user("approver"))
    response = decide(
        approver,
        "bank-changes",
        bank_change.pk,
        {"decision": "approve", "comment": "Called the vendor back"},
    )
    assert response.status_code == 302
    change = VendorBankChange.objects.select_related("vendor").get(pk=bank_change.pk)
    assert (change.status, change.comment) == (BankChangeStatus.APPROVED, "Called the vendor back")
    assert change.vendor.bank_account_number == "99887766"


def test_bill_with_match_exception_needs_the_box_ticked(make_user, ap_clerk, vendor):
    # given a bill billing 10 of an order line of which 8 were received
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
    bill = _bill(
        ap_clerk,
        vendor,
        purchase_order_id=order.pk,
        lines=[BillLineInput("Toner", Decimal(10), Decimal("20.00"), order_line_id=line.pk)],
    )
    assert bill.match_status == MatchStatus.EXCEPTION
    approver = make_user("approver")
    client = verified_client(approver)
    # the inbox flags it; the page shows the match and offers the box
    [item] = inbox_list(actor=approver)
    assert item.flag == "Match exception"
    page = client.get(detail_url("bills", bill.pk)).content.decode()
    assert "Three-way match" in page
    assert '<td class="num" data-label="Received">8</td>' in page
    assert "billed 10 vs 8 received" in page
    assert 'name="accept_match_exception"' in page
    # when approved without ticking it: the service's reason, nothing changed
    response = decide(client, "bills", bill.pk, {"decision": "approve"})
    assert response.status_code == 409
    assert "an approver must accept the difference" in response.content.decode()
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.PENDING_APPROVAL
    assert not Approval.objects.filter(kind=DocumentKind.BILL).exists()
    # when ticked
    response = decide(
        client,
        "bills",
        bill.pk,
        {"decision": "approve", "accept_match_exception": "on", "comment": "2 more Monday"},
    )
    assert response.status_code == 302
    bill.refresh_from_db()
    assert (bill.status, bill.match_status) == (BillStatus.APPROVED, MatchStatus.OVERRIDDEN)


def test_expense_report_approve_and_receipt_served(make_user):
    # given an employee's report with a receipt
    employee = make_user("ar_clerk", username="emma")
    category = ExpenseCategory.objects.get(name="Office supplies")
    report = expense_report_create(
        title="Stationery",
        currency="USD",
        actor=employee,
        lines=[ExpenseLineInput(date(2026, 11, 3), category.pk, "Pens", Decimal("42.00"))],
    )
    expense_receipt_attach(
        line_id=report.lines.get().pk,
        upload=SimpleUploadedFile("pens.pdf", PDF, content_type="application/pdf"),
        actor=employee,
    )
    expense_report_submit(report_id=report.pk, actor=employee)
    approver = make_user("approver")
    client = verified_client(approver)
    assert [i.party for i in inbox_list(actor=approver)] == ["emma"]
    # the receipt is linked and served to the approver
    page = client.get(detail_url("expense-reports", report.pk)).content.decode()
    line = report.lines.get()
    file_url = reverse("approvals:file", args=("expense-reports", report.pk, f"receipt-{line.pk}"))
    assert file_url in page
    response = client.get(file_url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert 'filename="pens.pdf"' in response["Content-Disposition"]
    # approved through the screen
    decide(client, "expense-reports", report.pk, {"decision": "approve"})
    assert ExpenseReport.objects.get(pk=report.pk).status == ExpenseReportStatus.APPROVED


def test_payment_run_reject_through_the_screen(make_user, ap_clerk, vendor):
    bill = _bill(ap_clerk, vendor, "R-1", "300.00")
    bill_approve(bill_id=bill.pk, actor=make_user("approver"))
    run = payment_run_create(currency="USD", pay_by=date(2026, 12, 31), actor=ap_clerk)
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    client = verified_client(make_user("controller"))
    page = client.get(detail_url("payment-runs", run.pk)).content.decode()
    assert "Globex Supplies" in page
    assert "300.00 USD" in page
    response = decide(
        client, "payment-runs", run.pk, {"decision": "reject", "comment": "Hold till Friday"}
    )
    assert response.status_code == 302
    assert PaymentRun.objects.get(pk=run.pk).status == PaymentRunStatus.CANCELLED
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.APPROVED


# --- attachments --------------------------------------------------------------------------


def test_vendor_documents_only_for_users_allowed_to_view_them(make_user, submit, ap_clerk, vendor):
    # given a W-9 on the vendor of a pending order
    document = vendor_document_upload(
        vendor_id=vendor.pk,
        kind="w9",
        upload=SimpleUploadedFile("w9.pdf", PDF, content_type="application/pdf"),
        actor=ap_clerk,
    )
    order = submit("5000.00")
    url = reverse(
        "approvals:file", args=("purchase-orders", order.pk, f"vendor-document-{document.pk}")
    )
    # an approver gets it as a download
    response = verified_client(make_user("approver")).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"".join(response.streaming_content) == PDF
    # a staff user who may view orders but not vendor documents sees no link and gets 404
    viewer = make_user("ar_clerk")
    viewer.user_permissions.add(Permission.objects.get(codename="view_purchaseorder"))
    client = verified_client(viewer)
    page = client.get(detail_url("purchase-orders", order.pk)).content.decode()
    assert url not in page
    assert client.get(url).status_code == 404
    # and a kind they may not view at all is 403
    assert client.get(detail_url("bank-changes", 1)).status_code == 403
