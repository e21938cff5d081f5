"""Issue 11 item 1: a document's entry is undone only through the document, and manual lines
stay off the control accounts, so the sub-ledgers cannot drift from the books."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.ledger.enums import AccountRole, AccountType
from core.ledger.exceptions import DocumentEntry
from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.selectors import account_balances
from core.ledger.services import LineSpec, journal_post, journal_reverse
from core.roles import Role
from reconciliation.services import bank_account_create
from tests.conftest import verified_client

D = Decimal
ENTRIES = "/api/ledger/journal-entries"
pytestmark = pytest.mark.django_db


@pytest.fixture
def controller(make_user) -> User:
    return make_user(Role.CONTROLLER)


@pytest.fixture
def api(controller: User) -> APIClient:
    return verified_client(controller)


@pytest.fixture
def issued_invoice(make_user, django_capture_on_commit_callbacks) -> Invoice:
    clerk = make_user(Role.AR_CLERK)
    customer = customer_create(
        actor=clerk, name="Acme Corp", email="ap@acme.example", currency="USD"
    )
    with django_capture_on_commit_callbacks(execute=False):
        return invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            lines=[
                LineInput(
                    description="Consulting",
                    quantity=D(1),
                    unit_price=D("80.00"),
                    tax_rate=D(0),
                )
            ],
            issue=True,
        )


def ar_balance() -> Decimal:
    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE)
    balance = account_balances(account=ar).get("USD")
    return balance.balance if balance else D(0)


def test_the_api_refuses_to_reverse_an_invoice_entry_and_the_invoice_can_still_be_voided(
    api: APIClient, issued_invoice: Invoice
) -> None:
    # given an issued invoice and its entry
    entry_id = issued_invoice.ledger_entry_id
    entries_before = JournalEntry.objects.count()
    # when the ledger API is asked to reverse it
    response = api.post(f"{ENTRIES}/{entry_id}/reverse", {"reason": "oops"}, format="json")
    # then it is refused with the document's route, and nothing changed
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "document_entry"
    assert body["message"] == (
        f"JE-{entry_id} belongs to invoice {issued_invoice.pk}: void it through "
        f"POST /api/billing/invoices/{issued_invoice.pk}/void."
    )
    assert body["details"]["document"] == f"billing.invoice:{issued_invoice.pk}"
    assert JournalEntry.objects.count() == entries_before
    assert ar_balance() == D("80.00")
    # and the invoice's own operation still undoes it
    voided = api.post(
        f"/api/billing/invoices/{issued_invoice.pk}/void", {"reason": "wrong customer"}
    )
    assert voided.status_code == 200, voided.json()
    assert voided.json()["status"] == "void"
    assert ar_balance() == D(0)
    assert JournalEntry.objects.filter(reversal_of_id=entry_id).count() == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "billing.invoice:42",
            "belongs to invoice 42: void it through POST /api/billing/invoices/42/void.",
        ),
        ("billing.credit_note:7", "belongs to credit note 7: a credit note is final"),
        ("billing.payment:9", "belongs to payment 9: refund it through POST /api/billing/refunds"),
        ("billing.refund:3", "belongs to refund 3: a refund is final"),
        ("receivables.dispute:5", "belongs to dispute 5: it follows the dispute"),
        (
            "payables.bill:11",
            "belongs to bill 11: void it through POST /api/payables/bills/11/void.",
        ),
        ("payables.payment_run:2", "belongs to payment run 2: it follows the payment run"),
        ("payables.expense_report:4", "belongs to expense report 4: it follows the expense"),
        (
            "reconciliation.match:8",
            "belongs to bank match 8: undo it through POST /api/reconciliation/matches/8/undo.",
        ),
        ("reconciliation.payout:6", "belongs to payout 6: undo the bank match that settled it"),
        ("demo", "belongs to 'demo': it is undone only through the operation that posted it."),
    ],
)
def test_every_document_source_is_refused_by_the_ledger_but_not_by_its_domain(
    accounts, controller: User, source: str, expected: str
) -> None:
    # given an entry a document posted
    entry = journal_post(
        lines=[
            LineSpec(accounts[AccountRole.EXPENSES], "USD", debit=D("10.00")),
            LineSpec(accounts[AccountRole.SUSPENSE], "USD", credit=D("10.00")),
        ],
        entry_date=timezone.localdate(),
        source=source,
    )
    # when a person reverses it in the ledger: refused, nothing posted
    with pytest.raises(DocumentEntry) as refused:
        journal_reverse(entry_id=entry.pk, actor=controller, reason="tidy up")
    assert refused.value.code == "document_entry"
    assert refused.value.status_code == 409
    assert refused.value.message.startswith(f"JE-{entry.pk} {expected}")
    assert JournalEntry.objects.count() == 1
    # when the document's own service reverses it (it checked its own permission)
    reversal = journal_reverse(
        entry_id=entry.pk, actor=None, reason="document voided", authorized_by_caller=True
    )
    assert reversal.reversal_of_id == entry.pk


def test_a_manual_entry_is_still_reversed_through_the_ledger(api: APIClient) -> None:
    created = api.post(
        ENTRIES,
        {
            "entry_date": timezone.localdate().isoformat(),
            "description": "Accrual",
            "lines": [
                {"account": "6000", "currency": "USD", "debit": "25.00"},
                {"account": "1900", "currency": "USD", "credit": "25.00"},
            ],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    response = api.post(f"{ENTRIES}/{created.json()['id']}/reverse", {"reason": "Posted twice"})
    assert response.status_code == 201
    assert response.json()["reversal_of"] == created.json()["id"]


def test_the_admin_shows_the_route_instead_of_reverse_and_refuses_the_post(
    issued_invoice: Invoice, controller: User
) -> None:
    # given
    client = verified_client(controller)
    entry_id = issued_invoice.ledger_entry_id
    route = f"void it through POST /api/billing/invoices/{issued_invoice.pk}/void"
    # when
    page = client.get(f"/admin/ledger/journalentry/{entry_id}/change/").content.decode()
    refused = client.post(
        f"/admin/ledger/journalentry/{entry_id}/reverse/", {"reason": "oops"}, follow=True
    )
    # then the page sends the clerk to the invoice's own page (its Void), with no Reverse
    assert f'href="/admin/billing/invoice/{issued_invoice.pk}/change/"' in page
    assert f"/admin/ledger/journalentry/{entry_id}/reverse/" not in page
    assert [str(m) for m in refused.context["messages"]] == [
        f"JE-{entry_id} belongs to invoice {issued_invoice.pk}: {route}."
    ]
    assert not JournalEntry.objects.filter(reversal_of_id=entry_id).exists()


# --- manual lines on control accounts ------------------------------------------------------


def manual(*, debit: str, credit: str, amount: str = "25.00") -> dict:
    return {
        "entry_date": timezone.localdate().isoformat(),
        "description": "Reclass",
        "lines": [
            {"account": debit, "currency": "USD", "debit": amount},
            {"account": credit, "currency": "USD", "credit": amount},
        ],
    }


@pytest.mark.parametrize(
    ("code", "role"),
    [
        ("1000", "cash"),
        ("1010", "processor_clearing"),
        ("1100", "accounts_receivable"),
        ("2000", "accounts_payable"),
        ("2200", "customer_credit"),
    ],
)
def test_manual_lines_on_a_control_account_are_refused_naming_the_line(
    api: APIClient, code: str, role: str
) -> None:
    # when
    response = api.post(ENTRIES, manual(debit="6000", credit=code), format="json")
    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "control_account"
    name = Account.objects.get(code=code).name
    assert body["errors"] == {"lines[1].account": [body["message"]]}
    assert body["message"].startswith(
        f"Account {code} {name} is a control account ({role}): its balance must equal its "
        "sub-ledger, so it takes no manual lines."
    )
    assert body["details"]["account"] == code
    assert JournalEntry.objects.count() == 0
    assert JournalLine.objects.count() == 0


def test_a_role_listed_in_the_settings_takes_manual_lines(api: APIClient, settings) -> None:
    # given AR allowed by the system settings
    ledger = settings.SYSTEM_SETTINGS.ledger
    settings.SYSTEM_SETTINGS = dataclasses.replace(
        settings.SYSTEM_SETTINGS,
        ledger=dataclasses.replace(
            ledger, manual_posting_roles=(*ledger.manual_posting_roles, "accounts_receivable")
        ),
    )
    # when
    allowed = api.post(ENTRIES, manual(debit="1100", credit="4000"), format="json")
    refused = api.post(ENTRIES, manual(debit="2000", credit="6000"), format="json")
    # then
    assert allowed.status_code == 201, allowed.json()
    assert (refused.status_code, refused.json()["code"]) == (400, "control_account")
    assert refused.json()["errors"] == {"lines[0].account": [refused.json()["message"]]}


def test_an_account_without_a_role_is_a_control_account_once_a_bank_account_points_at_it(
    api: APIClient, finance_admin: User
) -> None:
    # given a role-less asset account
    eur_bank = Account.objects.create(code="1020", name="EUR bank", type=AccountType.ASSET)
    body = manual(debit="1020", credit="3000")
    assert api.post(ENTRIES, body, format="json").status_code == 201
    # when reconciliation holds it as a bank account's ledger account
    bank_account_create(
        actor=finance_admin, name="Operating", currency="USD", ledger_account_id=eur_bank.pk
    )
    response = api.post(ENTRIES, body, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "control_account"
    assert response.json()["message"].startswith(
        "Account 1020 EUR bank is a control account (cash: the ledger account of a bank "
        "account under reconciliation)"
    )
    assert response.json()["errors"] == {"lines[0].account": [response.json()["message"]]}
    assert JournalEntry.objects.count() == 1


def test_an_unknown_account_names_its_line(api: APIClient) -> None:
    response = api.post(ENTRIES, manual(debit="6000", credit="9999"), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_line"
    assert response.json()["errors"] == {"lines[1].account": ["Unknown account code '9999'."]}


# --- as-of default -------------------------------------------------------------------------


def test_the_trial_balance_defaults_to_today_and_leaves_out_later_entries(
    accounts, api: APIClient
) -> None:
    # given an entry today and one dated next week
    today = timezone.localdate()
    for day, amount in ((today, "10.00"), (today + timedelta(days=7), "5.00")):
        journal_post(
            lines=[
                LineSpec(accounts[AccountRole.EXPENSES], "USD", debit=D(amount)),
                LineSpec(accounts[AccountRole.SUSPENSE], "USD", credit=D(amount)),
            ],
            entry_date=day,
            source="manual",
        )
    # when
    default = api.get("/api/ledger/trial-balance").json()
    later = api.get(f"/api/ledger/trial-balance?as_of={today + timedelta(days=7)}").json()
    # then
    assert default["as_of"] == today.isoformat()
    assert default["totals"] == [{"currency": "USD", "debit": "10.0000", "credit": "10.0000"}]
    assert later["totals"] == [{"currency": "USD", "debit": "15.0000", "credit": "15.0000"}]
