"""The corpus through the import service: every importable sample file lands in a bank account
of its own account and currency (statements of other accounts in the same file are left
out), a second import adds nothing, and every refused file writes no statement."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciliation.enums import ImportResult
from reconciliation.exceptions import StatementMismatch, StatementRefused
from reconciliation.importers import bank_mapping, parse_statement_file
from reconciliation.models import ImportLog, Statement, StatementLine
from reconciliation.services import statement_import
from tests.reconciliation.test_corpus import CSV_MAPPINGS, EXPECTED

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]

# (statements created, lines created) for the bank account of the file's first statement.
IMPORTED = {
    "mt940/asnbank_mt940.txt": (31, 8),
    "mt940/betterplace_sepa_mt9401.sta": (1, 7),
    "mt940/betterplace_with_binary_character.sta": (1, 3),
    "mt940/cmxl_mt940.sta": (1, 11),
    "mt940/mbank_mt940.sta": (1, 3),
    "mt940/sberbank_hu_171011.sta": (1, 3),
    "mt940/selfprovided_february_30.sta": (1, 1),
    "mt942/mbank_mt942.sta": (1, 3),
    "camt052/genkgo_camt052.v2.xml": (1, 1),
    "camt052/genkgo_camt052.v6.Amt-zero.xml": (1, 0),
    "camt052/postfinance_camt052_20190424.xml": (1, 2),
    "camt053/genkgo_camt053.v2.multi.statement.xml": (2, 2),
    "camt053/lt_bank_camt053_statement_1.xml": (1, 4),
    "camt054/genkgo_camt054.v2.xml": (1, 1),
    "camt054/genkgo_camt054.v8.xml": (1, 1),
    "camt054/postfinance_camt054_batch_20200617.xml": (1, 1),
    "camt054/postfinance_camt054_returns_20190520.xml": (1, 1),
    "ofx/anz_creditcard.ofx": (1, 1),
    "ofx/fidelity_cash_management.ofx": (1, 4),
    "ofx/ofxparse_checking.ofx": (1, 3),
    "ofx/ofxparse_multiple_accounts.ofx": (1, 0),
    "ofx/suncorp_bank.ofx": (1, 1),
    "bai2/moj_account_trailer_amount_blank.bai2": (1, 0),
    "bai2/moov_sample1_cad.bai2": (2, 17),
    # 7 statements of account 1111111, of which 3 repeat an empty one of the same day
    "bai2/moov_sample3_multi_record_lines.bai2": (4, 8),
    "bai2/natwest_example.bai2": (1, 5),
    "csv/bunq_nl_transactieoverzicht.csv": (1, 3),
    "csv/commerzbank_de_umsaetze.csv": (1, 1),
    "csv/kbc_be_export.csv": (1, 1),
    "csv/moneta_cz_movements.csv": (1, 1),
    "csv/monzo_uk_export.csv": (1, 1),
    "csv/n26_de_export.csv": (1, 1),
    "csv/ocbc_sg_transaction_history.csv": (1, 8),
    "csv/sparkasse_de_umsatz.csv": (1, 1),
    "csv/swedbank_lt_statement.csv": (1, 13),
}


def _account_for(make_bank_account, data: bytes, name: str):
    mapping = CSV_MAPPINGS.get(name)
    first = parse_statement_file(
        data, filename=name, csv_mapping=bank_mapping(mapping) if mapping else None,
        default_currency="EUR",
    )[0]  # fmt: skip
    identifier = first.account.replace(" ", "")
    is_iban = identifier[:2].isalpha() and identifier[2:4].isdigit() and len(identifier) > 14
    return make_bank_account(
        first.currency,
        iban=identifier if is_iban else "",
        account_number="" if is_iban else identifier,
        name=name,
    )


def test_every_importable_corpus_file_is_listed():
    assert set(IMPORTED) == {n for n, (kind, _) in EXPECTED.items() if kind != "refused"}


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_corpus_file_imports_once(shared_data: Path, make_bank_account, finance_admin, name):
    data = (shared_data / name).read_bytes()
    account = _account_for(make_bank_account, data, name)
    statements, lines = IMPORTED[name]
    # when
    outcome = statement_import(
        bank_account_id=account.pk,
        data=data,
        filename=name,
        csv_mapping=CSV_MAPPINGS.get(name),
        actor=finance_admin,
    )
    # then
    assert Statement.objects.filter(bank_account=account).count() == statements
    assert StatementLine.objects.filter(bank_account=account).count() == lines
    assert outcome.created is (statements > 0)
    # when: the same file again
    again = statement_import(
        bank_account_id=account.pk,
        data=data,
        filename=name,
        csv_mapping=CSV_MAPPINGS.get(name),
        actor=finance_admin,
    )
    assert again.created is False
    assert Statement.objects.filter(bank_account=account).count() == statements
    assert StatementLine.objects.filter(bank_account=account).count() == lines


@pytest.mark.parametrize(
    "name", sorted(n for n, (kind, _) in EXPECTED.items() if kind == "refused")
)
def test_refused_corpus_file_writes_nothing(
    shared_data: Path, make_bank_account, finance_admin, name
):
    account = make_bank_account("EUR")
    with pytest.raises((StatementRefused, StatementMismatch)) as err:
        statement_import(
            bank_account_id=account.pk,
            data=(shared_data / name).read_bytes(),
            filename=name,
            csv_mapping=CSV_MAPPINGS.get(name),
            actor=finance_admin,
        )
    assert err.value.code == EXPECTED[name][1][0]
    assert (Statement.objects.count(), StatementLine.objects.count()) == (0, 0)
    assert ImportLog.objects.get().result == ImportResult.REFUSED
