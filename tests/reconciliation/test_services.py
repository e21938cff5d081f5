"""statement_import: atomic, idempotent, deduplicating, and refusing without writing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.exceptions import NotFound, PermissionDeniedError
from reconciliation.enums import ImportResult
from reconciliation.exceptions import ReconciliationError, StatementMismatch, StatementRefused
from reconciliation.models import BankAccount, ImportLog, Statement, StatementLine
from reconciliation.services import bank_account_create, csv_mapping_save, statement_import
from tests.reconciliation.conftest import GOOD_CSV_MAPPING, fixture_bytes


def counts() -> tuple[int, int]:
    return Statement.objects.count(), StatementLine.objects.count()


def test_import_creates_statement_and_lines(eur_account, finance_admin):
    # when
    outcome = statement_import(
        bank_account_id=eur_account.pk,
        data=fixture_bytes("good.sta"),
        filename="march.sta",
        actor=finance_admin,
    )
    # then
    assert outcome.created is True
    [statement] = outcome.statements
    assert statement.format == "mt940"
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("1000.0000"),
        Decimal("1219.0000"),
    )
    assert statement.imported_by == finance_admin
    lines = list(statement.lines.order_by("position"))
    assert [line.amount for line in lines] == [Decimal("250"), Decimal("-40.5"), Decimal("9.5")]
    assert {line.status for line in lines} == {"unmatched"}
    assert lines[0].end_to_end_id == "E2E-INV-1001"
    log = ImportLog.objects.get()
    assert (log.result, log.file_name, log.line_count, log.actor) == (
        ImportResult.IMPORTED,
        "march.sta",
        3,
        finance_admin,
    )
    assert list(log.statements.all()) == [statement]
    assert statement.history.count() == 1


def test_same_file_again_returns_the_existing_statement_and_adds_nothing(
    eur_account, finance_admin
):
    first = statement_import(
        bank_account_id=eur_account.pk, data=fixture_bytes("good.sta"), actor=finance_admin
    )
    before = counts()
    # when
    again = statement_import(
        bank_account_id=eur_account.pk, data=fixture_bytes("good.sta"), actor=finance_admin
    )
    # then
    assert again.created is False
    assert [s.pk for s in again.statements] == [s.pk for s in first.statements]
    assert counts() == before
    assert ImportLog.objects.filter(result=ImportResult.DUPLICATE).count() == 1


def test_same_statement_in_another_file_is_recognised(eur_account, finance_admin):
    first = statement_import(
        bank_account_id=eur_account.pk, data=fixture_bytes("good.sta"), actor=finance_admin
    )
    before = counts()
    # when: the same statement with another envelope (other bytes, same content)
    data = b"{1:F01BANKDEFFXXXX0000000000}{2:O940BANKDEFFXXXXN}{4:\r\n" + fixture_bytes("good.sta")
    again = statement_import(bank_account_id=eur_account.pk, data=data, actor=finance_admin)
    # then
    assert again.created is False
    assert [s.pk for s in again.statements] == [s.pk for s in first.statements]
    assert counts() == before


def test_lines_already_known_are_skipped(eur_account, finance_admin):
    # given: the statement of 3 March was imported
    statement_import(
        bank_account_id=eur_account.pk, data=fixture_bytes("good.sta"), actor=finance_admin
    )
    # when: a later statement repeats the first line (same date, amount, bank reference)
    data = (
        b":20:STMT-2026-002\r\n:25:DE89370400440532013000\r\n:28C:8/1\r\n"
        b":60F:C260228EUR750,00\r\n"
        b":61:2603010301C250,00NTRFNONREF//BANKREF001\r\n:86:ACME\r\n"
        b":61:2603040304C10,00NTRFNONREF//BANKREF099\r\n:86:NEW\r\n"
        b":62F:C260304EUR1010,00\r\n-\r\n"
    )
    outcome = statement_import(bank_account_id=eur_account.pk, data=data, actor=finance_admin)
    # then
    [statement] = outcome.statements
    assert (statement.line_count, statement.skipped_line_count) == (2, 1)
    assert [line.bank_reference for line in statement.lines.all()] == ["BANKREF099"]
    assert StatementLine.objects.count() == 4


@pytest.mark.parametrize(
    ("data", "code", "text"),
    [
        (
            fixture_bytes("good.sta").replace(b"EUR1219,00", b"EUR1219,01"),
            "control_total",
            "closing balance is 1219.01",
        ),
        (
            fixture_bytes("good.sta").replace(b":61:2603020302D40,5", b":61:260302X"),
            "bad_line",
            "line 7",
        ),
        (b"hello", "unknown_format", "cannot be recognised"),
    ],
)
def test_malformed_file_is_refused_and_nothing_is_written(
    eur_account, finance_admin, data, code, text
):
    with pytest.raises(StatementRefused) as err:
        statement_import(bank_account_id=eur_account.pk, data=data, actor=finance_admin)
    assert err.value.code == code
    assert text in err.value.message
    assert counts() == (0, 0)
    log = ImportLog.objects.get()
    assert (log.result, log.error_code) == (ImportResult.REFUSED, code)


def test_statement_of_another_account_is_refused(make_bank_account, finance_admin):
    account = make_bank_account("EUR", iban="NL91ABNA0417164300")
    with pytest.raises(StatementMismatch) as err:
        statement_import(
            bank_account_id=account.pk, data=fixture_bytes("good.sta"), actor=finance_admin
        )
    assert err.value.code == "account_mismatch"
    assert counts() == (0, 0)


def test_statement_in_another_currency_is_refused(make_bank_account, finance_admin):
    account = make_bank_account("USD", iban="DE89370400440532013000")
    with pytest.raises(StatementMismatch) as err:
        statement_import(
            bank_account_id=account.pk, data=fixture_bytes("good.sta"), actor=finance_admin
        )
    assert err.value.code == "currency_mismatch"
    assert "EUR" in err.value.message
    assert counts() == (0, 0)


def two_account_ofx(second_account: bytes) -> bytes:
    """fixtures/good.ofx with a second statement of ``second_account`` after the first."""
    data = fixture_bytes("good.ofx")
    second = data.replace(b"<ACCTID>0532013000", b"<ACCTID>" + second_account)
    return data.split(b"</BANKMSGSRSV1>")[0] + second.split(b"<BANKMSGSRSV1>")[1]


def test_a_file_of_several_accounts_imports_only_ours(make_bank_account, finance_admin):
    account = make_bank_account("USD", account_number="9200")
    # when
    outcome = statement_import(
        bank_account_id=account.pk, data=two_account_ofx(b"9200"), actor=finance_admin
    )
    # then
    assert [s.account_identifier for s in outcome.statements] == ["9200"]
    assert outcome.skipped_statements == 1
    assert "1 statements of other accounts left out." in outcome.log.message
    with pytest.raises(StatementMismatch):
        statement_import(
            bank_account_id=account.pk, data=fixture_bytes("good.ofx"), actor=finance_admin
        )


def test_csv_with_the_accounts_saved_mapping(make_bank_account, finance_admin):
    account = make_bank_account("EUR")
    csv_mapping_save(
        actor=finance_admin, bank_account_id=account.pk, config=GOOD_CSV_MAPPING.to_dict()
    )
    outcome = statement_import(
        bank_account_id=account.pk, data=fixture_bytes("good.csv"), actor=finance_admin
    )
    [statement] = outcome.statements
    assert (statement.format, statement.control, statement.line_count) == (
        "csv",
        "running_balance",
        4,
    )
    assert statement.closing_balance == Decimal("3150")


def test_path_in_the_file_name_is_dropped(eur_account, finance_admin):
    outcome = statement_import(
        bank_account_id=eur_account.pk,
        data=fixture_bytes("good.sta"),
        filename="../../etc/passwd",
        actor=finance_admin,
    )
    assert outcome.statements[0].file_name == "passwd"


def test_import_needs_the_permission(eur_account, make_user):
    auditor = make_user("auditor")
    with pytest.raises(PermissionDeniedError):
        statement_import(
            bank_account_id=eur_account.pk, data=fixture_bytes("good.sta"), actor=auditor
        )
    assert counts() == (0, 0)
    assert ImportLog.objects.count() == 0


def test_unknown_bank_account(finance_admin, db):
    with pytest.raises(NotFound):
        statement_import(bank_account_id=999, data=b"x", actor=finance_admin)


def test_bank_account_numbers_are_encrypted_and_masked(finance_admin):
    account = bank_account_create(
        actor=finance_admin, name="Main", currency="eur", iban="DE89 3704 0044 0532 0130 00",
        account_number="0532013000",
    )  # fmt: skip
    account = BankAccount.objects.get(pk=account.pk)
    assert account.iban == "DE89370400440532013000"
    assert account.iban_masked == "\u2022\u2022\u20223000"[:0] + "\u2022\u2022\u2022\u20223000"
    assert account.currency == "EUR"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT iban, account_number FROM reconciliation_bankaccount WHERE id = %s",
            [account.pk],
        )
        stored = cursor.fetchone()
    assert all(value.startswith("fernet:") for value in stored)
    assert "3000" not in stored[0]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"iban": "not an iban"}, "invalid_iban"),
    ],
)
def test_bank_account_refusals(finance_admin, fields, code):
    with pytest.raises(ReconciliationError) as err:
        bank_account_create(actor=finance_admin, **{"name": "X", "currency": "EUR", **fields})
    assert err.value.code == code
    assert BankAccount.objects.count() == 0


def test_a_file_of_several_accounts_needs_the_accounts_number(make_bank_account, finance_admin):
    account = make_bank_account("USD")
    with pytest.raises(StatementMismatch) as err:
        statement_import(
            bank_account_id=account.pk, data=two_account_ofx(b"9300"), actor=finance_admin
        )
    assert err.value.code == "account_mismatch"
    assert "2 accounts" in err.value.message
    assert counts() == (0, 0)


@pytest.mark.parametrize(
    ("identifier", "iban", "number", "fits"),
    [
        ("DE89370400440532013000", "DE89370400440532013000", "", True),
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "", True),
        ("37040044/0532013000", "", "532013000", True),
        ("1291.99.348EUR", "", "129199348", True),
        ("0532013000", "DE89370400440532013000", "", True),
        ("NL91ABNA0417164300", "DE89370400440532013000", "", False),
        ("0", "", "000", False),
        ("12345", "", "54321", False),
    ],
)
def test_statement_account_fits_bank_account(identifier, iban, number, fits):
    from reconciliation.services import _identifier_fits

    account = BankAccount(iban=iban, account_number=number)
    assert _identifier_fits(identifier, account) is fits
