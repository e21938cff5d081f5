"""Payables change lists: "Waiting for me" lists what the approvals inbox lists for the user,
"Overdue" the unpaid bills past their due date, the search box finds an exact amount, and
amounts read with separators and their currency."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from payables.models import Bill
from payables.services.bills import BillLineInput, bill_create
from payables.services.orders import purchase_order_submit
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db


def listed(response) -> list[int]:
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.fixture
def bills(vendor, ap_clerk) -> dict[str, Bill]:
    today = timezone.localdate()

    def make(number: str, price: str, days_ago: int) -> Bill:
        return bill_create(
            actor=ap_clerk,
            vendor_id=vendor.pk,
            number=number,
            currency="USD",
            bill_date=today - timedelta(days=days_ago),
            lines=[BillLineInput("Service", D(1), D(price))],
        )

    # Globex's terms are 30 days: the first is overdue, the second not yet due.
    return {"old": make("OLD-1", "3371.24", 45), "new": make("NEW-1", "120.00", 2)}


def test_overdue_lists_unpaid_bills_past_their_due_date(bills, make_user) -> None:
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    # when the overdue filter is chosen
    response = client.get(reverse("admin:payables_bill_changelist") + "?due=overdue")
    # then only the bill past its due date is listed
    assert listed(response) == [bills["old"].pk]


def test_search_finds_an_exact_amount_and_amounts_read_as_money(bills, make_user) -> None:
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    # when someone searches for the amount as it reads on paper
    response = client.get(reverse("admin:payables_bill_changelist") + "?q=3,371.24")
    # then the bill of that amount is found, shown with separators and currency
    assert listed(response) == [bills["old"].pk]
    assert "3,371.24 USD" in response.content.decode()


def test_waiting_for_me_is_what_the_inbox_lists(bills, make_order, ap_clerk, make_user) -> None:
    # given an order requested by an approver, and another by the clerk
    approver = make_user(Role.APPROVER)
    own = purchase_order_submit(
        order_id=make_order("5000.00", requester=approver).pk, actor=approver
    )
    other = purchase_order_submit(order_id=make_order("5000.00").pk, actor=ap_clerk)
    client = verified_client(approver)
    # when the approver lists what waits for them
    orders = client.get(reverse("admin:payables_purchaseorder_changelist") + "?waiting=me")
    bill_list = client.get(reverse("admin:payables_bill_changelist") + "?waiting=me")
    # then their own order is not there (someone else decides it), the clerk's is, and both
    # bills the clerk captured are
    assert listed(orders) == [other.pk]
    assert own.pk not in listed(orders)
    assert sorted(listed(bill_list)) == sorted(b.pk for b in bills.values())
    # and the clerk, who may approve nothing, has nothing waiting
    clerk_list = verified_client(ap_clerk).get(
        reverse("admin:payables_bill_changelist") + "?waiting=me"
    )
    assert listed(clerk_list) == []


def test_vendor_page_has_its_open_bills_in_a_tab(bills, vendor, make_user) -> None:
    # when a finance admin opens the vendor
    page = verified_client(make_user(Role.FINANCE_ADMIN)).get(
        reverse("admin:payables_vendor_change", args=[vendor.pk])
    )
    # then the tabs list its open bills with their amounts, linking to each bill
    html = page.content.decode()
    for label in ("Open bills", "Payments", "Orders", "Bank detail changes"):
        assert label in html
    assert reverse("admin:payables_bill_change", args=[bills["old"].pk]) in html
    assert "3,371.24 USD" in html
