"""The credit limit and hold page of the admin (receivables.admin_credit)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Customer
from billing.services.customers import customer_create
from core.roles import Role
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer() -> Customer:
    return customer_create(actor=None, name="Acme GmbH", email="ap@acme.test", currency="EUR")


def credit_url(customer: Customer) -> str:
    return reverse("admin:receivables_customer_credit", args=[customer.pk])


def test_a_finance_admin_sets_the_limit_and_hold_through_the_service(make_user, customer):
    # given a finance admin on the credit page
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    # when they set a limit and a hold with a reason
    response = client.post(
        credit_url(customer),
        {"credit_limit": "25000.456", "credit_hold": "on", "credit_hold_reason": "Cheque bounced"},
    )
    # then they are back on the customer page and the customer has both, rounded to cents
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_customer_change", args=[customer.pk])
    customer.refresh_from_db()
    assert customer.credit_limit == Decimal("25000.46")
    assert customer.credit_hold is True
    assert customer.credit_hold_reason == "Cheque bounced"
    # and the change is in the customer's history, with who made it
    latest = customer.history.order_by("-history_id").first()
    assert latest.credit_limit == Decimal("25000.46")
    assert latest.history_user.groups.filter(name=Role.FINANCE_ADMIN).exists()


def test_an_approver_may_set_credit_without_changing_customers(make_user, customer):
    # given an approver (billing.manage_credit, not billing.change_customer)
    approver = make_user(Role.APPROVER)
    assert not approver.has_perm("billing.change_customer")
    client = verified_client(approver)
    # when they lower the limit
    response = client.post(credit_url(customer), {"credit_limit": "1000"})
    # then it is saved
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.credit_limit == Decimal("1000.00")


@pytest.mark.parametrize("role", [Role.AR_CLERK, Role.CONTROLLER, Role.AUDITOR])
def test_roles_without_manage_credit_are_refused(make_user, customer, role):
    # given a staff user whose role may not set credit
    client = verified_client(make_user(role))
    # when they open or post the page
    opened = client.get(credit_url(customer))
    posted = client.post(credit_url(customer), {"credit_limit": "99999"})
    # then both are refused and nothing changed
    assert opened.status_code == 403
    assert posted.status_code == 403
    customer.refresh_from_db()
    assert customer.credit_limit is None


def test_a_hold_without_reason_is_refused_on_the_form(make_user, customer):
    # given a finance admin
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    # when they put the customer on hold without a reason
    response = client.post(credit_url(customer), {"credit_limit": "500", "credit_hold": "on"})
    # then the page is shown again with the service's refusal beside the reason
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "credit_hold_reason": ["A credit hold needs a reason."]
    }
    # and nothing changed
    customer.refresh_from_db()
    assert customer.credit_hold is False
    assert customer.credit_limit is None


def test_the_panel_offers_the_edit_link_only_to_those_who_may_use_it(make_user, customer):
    # given the customer's page
    page = reverse("admin:billing_customer_change", args=[customer.pk])
    # when a finance admin and an AR clerk open it
    admin_page = verified_client(make_user(Role.FINANCE_ADMIN)).get(page)
    clerk_page = verified_client(make_user(Role.AR_CLERK)).get(page)
    # then only the finance admin sees the link to the credit page
    assert admin_page.status_code == clerk_page.status_code == 200
    assert credit_url(customer) in admin_page.content.decode()
    assert credit_url(customer) not in clerk_page.content.decode()
