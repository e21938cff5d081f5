"""Reconciliation admin: masked numbers, read-only statements, the upload form calling the
import service, the import log."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.roles import Role
from reconciliation.models import BankAccount, ImportLog, ReconciliationRun, Statement
from tests.conftest import verified_client
from tests.reconciliation.conftest import fixture_bytes

pytestmark = pytest.mark.django_db


def test_pages_load_and_numbers_are_masked(make_user, eur_account):
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    listing = client.get(reverse("admin:reconciliation_bankaccount_changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "\u2022\u2022\u2022\u20223000" in page
    assert "DE89370400440532013000" not in page
    detail = client.get(reverse("admin:reconciliation_bankaccount_change", args=[eur_account.pk]))
    assert detail.status_code == 200
    assert "DE89370400440532013000" not in detail.content.decode()
    for name in ("statement", "importlog"):
        assert client.get(reverse(f"admin:reconciliation_{name}_changelist")).status_code == 200


def test_upload_form_imports_through_the_service(make_user, eur_account):
    client = verified_client(make_user(Role.AR_CLERK))
    url = reverse("admin:reconciliation_statement_upload")
    assert client.get(url).status_code == 200
    # when
    response = client.post(
        url,
        {
            "bank_account": eur_account.pk,
            "file": SimpleUploadedFile("m.sta", fixture_bytes("good.sta")),
        },
    )
    # then
    assert response.status_code == 302
    statement = Statement.objects.get()
    assert statement.imported_by.groups.filter(name=Role.AR_CLERK).exists()
    # and a reconciliation run was started for the new lines
    assert ReconciliationRun.objects.filter(bank_account=eur_account).count() == 1
    detail = client.get(reverse("admin:reconciliation_statement_change", args=[statement.pk]))
    assert detail.status_code == 200
    assert "E2E-INV-1001" in detail.content.decode()


def test_upload_refusal_is_reported_and_writes_no_statement(make_user, eur_account):
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    data = fixture_bytes("good.sta").replace(b"EUR1219,00", b"EUR1219,01")
    response = client.post(
        reverse("admin:reconciliation_statement_upload"),
        {"bank_account": eur_account.pk, "file": SimpleUploadedFile("m.sta", data)},
        follow=True,
    )
    assert response.status_code == 200
    assert "closing balance is 1219.01" in response.content.decode()
    assert Statement.objects.count() == 0
    assert ImportLog.objects.get().result == "refused"


def test_auditor_cannot_upload(make_user, eur_account):
    client = verified_client(make_user(Role.AUDITOR))
    assert client.get(reverse("admin:reconciliation_statement_upload")).status_code == 403


def test_bank_account_added_in_the_admin_goes_through_the_service(make_user):
    from core.ledger.models import Account

    client = verified_client(make_user(Role.FINANCE_ADMIN))
    cash = Account.objects.get(code="1000")
    response = client.post(
        reverse("admin:reconciliation_bankaccount_add"),
        {
            "name": "Payroll",
            "currency": "EUR",
            "ledger_account": cash.pk,
            "bank_name": "",
            "bic": "",
            "account_number_input": "12345678",
            "iban_input": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = BankAccount.objects.get(name="Payroll")
    assert (account.account_number, account.account_number_masked) == (
        "12345678",
        "\u2022\u2022\u2022\u20225678",
    )
    assert account.created_by is not None
