"""Every sample file of ../shared/data: imports with exact counts and balances, or is refused
with a clear message (SOURCES.md marks which are MALFORMED / INVALID / EDGE).

Many real samples were anonymised by hand and no longer add up; the control total refuses
them with both figures, as it must refuse any statement whose balances do not agree.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reconciliation.importers import StatementFormatError, bank_mapping, parse_statement_file

pytestmark = pytest.mark.corpus

FOLDERS = ("mt940", "mt942", "camt052", "camt053", "camt054", "ofx", "bai2", "csv")

CSV_MAPPINGS = {
    "csv/bank_of_ireland_export.csv": "bank_of_ireland",
    "csv/bunq_nl_transactieoverzicht.csv": "bunq_nl",
    "csv/commerzbank_de_umsaetze.csv": "commerzbank_de",
    "csv/kbc_be_export.csv": "kbc_be",
    "csv/moneta_cz_movements.csv": "moneta_cz",
    "csv/monzo_uk_export.csv": "monzo_uk",
    "csv/n26_de_export.csv": "n26_de",
    "csv/ocbc_sg_transaction_history.csv": "ocbc_sg",
    "csv/rabobank_nl_csv_a.csv": "rabobank_nl",
    "csv/raiffeisen_at_tab_delimited.csv": "raiffeisen_at",
    "csv/sparkasse_de_umsatz.csv": "sparkasse_de",
    "csv/swedbank_lt_statement.csv": "swedbank_lt",
}


def ok(*statements):
    """Each statement: (format, account, currency, line count, opening, closing)."""
    return ("ok", statements)


def many(count, *, lines, movement, first, last):
    """A file of many statements: their count, total lines and movement, first opening and
    last closing balance (account, balance)."""
    return ("many", (count, lines, movement, first, last))


def refused(code, text):
    return ("refused", (code, text))


EXPECTED = {
    # --- MT940
    "mt940/asnbank_mt940.txt": many(31, lines=8, movement="56.94", first=("NL81ASNB9999999999", "444.29"), last=("NL81ASNB9999999999", "501.23")),
    "mt940/betterplace_amount_formats.sta": refused("structure", "line 1: tag :60F: comes before the statement's :20:"),
    "mt940/betterplace_currency_in_25.sta": refused("structure", "line 1: tag :25: comes before the statement's :20:"),
    "mt940/betterplace_missing_crlf_at_end.sta": refused("structure", "line 1: tag :62F: comes before the statement's :20:"),
    "mt940/betterplace_sepa_mt9401.sta": many(26, lines=97, movement="-9269135.90", first=("50880050/0194774600888", "-1234718.36"), last=("50880050/0194804000888", "50.05")),
    "mt940/betterplace_sepa_snippet_broken.sta": refused("structure", "line 6: a second :25: account tag (the account was given at line 2)"),
    "mt940/betterplace_with_binary_character.sta": ok(
        ("mt940", "51230800/0000007055", "EUR", 3, "380115.77", "199929.02"),
        ("mt940", "51230800/0000007304", "EUR", 1, "130073.19", "131193.19"),
    ),
    "mt940/cmxl_mt940.sta": ok(
        ("mt940", "45050050/76198810", "DEM", 11, "84349.74", "84437.04"),
        ("mt940", "10020030/1234567", "EUR", 2, "2187.95", "4387.95"),
        ("mt940", "BPHKPLPK/320000546101", "PLN", 3, "40000.00", "50040.00"),
    ),
    "mt940/jejik_abnamro.sta": refused("control_total", "opening balance 3236.28 + 8 transactions (-321.44) = 2914.84, but the closing balance is 876.84"),
    "mt940/jejik_ing.sta": refused("control_total", "opening balance 0.00 + 7 transactions (-45.59) = -45.59, but the closing balance is 3.47"),
    "mt940/jejik_knab.sta": refused("control_total", "opening balance 3058.98 + 2 transactions (-6760) = -3701.02, but the closing balance is 798.98"),
    "mt940/jejik_rabobank.sta": refused("control_total", "opening balance 473.17 + 1 transactions (-1213.28) = -740.11, but the closing balance is 395.82"),
    "mt940/jejik_triodos.sta": refused("control_total", "opening balance 4975.09 + 2 transactions (-715.70) = 4259.39, but the closing balance is 4370.79"),
    "mt940/mbank_mt940.sta": ok(("mt940", "PL29114010810000267002001002", "PLN", 3, "0.40", "0.43")),
    "mt940/sberbank_hu_171011.sta": ok(("mt940", "1966315302010001", "HUF", 3, "627311.30", "617874.30")),
    "mt940/selfprovided_february_30.sta": ok(("mt940", "12345678/1020304050", "EUR", 1, "1200.00", "1194.00")),
    "mt940/selfprovided_invalid_statement.sta": refused("unknown_format", "line 1: the format cannot be recognised"),
    "mt940/selfprovided_malformed_details.sta": refused("control_total", "opening balance 12345.12 + 1 transactions (-233.15) = 12111.97, but the closing balance is 12345.98"),
    # --- MT942
    "mt942/mbank_mt942.sta": ok(("mt942", "PL29114010810000267002001002", "PLN", 3, None, None)),
    "mt942/selfprovided_mt942.sta": refused("control_total", "line 11: :90D: announces 1 entries of 2.30 but the report holds 1 of 0.42"),
    # --- camt.052
    "camt052/genkgo_camt052.v2.xml": ok(("camt052", "CH2801234000123456789", "SEK", 1, None, None)),
    "camt052/genkgo_camt052.v6.Amt-zero.xml": ok(("camt052", "CH2801234000123456789", "SEK", 0, None, None)),
    "camt052/postfinance_camt052_20190424.xml": ok(("camt052", "CH2909000000250094239", "CHF", 2, None, None)),
    # --- camt.053
    "camt053/genkgo_camt053.only-Dt-with-DtTm.xml": refused("structure", "element <Stmt[1]>: has no closing balance (Bal CLBD)"),
    "camt053/genkgo_camt053.v2.all-balance-types.xml": refused("control_total", "opening balance 1.01 + 1 transactions (8.850) = 9.860, but the closing balance is 4.04"),
    "camt053/genkgo_camt053.v2.five.decimals.xml": refused("control_total", "opening balance 18.150 + 1 transactions (8.850) = 27.000, but the closing balance is 27.050"),
    "camt053/genkgo_camt053.v2.minimal.xml": refused("currency_mismatch", "element <Stmt[1]/Bal>: the closing balance CLBD is in SEK, the account in EUR"),
    "camt053/genkgo_camt053.v2.multi.statement.xml": ok(
        ("camt053", "NL26VAYB8060476890", "EUR", 1, "18.15", "27.00"),
        ("camt053", "NL26VAYB8060476890", "EUR", 1, "27.00", "20.00"),
    ),
    "camt053/genkgo_camt053.v2.wrong.xml": refused("no_statement", "element <BkToCstmrStmt>: <BkToCstmrStmt> holds no <Stmt>"),
    "camt053/genkgo_camt053.v4.xml": refused("currency_mismatch", "the closing balance CLBD is in SEK, the account in EUR"),
    "camt053/genkgo_camt053.v8.xml": refused("currency_mismatch", "the closing balance CLBD is in SEK, the account in EUR"),
    "camt053/lt_bank_camt053_statement_1.xml": ok(("camt053", "LT007180000000000000", "EUR", 4, "2768.08", "0.00")),
    # --- camt.054
    "camt054/genkgo_camt054.v2.xml": ok(("camt054", "CH2801234000123456789", "SEK", 1, None, None)),
    "camt054/genkgo_camt054.v8.xml": ok(("camt054", "CH2801234000123456789", "SEK", 1, None, None)),
    "camt054/postfinance_camt054_batch_20200617.xml": ok(("camt054", "CH2909000000250094239", "CHF", 1, None, None)),
    "camt054/postfinance_camt054_returns_20190520.xml": ok(("camt054", "CH2909000000250094239", "CHF", 1, None, None)),
    # --- OFX (no opening balance: LEDGERBAL kept as the closing one, no control total)
    "ofx/anz_creditcard.ofx": ok(("ofx", "1234123412341234", "AUD", 1, None, "-123.45")),
    "ofx/fidelity_cash_management.ofx": ok(("ofx", "X0000001", "USD", 4, None, None)),
    "ofx/ofxparse_account_listing.ofx": refused("no_statement", "holds no statement (STMTRS, CCSTMTRS or INVSTMTRS)"),
    "ofx/ofxparse_bank_small.ofx": refused("no_statement", "holds no statement (STMTRS, CCSTMTRS or INVSTMTRS)"),
    "ofx/ofxparse_checking.ofx": ok(("ofx", "1452687~7", "USD", 3, None, "100.99")),
    "ofx/ofxparse_error_message.ofx": refused("no_statement", "element <STATUS>: the bank answered with an error (2000 General Server Error)"),
    "ofx/ofxparse_fail_date_missing.ofx": refused("structure", "element <STMTRS[1]/STMTTRN[1]>: has no DTPOSTED"),
    "ofx/ofxparse_fail_decimal_error.ofx": refused("bad_amount", "<STMTRS[1]/STMTTRN[1]/TRNAMT> '$120' is not an amount"),
    "ofx/ofxparse_fail_empty_balance.ofx": refused("bad_amount", "element <STMTRS[1]/LEDGERBAL>: LEDGERBAL has an empty BALAMT"),
    "ofx/ofxparse_multiple_accounts.ofx": ok(("ofx", "9100", "USD", 0, None, "111"), ("ofx", "9200", "USD", 0, None, "222")),
    "ofx/ofxparse_signon_fail.ofx": refused("no_statement", "the bank answered with an error (15500"),
    "ofx/ofxparse_v102_empty_tags.ofx": refused("bad_amount", "LEDGERBAL has an empty BALAMT"),
    "ofx/suncorp_bank.ofx": ok(("ofx", "123456789", "AUD", 1, None, "1234.12")),
    # --- BAI2
    "bai2/moj_account_trailer_amount_blank.bai2": ok(("bai2", "12345", "USD", 0, None, None), ("bai2", "54321", "USD", 0, None, None)),
    "bai2/moov_parse_error.bai2": refused("unknown_format", "line 1: the format cannot be recognised"),
    "bai2/moov_sample1_cad.bai2": ok(("bai2", "10200123456", "CAD", 11, None, None), ("bai2", "10200123456", "CAD", 6, None, None)),
    "bai2/moov_sample3_multi_record_lines.bai2": many(15, lines=26, movement="-197.05", first=("1111111", "-35.00"), last=("11111111", "0.00")),
    "bai2/moov_sample4_gs_continuations.bai2": refused("control_total", "line 5: account 107049932: total credits (100) 19.12 but the details add up to 1435.00"),
    "bai2/natwest_example.bai2": ok(("bai2", "88888888 600004", "GBP", 5, "365.21", "338.45")),
    # --- CSV with the saved bank mappings
    "csv/bank_of_ireland_export.csv": refused("control_total", "line 5: the balance after this row is 100, but the opening balance -328.03 + the rows up to it = -402.50"),
    "csv/bunq_nl_transactieoverzicht.csv": ok(("csv", "NL47BUNQ2025181418", "EUR", 3, None, None)),
    "csv/commerzbank_de_umsaetze.csv": ok(("csv", "DE44200400000538917600", "EUR", 1, None, None)),
    "csv/kbc_be_export.csv": ok(("csv", "BE11123456789012", "EUR", 1, "223.35", "219.95")),
    "csv/moneta_cz_movements.csv": ok(("csv", "123456789/1234", "CZK", 1, None, None)),
    "csv/monzo_uk_export.csv": ok(("csv", "", "GBP", 1, None, None)),
    "csv/n26_de_export.csv": ok(("csv", "", "EUR", 1, None, None)),
    "csv/ocbc_sg_transaction_history.csv": ok(("csv", "", "SGD", 8, None, None)),
    "csv/rabobank_nl_csv_a.csv": refused("control_total", "line 5: the balance after this row is 13084.53, but the opening balance 5594.77 + the rows up to it = 5307.28"),
    "csv/raiffeisen_at_tab_delimited.csv": refused("bad_amount", "line 71: neither a debit nor a credit amount"),
    "csv/sparkasse_de_umsatz.csv": ok(("csv", "1000594757", "EUR", 1, None, None)),
    "csv/swedbank_lt_statement.csv": ok(("csv", "LT357300000000000000", "LTL", 13, "10374.04", "12952.97")),
}  # fmt: skip


def parse(shared_data: Path, name: str):
    mapping = CSV_MAPPINGS.get(name)
    return parse_statement_file(
        (shared_data / name).read_bytes(),
        filename=name,
        csv_mapping=bank_mapping(mapping) if mapping else None,
        default_currency="EUR",
    )


def test_every_corpus_file_has_an_expectation(shared_data):
    files = {
        f"{folder}/{path.name}"
        for folder in FOLDERS
        for path in (shared_data / folder).iterdir()
        if path.is_file()
    }
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(shared_data, name):
    kind, expected = EXPECTED[name]
    if kind == "refused":
        code, text = expected
        with pytest.raises(StatementFormatError) as err:
            parse(shared_data, name)
        assert err.value.code == code
        assert text in err.value.message
        return
    statements = parse(shared_data, name)
    if kind == "many":
        count, lines, movement, first, last = expected
        assert len(statements) == count
        assert sum(len(s.lines) for s in statements) == lines
        assert sum(s.movement for s in statements) == Decimal(movement)
        assert (statements[0].account, statements[0].opening_balance) == (
            first[0],
            Decimal(first[1]),
        )
        assert (statements[-1].account, statements[-1].closing_balance) == (
            last[0],
            Decimal(last[1]),
        )
        return
    got = [
        (s.format.value, s.account, s.currency, len(s.lines), s.opening_balance, s.closing_balance)
        for s in statements
    ]
    want = [
        (f, a, c, n, None if o is None else Decimal(o), None if cl is None else Decimal(cl))
        for f, a, c, n, o, cl in expected
    ]
    assert got == want
    for statement in statements:
        if statement.opening_balance is not None:
            assert statement.opening_balance + statement.movement == statement.closing_balance
        assert all(line.currency == statement.currency for line in statement.lines)
