"""``/api/reconciliation/``: status codes, the role matrix, idempotent re-import, refusals."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core.roles import Role
from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.models import BankAccount, ImportLog, Statement, StatementLine
from tests.conftest import verified_client
from tests.reconciliation.conftest import fixture_bytes

STATEMENTS = "/api/reconciliation/statements"
ACCOUNTS = "/api/reconciliation/bank-accounts"
READERS = {Role.FINANCE_ADMIN, Role.CONTROLLER, Role.AR_CLERK, Role.AP_CLERK, Role.AUDITOR}
IMPORTERS = {Role.FINANCE_ADMIN, Role.AR_CLERK, Role.AP_CLERK}
ALL_ROLES = [Role.FINANCE_ADMIN, Role.AR_CLERK, Role.AP_CLERK, Role.APPROVER, Role.CONTROLLER,
             Role.AUDITOR]  # fmt: skip


def upload(
    client: APIClient,
    account: BankAccount,
    name: str = "good.sta",
    data: bytes | None = None,
    **extra,
):
    payload = {
        "file": SimpleUploadedFile(name, fixture_bytes(name) if data is None else data),
        "bank_account": account.pk,
        **extra,
    }
    return client.post(STATEMENTS, payload, format="multipart")


def test_import_answers_201_then_200_for_the_same_file(client_for, eur_account):
    client = client_for(Role.AR_CLERK)
    # when
    first = upload(client, eur_account)
    again = upload(client, eur_account)
    # then
    assert first.status_code == 201, first.json()
    body = first.json()
    assert {
        k: body[k]
        for k in (
            "format",
            "transactions",
            "opening_balance",
            "closing_balance",
            "currency",
            "created",
        )
    } == {
        "format": "mt940",
        "transactions": 3,
        "opening_balance": "1000.00",
        "closing_balance": "1219.00",
        "currency": "EUR",
        "created": True,
    }
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["created"] is False
    assert Statement.objects.count() == 1
    assert StatementLine.objects.count() == 3


def test_malformed_file_is_400_naming_the_line_and_changes_nothing(client_for, eur_account):
    data = fixture_bytes("good.sta").replace(b":61:2603020302D40,5", b":61:260302X")
    response = upload(client_for(Role.AR_CLERK), eur_account, data=data)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_line"
    assert body["message"].startswith("line 7:")
    assert body["errors"] == {}
    assert (Statement.objects.count(), StatementLine.objects.count()) == (0, 0)
    assert ImportLog.objects.get().result == "refused"


def test_xml_refusal_names_the_element(client_for, eur_account):
    data = fixture_bytes("good_camt053.xml").replace(b"<CdtDbtInd>DBIT", b"<CdtDbtInd>DEBT")
    response = upload(client_for(Role.AR_CLERK), eur_account, name="good_camt053.xml", data=data)
    assert response.status_code == 400
    assert "Stmt[1]/Ntry[2]/CdtDbtInd" in response.json()["message"]
    assert Statement.objects.count() == 0


def test_wrong_closing_balance_is_400_with_both_figures(client_for, eur_account):
    data = fixture_bytes("good_camt053.xml").replace(b">1099.25<", b">1099.26<")
    response = upload(
        client_for(Role.FINANCE_ADMIN), eur_account, name="good_camt053.xml", data=data
    )
    assert response.status_code == 400
    assert response.json()["code"] == "control_total"
    assert "= 1099.25" in response.json()["message"]
    assert "1099.26" in response.json()["message"]


def test_oversized_upload_is_413(client_for, eur_account):
    data = b":20:X\n" + b"A" * (MAX_FILE_BYTES + 1)
    response = upload(client_for(Role.AR_CLERK), eur_account, name="big.sta", data=data)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert ImportLog.objects.count() == 0


def test_currency_mismatch_is_400(client_for, make_bank_account):
    account = make_bank_account("USD", iban="DE89370400440532013000")
    response = upload(client_for(Role.AR_CLERK), account)
    assert response.status_code == 400
    assert response.json()["code"] == "currency_mismatch"


def test_missing_file_and_unknown_account(client_for, eur_account):
    client = client_for(Role.AR_CLERK)
    response = client.post(STATEMENTS, {"bank_account": eur_account.pk}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    missing = client.post(
        STATEMENTS, {"bank_account": 999, "file": io.BytesIO(b"x")}, format="multipart"
    )
    assert missing.status_code in (400, 404)


def test_csv_with_a_saved_bank_mapping(client_for, make_bank_account):
    account = make_bank_account("EUR")
    data = b"Date;Text;Amount;Balance;Counterparty;IBAN\n01.03.2026;X;1,00;2,00;A;\n"
    response = upload(client_for(Role.AP_CLERK), account, name="x.csv", data=data, format="csv")
    assert response.status_code == 400
    assert response.json()["code"] == "mapping_required"


def test_statement_list_and_detail_with_lines(
    client_for, eur_account, django_assert_max_num_queries
):
    upload(client_for(Role.AR_CLERK), eur_account)
    upload(client_for(Role.AR_CLERK), eur_account, name="good_camt053.xml")
    client = client_for(Role.AUDITOR)
    listing = client.get(STATEMENTS, {"bank_account": eur_account.pk})
    assert listing.status_code == 200
    assert [s["format"] for s in listing.json()["results"]] == ["camt053", "mt940"]
    assert [s["transactions"] for s in listing.json()["results"]] == [2, 3]
    statement_id = listing.json()["results"][1]["id"]
    with django_assert_max_num_queries(8):
        detail = client.get(f"{STATEMENTS}/{statement_id}")
    assert detail.status_code == 200
    lines = detail.json()["lines"]
    assert [line["amount"] for line in lines] == ["250.00", "-40.50", "9.50"]
    assert lines[0]["end_to_end_id"] == "E2E-INV-1001"
    assert lines[0]["status"] == "unmatched"
    assert client.get(f"{STATEMENTS}/99999").status_code == 404


def test_bank_account_create_and_list_show_masked_numbers_only(client_for):
    client = client_for(Role.FINANCE_ADMIN)
    response = client.post(
        ACCOUNTS,
        {
            "name": "Main EUR",
            "currency": "EUR",
            "iban": "DE89370400440532013000",
            "account_number": "532013000",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["iban"] == "\u2022\u2022\u2022\u20223000"
    assert body["account_number"] == "\u2022\u2022\u2022\u20223000"
    assert "DE89370400440532013000" not in response.content.decode()
    listing = client.get(ACCOUNTS)
    assert listing.status_code == 200
    assert "DE89370400440532013000" not in listing.content.decode()
    assert listing.json()["results"][0]["name"] == "Main EUR"


def test_bank_account_bad_input_is_400_and_writes_nothing(client_for):
    response = client_for(Role.FINANCE_ADMIN).post(
        ACCOUNTS, {"name": "X", "currency": "XXY"}, format="json"
    )
    assert response.status_code == 400
    assert "currency" in response.json()["errors"]
    assert BankAccount.objects.count() == 0


@pytest.mark.parametrize("role", ALL_ROLES)
def test_role_matrix(client_for, eur_account, role):
    client = client_for(role)
    can_read = role in READERS
    can_import = role in IMPORTERS
    assert client.get(STATEMENTS).status_code == (200 if can_read else 403)
    assert client.get(ACCOUNTS).status_code == (200 if can_read else 403)
    response = upload(client, eur_account)
    assert response.status_code == (201 if can_import else 403)
    created = client.post(ACCOUNTS, {"name": f"A {role}", "currency": "EUR"}, format="json")
    assert created.status_code == (201 if can_import else 403)


def test_integration_token_may_import_but_not_read(integration_client, eur_account):
    assert upload(integration_client, eur_account).status_code == 201
    assert integration_client.get(STATEMENTS).status_code == 403
    assert (
        integration_client.post(
            ACCOUNTS, {"name": "A", "currency": "EUR"}, format="json"
        ).status_code
        == 403
    )


def test_anonymous_and_unverified_are_refused(make_user, eur_account):
    assert APIClient().get(STATEMENTS).status_code in (401, 403)
    assert upload(APIClient(), eur_account).status_code in (401, 403)
    user = make_user(Role.FINANCE_ADMIN, mfa=False)
    client = APIClient()
    client.force_login(user)
    assert client.get(STATEMENTS).status_code == 403
    assert Statement.objects.count() == 0


def test_verified_client_helper_is_the_one_of_the_suite(make_user):
    # The sessions above come from tests/conftest.py (a passed second factor).
    assert verified_client(make_user(Role.AUDITOR)).get(ACCOUNTS).status_code == 200
