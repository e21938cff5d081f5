"""Credit limits and holds: refusal with nothing changed, override by an approver, holds,
subscriptions, the customer API fields, and concurrent issues (billing.services.credit)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Subscription
from billing.services import credit as credit_module
from billing.services.credit import CreditHoldActive, CreditLimitExceeded
from billing.services.customers import customer_create, customer_update
from billing.services.invoices import LineInput, invoice_create, invoice_issue
from billing.services.payments import payment_record
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.models import DocumentCounter
from core.roles import Role

D = Decimal
pytestmark = pytest.mark.django_db


def _lines(amount: str) -> list[LineInput]:
    return [LineInput(description="Work", quantity=D(1), unit_price=D(amount), tax_rate=D(0))]


@pytest.fixture
def admin(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def approver(make_user):
    """An approver who also issues invoices (an approver alone cannot issue)."""
    user = make_user(Role.APPROVER)
    user.groups.add(Group.objects.get(name=Role.AR_CLERK))
    return user


@pytest.fixture
def limited(admin, clerk, customer, make_invoice) -> Customer:
    """Acme with a 1,000.00 limit and 600.00 open."""
    customer_update(actor=admin, customer_id=customer.pk, credit_limit=D("1000"))
    make_invoice("600.00")
    return Customer.objects.get(pk=customer.pk)


def _numbers_taken() -> int:
    return sum(DocumentCounter.objects.values_list("last_number", flat=True))


def test_issue_beyond_the_limit_is_refused_and_nothing_changes(clerk, limited, make_invoice):
    # given a 500.00 draft: 600 + 500 > 1000
    draft = make_invoice("500.00", issue=False)
    entries, numbers = JournalEntry.objects.count(), _numbers_taken()
    # when
    with pytest.raises(CreditLimitExceeded) as refused:
        invoice_issue(actor=clerk, invoice_id=draft.pk)
    # then
    assert refused.value.code == "credit_limit_exceeded"
    assert refused.value.status_code == 409
    assert refused.value.details == {
        "limit": "1000.00",
        "exposure": "600.00",
        "amount": "500.00",
        "currency": "USD",
    }
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.ledger_entry_id) == (InvoiceStatus.DRAFT, None, None)
    assert draft.credit_override_by is None
    assert JournalEntry.objects.count() == entries
    assert _numbers_taken() == numbers


def test_issue_up_to_the_limit_passes_and_credit_balance_reduces_exposure(
    clerk, limited, make_invoice
):
    # given exactly the 400.00 left, then 100.00 of customer credit
    assert make_invoice("400.00").status == InvoiceStatus.OPEN
    with pytest.raises(CreditLimitExceeded):
        make_invoice("0.01")
    payment_record(
        actor=clerk, customer_id=limited.pk, amount=D("100.00"), currency="USD", method="ach"
    )
    # when the payment settled 100 of the open items: 900 owed, 100 available
    # then 100.00 fits and a cent more does not
    assert make_invoice("100.00").status == InvoiceStatus.OPEN
    with pytest.raises(CreditLimitExceeded):
        make_invoice("0.01")


def test_exposure_converts_other_currencies_at_todays_rate(admin, clerk, customer, make_invoice):
    # given a USD customer with a 200.00 EUR invoice open, EUR at 1.10 today
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=timezone.localdate())
    make_invoice("200.00", currency="EUR")
    customer_update(actor=admin, customer_id=customer.pk, credit_limit=D("300"))
    # when / then 220.00 USD exposure: 80.00 fits, 80.01 does not
    exposure = credit_module.customer_exposure(customer=Customer.objects.get(pk=customer.pk))
    assert (exposure.total, exposure.converted_from) == (D("220.00"), ("EUR",))
    with pytest.raises(CreditLimitExceeded):
        make_invoice("80.01")
    assert make_invoice("80.00").status == InvoiceStatus.OPEN


def test_approver_overrides_and_is_recorded(approver, limited, make_invoice):
    draft = make_invoice("500.00", issue=False)
    # when
    invoice = invoice_issue(actor=approver, invoice_id=draft.pk, override_credit_limit=True)
    # then issued, and the invoice and its history say who let it through
    assert invoice.status == InvoiceStatus.OPEN
    invoice.refresh_from_db()
    assert invoice.credit_override_by == approver
    assert invoice.history.latest().credit_override_by_id == approver.pk


def test_override_not_needed_is_not_recorded(approver, limited, make_invoice):
    draft = make_invoice("10.00", issue=False)
    invoice = invoice_issue(actor=approver, invoice_id=draft.pk, override_credit_limit=True)
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.credit_override_by is None


def test_clerk_cannot_override(clerk, limited, make_invoice):
    draft = make_invoice("500.00", issue=False)
    entries = JournalEntry.objects.count()
    with pytest.raises(PermissionDeniedError):
        invoice_issue(actor=clerk, invoice_id=draft.pk, override_credit_limit=True)
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, None)
    assert JournalEntry.objects.count() == entries


def test_credit_hold_refuses_every_issue_even_with_override(
    admin, approver, customer, make_invoice
):
    # given a customer on hold, with no limit
    draft = make_invoice("1.00", issue=False)
    customer_update(
        actor=admin, customer_id=customer.pk, credit_hold=True, credit_hold_reason="Bounced ACH"
    )
    # when / then
    for override in (False, True):
        with pytest.raises(CreditHoldActive) as refused:
            invoice_issue(actor=approver, invoice_id=draft.pk, override_credit_limit=override)
        assert refused.value.code == "credit_hold"
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT
    # and lifting the hold clears the reason and lets it through
    lifted = customer_update(actor=admin, customer_id=customer.pk, credit_hold=False)
    assert (lifted.credit_hold, lifted.credit_hold_reason) == (False, "")
    assert invoice_issue(actor=approver, invoice_id=draft.pk).status == InvoiceStatus.OPEN


def test_credit_fields_need_manage_credit(admin, clerk, customer):
    with pytest.raises(PermissionDeniedError):
        customer_update(actor=clerk, customer_id=customer.pk, credit_limit=D("5000"))
    with pytest.raises(PermissionDeniedError):
        customer_create(
            actor=clerk, name="B", email="b@x.example", currency="USD", credit_limit=D("1")
        )
    # sending the unchanged values back is fine
    customer_update(actor=clerk, customer_id=customer.pk, credit_limit=None, credit_hold=False)
    # a hold needs a reason; limits are rounded to the currency
    from billing.exceptions import BillingError

    with pytest.raises(BillingError):
        customer_update(actor=admin, customer_id=customer.pk, credit_hold=True)
    jpy = customer_create(
        actor=admin, name="J", email="j@x.example", currency="JPY", credit_limit=D("1000.6")
    )
    assert jpy.credit_limit == D("1001")


@pytest.fixture
def plan(db):
    product = product_create(actor=None, name="Pro plan")
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("150.00"),
    )


def test_subscription_start_beyond_the_limit_is_refused(admin, approver, limited, plan):
    # given 600 open of 1000: three seats (450.00) do not fit
    items = [ItemInput(price_id=plan.pk, quantity=D(3))]
    with pytest.raises(CreditLimitExceeded) as refused:
        subscription_create(actor=admin, customer_id=limited.pk, items=items)
    assert refused.value.details["amount"] == "450.00"
    assert not Subscription.objects.exists()
    # two seats fit
    assert subscription_create(
        actor=admin, customer_id=limited.pk, items=[ItemInput(price_id=plan.pk, quantity=D(2))]
    )
    # an approver overrides, and the history says so
    approver.groups.add(Group.objects.get(name=Role.FINANCE_ADMIN))
    sub = subscription_create(
        actor=approver, customer_id=limited.pk, items=items, override_credit_limit=True
    )
    assert sub.history.earliest().history_change_reason == f"credit limit overridden by {approver}"


def test_subscription_refused_on_hold(admin, customer, plan):
    customer_update(actor=admin, customer_id=customer.pk, credit_hold=True, credit_hold_reason="x")
    with pytest.raises(CreditHoldActive):
        subscription_create(
            actor=admin, customer_id=customer.pk, items=[ItemInput(price_id=plan.pk)]
        )
    assert not Subscription.objects.exists()


def test_late_fees_and_subscription_periods_are_not_new_credit(admin, customer, plan):
    # given a customer on hold
    sub = subscription_create(
        actor=admin, customer_id=customer.pk, items=[ItemInput(price_id=plan.pk)]
    )
    customer_update(actor=admin, customer_id=customer.pk, credit_hold=True, credit_hold_reason="x")
    # when the system issues a late fee and the period's invoice
    fee = invoice_create(actor=None, customer_id=customer.pk, lines=_lines("15.00"))
    fee = invoice_issue(actor=None, invoice_id=fee.pk, income_role=AccountRole.LATE_FEE_INCOME)
    period = invoice_create(
        actor=None,
        customer_id=customer.pk,
        lines=_lines("150.00"),
        subscription_id=sub.pk,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
    )
    period = invoice_issue(actor=None, invoice_id=period.pk)
    # then both are issued; an ordinary invoice is not
    assert (fee.status, period.status) == (InvoiceStatus.OPEN, InvoiceStatus.OPEN)
    with pytest.raises(CreditHoldActive):
        invoice_create(actor=None, customer_id=customer.pk, lines=_lines("1.00"), issue=True)


# --- API ------------------------------------------------------------------------------------


def test_api_issue_refused_with_409(client_for, limited, make_invoice):
    draft = make_invoice("500.00", issue=False)
    entries, numbers = JournalEntry.objects.count(), _numbers_taken()
    response = client_for(Role.AR_CLERK).post(
        f"/api/billing/invoices/{draft.pk}/issue", {}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "credit_limit_exceeded"
    assert body["details"] == {
        "limit": "1000.00",
        "exposure": "600.00",
        "amount": "500.00",
        "currency": "USD",
    }
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, None)
    assert (JournalEntry.objects.count(), _numbers_taken()) == (entries, numbers)


def test_api_override_by_role(client_for, limited, make_invoice):
    draft = make_invoice("500.00", issue=False)
    url = f"/api/billing/invoices/{draft.pk}/issue"
    body = {"override_credit_limit": True}
    # an ar_clerk may not override
    refused = client_for(Role.AR_CLERK).post(url, body, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    # a finance_admin may
    response = client_for(Role.FINANCE_ADMIN).post(url, body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "open"
    assert Invoice.objects.get(pk=draft.pk).credit_override_by is not None


def test_api_create_with_issue_refused_creates_nothing(client_for, limited):
    count = Invoice.objects.count()
    payload = {
        "customer": limited.pk,
        "issue": True,
        "lines": [{"description": "Work", "quantity": "1", "unit_price": "500.00"}],
    }
    response = client_for(Role.AR_CLERK).post("/api/billing/invoices", payload, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "credit_limit_exceeded")
    assert Invoice.objects.count() == count
    response = client_for(Role.FINANCE_ADMIN).post(
        "/api/billing/invoices", {**payload, "override_credit_limit": True}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_api_subscription_refused_and_overridden(client_for, limited, plan):
    payload = {"customer": limited.pk, "items": [{"price": plan.pk, "quantity": "3"}]}
    response = client_for(Role.FINANCE_ADMIN).post(
        "/api/billing/subscriptions", payload, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "credit_limit_exceeded")
    response = client_for(Role.FINANCE_ADMIN).post(
        "/api/billing/subscriptions", {**payload, "override_credit_limit": True}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_api_customer_credit_fields(client_for, customer):
    url = f"/api/billing/customers/{customer.pk}"
    assert client_for(Role.AR_CLERK).get(url).json()["credit_limit"] is None
    # a clerk may not set a limit
    refused = client_for(Role.AR_CLERK).patch(url, {"credit_limit": "5000.00"}, format="json")
    assert refused.status_code == 403
    admin = client_for(Role.FINANCE_ADMIN)
    body = admin.patch(
        url,
        {"credit_limit": "5000", "credit_hold": True, "credit_hold_reason": "Review"},
        format="json",
    ).json()
    assert (body["credit_limit"], body["credit_hold"], body["credit_hold_reason"]) == (
        "5000.00",
        True,
        "Review",
    )
    # floats are refused; null removes the limit
    assert admin.patch(url, {"credit_limit": 5000.5}, format="json").status_code == 400
    assert admin.patch(url, {"credit_limit": None}, format="json").json()["credit_limit"] is None
    # a clerk sending the customer back unchanged is fine
    current = admin.get(url).json()
    echo = {k: current[k] for k in ("name", "email", "currency", "credit_limit", "credit_hold")}
    assert client_for(Role.AR_CLERK).put(url, echo, format="json").status_code == 200


# --- Concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_issues_cannot_both_pass_the_limit(make_user, monkeypatch) -> None:
    # given a 1,000.00 limit and two 600.00 drafts
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(
        actor=admin, name="Acme", email="a@x.example", currency="USD", credit_limit=D("1000")
    )
    drafts = [
        invoice_create(actor=admin, customer_id=customer.pk, lines=_lines("600.00"))
        for _ in range(2)
    ]
    # a slow exposure read: without the customer lock both would read 0 and pass
    real = credit_module.customer_exposure

    def slow(**kwargs):
        result = real(**kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(credit_module, "customer_exposure", slow)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    guard = threading.Lock()

    def issue(invoice_id: int) -> None:
        barrier.wait()
        try:
            invoice_issue(actor=admin, invoice_id=invoice_id)
            result = "ok"
        except CreditLimitExceeded:
            result = "409"
        finally:
            connection.close()
        with guard:
            outcomes.append(result)

    # when both are issued at once
    threads = [threading.Thread(target=issue, args=(d.pk,)) for d in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then one passes, one is refused
    assert sorted(outcomes) == ["409", "ok"]
    statuses = sorted(Invoice.objects.values_list("status", flat=True))
    assert statuses == [InvoiceStatus.DRAFT, InvoiceStatus.OPEN]
