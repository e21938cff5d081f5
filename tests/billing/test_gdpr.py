"""GDPR for customers: the export holds everything (history included) and is logged; the
erasure pseudonymises the customer and its history rows, keeps invoices and the ledger as they
were, is refused while open items remain, is idempotent, logged, and for finance admins only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.utils import timezone

from billing.models import Customer, Invoice, PaymentMethod
from billing.services.customers import customer_create, customer_update
from billing.services.payment_methods import payment_method_add
from billing.services.payments import payment_record
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from core.gdpr import personal_data_log_list
from core.ledger.checks import ledger_check_run
from core.ledger.models import JournalEntry, JournalLine
from core.roles import Role
from receivables.services.disputes import dispute_open
from receivables.services.payment_plans import payment_plan_create
from reporting.compliance import personal_data_table
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

PERSONAL = ("Ada Lovelace", "ada@lovelace.example", "12 St James's Square", "SW1Y 4JH")


@pytest.fixture
def admin(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def admin_client(admin):
    return verified_client(admin)


@pytest.fixture
def person(clerk, admin, make_invoice) -> Customer:
    """A customer with personal data, a saved bank account, a changed address (two history
    rows) and an invoice issued and paid in full (nothing open)."""
    customer = customer_create(
        actor=clerk,
        name="Ada Lovelace",
        email="ada@lovelace.example",
        cc_emails=["babbage@engine.example"],
        currency="USD",
        address_line1="12 St James's Square",
        city="London",
        postal_code="SW1Y 4JH",
        country="GB",
    )
    customer_update(actor=clerk, customer_id=customer.pk, address_line2="Flat 3")
    payment_method_add(
        actor=admin,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder="Ada Lovelace",
        bank_routing_number="011000015",
        bank_account_number="000123456789",
    )
    invoice = make_invoice("120.00", on=customer)
    payment_record(
        actor=admin,
        customer_id=customer.pk,
        amount=Decimal("120.00"),
        currency="USD",
        method="wire_transfer",
        received_date=timezone.localdate(),
    )
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    return customer


def _raw(table: str, where: str, params: list[object]) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {where}", params)
        return cursor.fetchall()


def _text(rows: list[tuple[object, ...]]) -> str:
    return repr(rows)


def _ledger() -> list[tuple[object, ...]]:
    return list(
        JournalLine.objects.order_by("pk").values_list("entry_id", "debit", "credit", "currency")
    )


# --------------------------------------------------------------------------------- export


def test_export_holds_the_record_methods_documents_and_history_and_is_logged(
    person, admin, admin_client
) -> None:
    # when a finance admin exports the customer
    response = admin_client.get(f"/api/billing/customers/{person.pk}/export")
    # then it is a JSON attachment of everything held
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-{person.pk}-personal-data.json"'
    )
    data = response.json()
    assert data["subject"] == {"type": "customer", "id": person.pk}
    assert data["customer"]["name"] == "Ada Lovelace"
    assert data["customer"]["cc_emails"] == ["babbage@engine.example"]
    assert data["customer"]["credit_balance"] == {"amount": "0.0000", "currency": "USD"}
    (method,) = data["payment_methods"]
    assert method["bank_account_masked"] == "\u2022\u2022\u2022\u20226789"
    assert method["bank_account_holder"] == "Ada Lovelace"
    assert "000123456789" not in response.content.decode()
    assert "processor_token" not in method
    (invoice,) = data["invoices"]
    assert (invoice["status"], invoice["total"]) == (
        "paid",
        {"amount": "120.0000", "currency": "USD"},
    )
    assert invoice["number"].startswith("INV-")
    assert [p["amount"]["amount"] for p in data["payments"]] == ["120.0000"]
    assert data["receivables"] == {
        "payment_plans": [],
        "disputes": [],
        "collection_pauses": [],
        "collection_steps": [],
    }
    history = data["history"]["customer"]
    assert [h["history_type"] for h in history] == ["created", "changed"]
    assert [h["address_line2"] for h in history] == ["", "Flat 3"]
    assert history[0]["name"] == "Ada Lovelace"
    assert len(data["history"]["payment_methods"]) == 1
    assert data["history"]["payment_methods"][0]["bank_account_number"] == (
        "\u2022\u2022\u2022\u20226789"
    )
    # and the export is logged: who, whom, when
    (entry,) = personal_data_log_list()
    assert (entry.user_id, entry.object_id, entry.change_message) == (
        admin.pk,
        str(person.pk),
        "GDPR export",
    )
    assert entry.content_type.model == "customer"


def test_export_of_an_unknown_customer_is_404_and_logs_nothing(admin_client) -> None:
    assert admin_client.get("/api/billing/customers/999999/export").status_code == 404
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(
    "role",
    [Role.AR_CLERK, Role.AP_CLERK, Role.APPROVER, Role.CONTROLLER, Role.AUDITOR, Role.INTEGRATION],
)
def test_other_roles_may_neither_export_nor_erase(person, client_for, role) -> None:
    # given a person in another role
    client = client_for(role)
    # when they ask for the export or the erasure
    exported = client.get(f"/api/billing/customers/{person.pk}/export")
    erased = client.post(f"/api/billing/customers/{person.pk}/erase", {"reason": "asked"})
    # then both are refused, and nothing changed or was logged
    assert (exported.status_code, erased.status_code) == (403, 403)
    assert Customer.objects.get(pk=person.pk).name == "Ada Lovelace"
    assert not LogEntry.objects.exists()


def test_anonymous_and_unverified_staff_are_refused(person, make_user, client) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/billing/customers/{person.pk}/export").status_code in (401, 403)
    unverified = APIClient()
    unverified.force_login(make_user(Role.FINANCE_ADMIN))
    assert unverified.post(
        f"/api/billing/customers/{person.pk}/erase", {"reason": "x"}
    ).status_code in (401, 403)
    assert Customer.objects.get(pk=person.pk).erased_at is None


# -------------------------------------------------------------------------------- erasure


def test_erasure_pseudonymises_the_customer_and_its_history_and_keeps_the_books(
    person, admin, admin_client, django_capture_on_commit_callbacks
) -> None:
    # given the books as they are
    invoice = Invoice.objects.get(customer=person)
    invoice_before = (invoice.number, invoice.total, invoice.amount_paid, invoice.snapshot)
    ledger_before = _ledger()
    history_count = Customer.history.filter(id=person.pk).count()  # type: ignore[attr-defined]
    # when a finance admin erases the customer
    response = admin_client.post(
        f"/api/billing/customers/{person.pk}/erase",
        {"reason": "Data subject request #42"},
        format="json",
    )
    # then the customer is pseudonymised
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == f"Erased customer {person.pk}"
    assert body["email"] == f"erased-customer-{person.pk}@erased.invalid"
    assert body["erased_at"] is not None
    # and no personal value is left in its row or any of its history rows (raw columns)
    row = _raw("billing_customer", "id = %s", [person.pk])
    history = _raw("billing_historicalcustomer", "id = %s", [person.pk])
    assert len(history) == history_count + 1
    for value in (*PERSONAL, "babbage@engine.example", "Flat 3"):
        assert value not in _text(row)
        assert value not in _text(history)
    # and its saved method is removed, its holder and account number erased (history too)
    method = PaymentMethod.objects.get(customer=person)
    assert method.detached_at is not None
    assert (method.bank_account_holder, method.bank_account_number) == ("", "")
    method_rows = _raw("billing_historicalpaymentmethod", "id = %s", [method.pk])
    assert "Ada Lovelace" not in _text(method_rows)
    assert "fernet:" not in _text(method_rows)
    assert "fernet:" not in _text(_raw("billing_paymentmethod", "id = %s", [method.pk]))
    # and the invoice, the payments and the ledger are exactly as they were
    invoice.refresh_from_db()
    assert (invoice.number, invoice.total, invoice.amount_paid, invoice.snapshot) == invoice_before
    assert invoice.snapshot["customer"]["name"] == "Ada Lovelace"  # as issued: kept by law
    assert _ledger() == ledger_before
    run = ledger_check_run()
    assert run.ok, run.problems
    # and the erasure is logged with its reason and actor, in the admin log and the history
    (entry,) = personal_data_log_list()
    assert (entry.user_id, entry.change_message) == (
        admin.pk,
        "GDPR erasure: Data subject request #42",
    )
    latest = Customer.history.filter(id=person.pk).latest("history_date")  # type: ignore[attr-defined]
    assert (latest.history_user_id, latest.history_change_reason) == (
        admin.pk,
        "GDPR erasure: Data subject request #42",
    )
    today = timezone.localdate()
    report = personal_data_table(today, today)
    assert [row.cells[4:] for row in report.rows] == [["Erasure", "Data subject request #42"]]


def test_erasure_is_idempotent(person, admin_client) -> None:
    # given an erased customer
    first = admin_client.post(
        f"/api/billing/customers/{person.pk}/erase", {"reason": "asked"}, format="json"
    )
    history = list(Customer.history.filter(id=person.pk).values())  # type: ignore[attr-defined]
    logs = LogEntry.objects.count()
    # when it is erased again
    second = admin_client.post(
        f"/api/billing/customers/{person.pk}/erase", {"reason": "asked again"}, format="json"
    )
    # then the same answer, and nothing changed or was logged
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert list(Customer.history.filter(id=person.pk).values()) == history  # type: ignore[attr-defined]
    assert LogEntry.objects.count() == logs


def test_an_erased_customer_cannot_be_edited_back(person, admin, admin_client) -> None:
    admin_client.post(f"/api/billing/customers/{person.pk}/erase", {"reason": "asked"})
    changed = admin_client.patch(
        f"/api/billing/customers/{person.pk}", {"name": "Ada Lovelace"}, format="json"
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "customer_erased"
    assert Customer.objects.get(pk=person.pk).name == f"Erased customer {person.pk}"
    added = admin_client.post(
        f"/api/billing/customers/{person.pk}/payment-methods",
        {
            "type": "ach",
            "bank_account_holder": "Ada",
            "bank_routing_number": "011000015",
            "bank_account_number": "000999888777",
        },
        format="json",
    )
    assert added.status_code == 409
    assert PaymentMethod.objects.filter(customer=person).count() == 1


def test_a_reason_is_required(person, admin_client) -> None:
    response = admin_client.post(f"/api/billing/customers/{person.pk}/erase", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["errors"]
    assert Customer.objects.get(pk=person.pk).erased_at is None


def _refused(client, customer: Customer) -> set[str]:
    """Ask for the erasure; it must be a 409 naming open items, nothing changed. Returns the
    kinds named."""
    entries = JournalEntry.objects.count()
    history = Customer.history.filter(id=customer.pk).count()  # type: ignore[attr-defined]
    response = client.post(
        f"/api/billing/customers/{customer.pk}/erase", {"reason": "asked"}, format="json"
    )
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["code"] == "erasure_open_items"
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.name, fresh.erased_at) == (customer.name, None)
    assert Customer.history.filter(id=customer.pk).count() == history  # type: ignore[attr-defined]
    assert JournalEntry.objects.count() == entries
    assert not LogEntry.objects.exists()
    return set(body["details"]["open_items"].split(","))


def test_refused_with_an_open_invoice(person, admin_client, make_invoice) -> None:
    make_invoice("50.00", on=person)
    assert _refused(admin_client, person) == {"open_invoices"}


def test_refused_with_a_draft_invoice(person, admin_client, make_invoice) -> None:
    make_invoice("50.00", on=person, issue=False)
    assert _refused(admin_client, person) == {"draft_invoices"}


def test_refused_with_a_credit_balance(person, admin, admin_client) -> None:
    payment_record(
        actor=admin,
        customer_id=person.pk,
        amount=Decimal("10.00"),
        currency="USD",
        method="wire_transfer",
        received_date=timezone.localdate(),
    )
    assert _refused(admin_client, person) == {"credit_balance"}


def test_refused_with_an_active_subscription(person, admin_client) -> None:
    product = product_create(actor=None, name="Pro plan")
    price = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=Decimal("30.00"),
    )
    subscription_create(actor=None, customer_id=person.pk, items=[ItemInput(price_id=price.pk)])
    assert "active_subscriptions" in _refused(admin_client, person)


def test_refused_with_an_open_payment_plan(person, admin, admin_client, make_invoice) -> None:
    invoice = make_invoice("300.00", on=person)
    payment_plan_create(
        actor=admin,
        customer_id=person.pk,
        invoice_ids=[invoice.pk],
        installments=3,
        first_due_date=timezone.localdate() + timedelta(days=7),
    )
    assert _refused(admin_client, person) == {"open_invoices", "open_payment_plans"}


def test_refused_with_an_open_dispute(person, admin, admin_client) -> None:
    invoice = Invoice.objects.get(customer=person)
    dispute_open(actor=admin, invoice_id=invoice.pk, amount=Decimal("20.00"), reason="Damaged")
    assert _refused(admin_client, person) == {"open_disputes"}


def test_closed_disputes_and_collections_text_are_erased_too(person, admin, admin_client) -> None:
    from receivables.services.disputes import dispute_resolve, dispute_review

    invoice = Invoice.objects.get(customer=person)
    dispute = dispute_open(
        actor=admin, invoice_id=invoice.pk, amount=Decimal("20.00"), reason="Ada says damaged"
    )
    dispute_review(actor=admin, dispute_id=dispute.pk)
    dispute_resolve(
        actor=admin, dispute_id=dispute.pk, outcome="rejected", note="Called Ada Lovelace"
    )
    response = admin_client.post(
        f"/api/billing/customers/{person.pk}/erase", {"reason": "asked"}, format="json"
    )
    assert response.status_code == 200, response.json()
    rows = _raw("receivables_dispute", "id = %s", [dispute.pk])
    history = _raw("receivables_historicaldispute", "id = %s", [dispute.pk])
    assert "Ada" not in _text(rows) + _text(history)
    # the dispute itself stays, with its amount
    assert _raw("receivables_dispute", "id = %s AND amount = %s", [dispute.pk, Decimal("20.00")])


def test_erasure_ends_portal_access_and_hosted_links_and_drops_what_identifies_the_person(
    person, admin, admin_client, monkeypatch
) -> None:
    from billing.models import InvoiceLink
    from billing.selectors import invoice_link_url
    from billing.services.links import LinkRefused, invoice_link_get_or_create, invoice_link_open
    from portal.models import PortalAccess, PortalLink, PortalSession
    from portal.services import (
        PortalRefused,
        portal_enter,
        portal_link_request,
        portal_link_send,
        portal_session_open,
    )

    # given: the customer asked for a portal link on the portal's page (logged by address),
    # signed in with one from 192.0.2.7, holds another unused one, and has a hosted invoice
    # link from an email
    monkeypatch.setattr("portal.services.transaction.on_commit", lambda *a, **k: None)
    portal_link_request(email="ADA@lovelace.example", ip="192.0.2.7")
    used = PortalLink.objects.get(customer=person)
    token = "t" * 43
    PortalLink.objects.filter(pk=used.pk).update(token_hash=_sha256(token))
    entered = portal_enter(token=token, ip="192.0.2.7", user_agent="Ada's browser")
    portal_link_send(actor=admin, customer_id=person.pk)
    invoice = Invoice.objects.get(customer=person)
    hosted = invoice_link_get_or_create(invoice_id=invoice.pk)
    hosted_token = invoice_link_url(hosted).rstrip("/").rsplit("/", 1)[-1]
    invoice_link_open(token=hosted_token)  # it opens before
    # when the customer is erased
    response = admin_client.post(
        f"/api/billing/customers/{person.pk}/erase", {"reason": "asked"}, format="json"
    )
    # then
    assert response.status_code == 200, response.json()
    # nobody signs in or pays as them any more
    with pytest.raises(PortalRefused):
        portal_session_open(key=entered.key, ip="192.0.2.7", path="/portal/")
    assert not PortalLink.objects.filter(customer=person, used_at=None, revoked_at=None).exists()
    assert InvoiceLink.objects.get(pk=hosted.pk).revoked_at is not None
    with pytest.raises(LinkRefused):
        invoice_link_open(token=hosted_token)
    # and the portal's tables no longer name or locate them
    text = _text(
        _raw("portal_portallink", "customer_id = %s", [person.pk])
        + _raw("portal_portalsession", "customer_id = %s", [person.pk])
        + _raw("portal_portalaccess", "TRUE", [])
    )
    for personal in ("lovelace", "Lovelace", "192.0.2.7", "Ada's browser"):
        assert personal not in text
    # while the record that access happened, and when, stays
    assert PortalSession.objects.get(customer=person).end_reason == "customer erased"
    assert PortalAccess.objects.filter(customer=person, action="signed_in").exists()


def test_export_holds_the_portal_links_sessions_and_accesses(person, admin, admin_client) -> None:
    from portal.services import portal_link_send

    portal_link_send(actor=admin, customer_id=person.pk)
    data = admin_client.get(f"/api/billing/customers/{person.pk}/export").json()
    (link,) = data["portal"]["links"]
    assert link["sent_to"] == "ada@lovelace.example"
    assert "token_hash" not in link
    assert data["portal"]["sessions"] == []


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()
