"""GDPR for vendors: the export holds everything (history included) and is logged; the
erasure pseudonymises the vendor, its bank changes and their history rows, blocks it, keeps
bills and the ledger as they were, is refused while open items remain, is idempotent, logged,
and for finance admins only."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection

from core.gdpr import personal_data_log_list
from core.ledger.checks import ledger_check_run
from core.ledger.models import JournalEntry, JournalLine
from core.roles import Role
from payables.enums import BillStatus, VendorStatus
from payables.models import Bill, Vendor, VendorBankChange
from payables.services.bills import BillLineInput, bill_approve, bill_create, bill_void
from payables.services.vendors import (
    BankDetails,
    vendor_bank_change_approve,
    vendor_bank_change_request,
)
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

BILL_DATE = date(2026, 11, 2)


@pytest.fixture
def admin(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def admin_client(admin):
    return verified_client(admin)


@pytest.fixture
def person(make_vendor, ap_clerk, make_user) -> Vendor:
    """A sole trader with a tax id, bank details changed once (approved), and a bill approved
    (posted) then voided: nothing open, ledger entries kept."""
    vendor = make_vendor(
        "Charles Babbage",
        address="1 Dorset Street, London",
        tax_id_type="us_ein",
        tax_id="04-2103594",
    )
    change = vendor_bank_change_request(
        vendor_id=vendor.pk,
        bank=BankDetails(
            account_holder="Charles Babbage", routing_number="011000015", account_number="55501234"
        ),
        reason="Charles moved banks",
        actor=ap_clerk,
    )
    vendor_bank_change_approve(change_id=change.pk, actor=make_user("controller"))
    bill = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="CB-1",
        currency="USD",
        bill_date=BILL_DATE,
        lines=[
            BillLineInput(
                description="Engine parts", quantity=Decimal(1), unit_price=Decimal("250.00")
            )
        ],
    )
    bill_approve(bill_id=bill.pk, actor=make_user("approver"))
    bill_void(bill_id=bill.pk, actor=ap_clerk, reason="Sent in error")
    return Vendor.objects.get(pk=vendor.pk)


def _raw(table: str, where: str, params: list[object]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {where}", params)
        return repr(cursor.fetchall())


def _bill(ap_clerk, vendor, number: str) -> Bill:
    return bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number=number,
        currency="USD",
        bill_date=BILL_DATE,
        lines=[BillLineInput(description="Parts", quantity=Decimal(1), unit_price=Decimal("10"))],
    )


def test_export_holds_the_record_bank_changes_documents_and_history_and_is_logged(
    person, admin, admin_client
) -> None:
    response = admin_client.get(f"/api/payables/vendors/{person.pk}/export")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="vendor-{person.pk}-personal-data.json"'
    )
    data = response.json()
    text = response.content.decode()
    assert data["vendor"]["name"] == "Charles Babbage"
    # secrets masked as the API shows them
    assert data["vendor"]["tax_id"] == "\u2022\u2022\u2022\u20223594"
    assert data["vendor"]["bank_account_number"] == "\u2022\u2022\u2022\u20221234"
    assert "55501234" not in text
    assert "042103594" not in text
    assert [c["reason"] for c in data["bank_changes"]] == ["Charles moved banks"]
    assert [(b["number"], b["status"]) for b in data["bills"]] == [("CB-1", "void")]
    assert [h["history_type"] for h in data["history"]["vendor"]][:1] == ["created"]
    assert len(data["history"]["vendor"]) >= 3  # created, activated, bank details
    assert len(data["history"]["bank_changes"]) == 2
    (entry,) = personal_data_log_list()
    assert (entry.user_id, entry.object_id, entry.change_message) == (
        admin.pk,
        str(person.pk),
        "GDPR export",
    )


@pytest.mark.parametrize(
    "role",
    [Role.AR_CLERK, Role.AP_CLERK, Role.APPROVER, Role.CONTROLLER, Role.AUDITOR, Role.INTEGRATION],
)
def test_other_roles_may_neither_export_nor_erase(person, client_for, role) -> None:
    client = client_for(role)
    exported = client.get(f"/api/payables/vendors/{person.pk}/export")
    erased = client.post(f"/api/payables/vendors/{person.pk}/erase", {"reason": "asked"})
    assert (exported.status_code, erased.status_code) == (403, 403)
    assert Vendor.objects.get(pk=person.pk).name == "Charles Babbage"
    assert not LogEntry.objects.exists()


def test_erasure_pseudonymises_the_vendor_its_bank_changes_and_history_and_keeps_the_books(
    person, admin, admin_client
) -> None:
    # given the books as they are
    bill = Bill.objects.get(vendor=person)
    lines = list(JournalLine.objects.order_by("pk").values_list("entry_id", "debit", "credit"))
    # when a finance admin erases the vendor
    response = admin_client.post(
        f"/api/payables/vendors/{person.pk}/erase", {"reason": "Request 7"}, format="json"
    )
    # then it is pseudonymised and blocked
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == f"Erased vendor {person.pk}"
    assert (body["status"], body["blocked_reason"]) == (VendorStatus.BLOCKED, "GDPR erasure")
    assert (body["tax_id"], body["bank_account_number"], body["iban"]) == ("", "", "")
    # and nothing personal is left in the raw rows and history rows
    raw = (
        _raw("payables_vendor", "id = %s", [person.pk])
        + _raw("payables_historicalvendor", "id = %s", [person.pk])
        + _raw("payables_vendorbankchange", "vendor_id = %s", [person.pk])
        + _raw("payables_historicalvendorbankchange", "vendor_id = %s", [person.pk])
    )
    for value in ("Babbage", "Dorset", "charles@vendor.example", "011000015", "fernet:"):
        assert value not in raw, value
    # and the bill and the ledger are as they were, and still clean
    fresh = Bill.objects.get(pk=bill.pk)
    assert (fresh.number, fresh.total, fresh.status) == (bill.number, bill.total, BillStatus.VOID)
    assert (
        list(JournalLine.objects.order_by("pk").values_list("entry_id", "debit", "credit")) == lines
    )
    run = ledger_check_run()
    assert run.ok, run.problems
    # and it is logged with the reason and the actor
    (entry,) = personal_data_log_list()
    assert (entry.user_id, entry.change_message) == (admin.pk, "GDPR erasure: Request 7")
    latest = Vendor.history.filter(id=person.pk).latest("history_date")  # type: ignore[attr-defined]
    assert (latest.history_user_id, latest.history_change_reason) == (
        admin.pk,
        "GDPR erasure: Request 7",
    )


def test_erasure_is_idempotent_and_the_vendor_cannot_be_changed_back(
    person, admin, admin_client
) -> None:
    first = admin_client.post(f"/api/payables/vendors/{person.pk}/erase", {"reason": "asked"})
    history = Vendor.history.filter(id=person.pk).count()  # type: ignore[attr-defined]
    second = admin_client.post(f"/api/payables/vendors/{person.pk}/erase", {"reason": "again"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert Vendor.history.filter(id=person.pk).count() == history  # type: ignore[attr-defined]
    assert LogEntry.objects.count() == 1
    # an erased vendor is never activated or given bank details again
    activated = verified_client(admin).post(f"/api/payables/vendors/{person.pk}/activate")
    assert activated.status_code == 409
    assert activated.json()["code"] == "vendor_erased"
    changed = admin_client.post(
        f"/api/payables/vendors/{person.pk}/bank-changes",
        {
            "account_holder": "Charles",
            "routing_number": "011000015",
            "account_number": "123456",
            "reason": "moved",
        },
        format="json",
    )
    assert changed.status_code == 409
    assert VendorBankChange.objects.filter(vendor=person).count() == 1


def _refused(client, vendor: Vendor) -> set[str]:
    entries = JournalEntry.objects.count()
    history = Vendor.history.filter(id=vendor.pk).count()  # type: ignore[attr-defined]
    response = client.post(f"/api/payables/vendors/{vendor.pk}/erase", {"reason": "asked"})
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "erasure_open_items"
    fresh = Vendor.objects.get(pk=vendor.pk)
    assert (fresh.name, fresh.erased_at) == (vendor.name, None)
    assert Vendor.history.filter(id=vendor.pk).count() == history  # type: ignore[attr-defined]
    assert JournalEntry.objects.count() == entries
    assert not LogEntry.objects.exists()
    return set(response.json()["details"]["open_items"].split(","))


def test_refused_with_an_unapproved_bill(person, ap_clerk, admin_client) -> None:
    _bill(ap_clerk, person, "CB-2")
    assert _refused(admin_client, person) == {"unapproved_bills"}


def test_refused_with_an_unpaid_bill(person, ap_clerk, admin_client, make_user) -> None:
    bill = _bill(ap_clerk, person, "CB-3")
    bill_approve(bill_id=bill.pk, actor=make_user("approver"))
    assert _refused(admin_client, person) == {"unpaid_bills"}


def test_refused_with_an_open_purchase_order(person, admin_client, make_order) -> None:
    make_order("500.00", on=person)
    assert "open_purchase_orders" in _refused(admin_client, person)


def test_refused_with_a_pending_bank_change(person, ap_clerk, admin_client) -> None:
    vendor_bank_change_request(
        vendor_id=person.pk,
        bank=BankDetails(routing_number="011000015", account_number="99999999"),
        reason="new bank",
        actor=ap_clerk,
    )
    assert _refused(admin_client, person) == {"pending_bank_changes"}


def test_refused_with_a_scheduled_payment(person, ap_clerk, admin_client, make_user) -> None:
    from payables.services.runs import payment_run_create

    bill = _bill(ap_clerk, person, "CB-4")
    bill_approve(bill_id=bill.pk, actor=make_user("approver"))
    run = payment_run_create(
        currency="USD",
        pay_by=BILL_DATE + timedelta(days=90),
        actor=make_user(Role.FINANCE_ADMIN),
        bill_ids=[bill.pk],
    )
    assert run.items.filter(vendor=person).exists()
    assert "scheduled_payments" in _refused(admin_client, person)
