"""The parsers on hand-written files: exact lines, signs, dates, references and refusals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reconciliation.importers import (
    BANK_MAPPINGS,
    CsvMapping,
    StatementFormat,
    StatementFormatError,
    detect_format,
    line_fingerprints,
    parse_statement_file,
)
from reconciliation.importers.mt940 import swift_amount
from tests.reconciliation.conftest import GOOD_CSV_MAPPING, fixture_bytes


def test_mt940_statement_lines_signs_and_references():
    # given / when
    [statement] = parse_statement_file(fixture_bytes("good.sta"))
    # then
    assert statement.format == StatementFormat.MT940
    assert statement.account == "DE89370400440532013000"
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("1000.00"),
        Decimal("1219.00"),
    )
    assert statement.opening_date == dt.date(2026, 3, 1)
    assert statement.closing_date == dt.date(2026, 3, 3)
    assert [line.amount for line in statement.lines] == [
        Decimal("250.00"),
        Decimal("-40.5"),
        Decimal("9.50"),  # RD: the reversal of a debit puts money back
    ]
    first = statement.lines[0]
    assert first.end_to_end_id == "E2E-INV-1001"
    assert first.counterparty_name == "ACME GMBH"
    assert first.counterparty_account == "DE44500105175407324931"
    assert first.bank_reference == "BANKREF001"
    assert "INV-2026-000001" in first.description
    assert first.source == "line 5"


def test_mt942_checks_its_count_and_sum_totals():
    [report] = parse_statement_file(fixture_bytes("interim.sta"))
    assert report.format == StatementFormat.MT942
    assert report.control == "summary_totals"
    assert report.opening_balance is None
    assert [line.amount for line in report.lines] == [Decimal("100.00"), Decimal("-20.00")]
    # when the announced debit sum is wrong
    broken = fixture_bytes("interim.sta").replace(b":90D:1EUR20,00", b":90D:1EUR21,00")
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(broken)
    assert err.value.code == "control_total"
    assert err.value.line == 10


def test_camt053_booked_entries_only_and_parties_by_direction():
    [statement] = parse_statement_file(fixture_bytes("good_camt053.xml"))
    assert statement.format == StatementFormat.CAMT053
    assert statement.sequence == "64"
    assert [line.amount for line in statement.lines] == [Decimal("300.75"), Decimal("-420.50")]
    credit, debit = statement.lines
    assert (credit.counterparty_name, credit.end_to_end_id) == ("Globex Ltd", "E2E-INV-1002")
    assert credit.counterparty_account == "GB33BUKB20201555555555"
    assert (debit.counterparty_name, debit.end_to_end_id) == ("Initech Supplies", "")
    assert debit.source == "Stmt[1]/Ntry[2]"


def test_ofx_sgml_lines_and_ledger_balance():
    [statement] = parse_statement_file(fixture_bytes("good.ofx"))
    assert (statement.account, statement.currency) == ("0532013000", "USD")
    assert statement.closing_balance == Decimal("2424.75")
    assert statement.opening_balance is None
    assert statement.control == "none"
    assert [(ln.booking_date, ln.amount, ln.bank_reference) for ln in statement.lines] == [
        (dt.date(2026, 3, 2), Decimal("1500.00"), "FIT-0001"),
        (dt.date(2026, 3, 3), Decimal("-75.25"), "FIT-0002"),
    ]


def test_bai2_minor_units_type_codes_and_continuation():
    [statement] = parse_statement_file(fixture_bytes("good.bai2"))
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("1000.00"),
        Decimal("2450.25"),
    )
    assert [line.amount for line in statement.lines] == [Decimal("1500.00"), Decimal("-49.75")]
    assert statement.lines[0].end_to_end_id == "E2E-INV-1003"
    assert statement.lines[0].bank_reference == "BREF-100"


def test_csv_running_balance_gives_opening_and_closing():
    [statement] = parse_statement_file(fixture_bytes("good.csv"), csv_mapping=GOOD_CSV_MAPPING)
    assert statement.control == "running_balance"
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("2000.00"),
        Decimal("3150.00"),
    )
    assert [line.amount for line in statement.lines] == [
        Decimal("1250.00"),
        Decimal("-49.90"),
        Decimal("-49.90"),
        Decimal("-0.20"),
    ]


def test_csv_wrong_running_balance_is_refused_naming_the_row():
    data = fixture_bytes("good.csv").replace(b"3.150,20", b"3.150,30")
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data, csv_mapping=GOOD_CSV_MAPPING)
    assert err.value.code == "control_total"
    assert err.value.line == 4
    assert "3150.30" in err.value.message
    assert "3150.20" in err.value.message


def test_wrong_closing_balance_is_refused_with_both_figures():
    data = fixture_bytes("good.sta").replace(b":62F:C260303EUR1219,00", b":62F:C260303EUR1219,01")
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data)
    assert err.value.code == "control_total"
    assert err.value.line == 11  # the closing balance :62F:
    assert "= 1219.00" in err.value.message
    assert "closing balance is 1219.01" in err.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("380115,12", "380115.12"),
        ("380115,1", "380115.1"),
        ("380115,", "380115"),
        ("0,12", "0.12"),
        ("00,12", "0.12"),
        ("001,12", "1.12"),
        ("500", "500"),
    ],
)
def test_swift_amount_variants(text, expected):
    assert swift_amount(text, line=1) == Decimal(expected)


@pytest.mark.parametrize("text", ["1,2,3", "12.50", ",5", "-1,00", "1e3"])
def test_swift_amount_refuses_others(text):
    with pytest.raises(StatementFormatError):
        swift_amount(text, line=3)


def test_value_date_30_february_is_the_last_day_of_february():
    data = b":20:X\n:25:DE89370400440532013000\n:28C:1\n:60F:C160229EUR10,00\n"
    data += b":61:1602300301D6,00NTRFNONREF\n:86:FEE\n:62F:C160301EUR4,00\n-\n"
    [statement] = parse_statement_file(data)
    line = statement.lines[0]
    assert (line.value_date, line.booking_date) == (dt.date(2016, 2, 29), dt.date(2016, 3, 1))


def test_impossible_booking_date_is_refused():
    data = b":20:X\n:25:1\n:28C:1\n:60F:C161301EUR10,00\n:62F:C161301EUR10,00\n-\n"
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data)
    assert err.value.code == "bad_date"
    assert err.value.line == 4


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("good.sta", StatementFormat.MT940),
        ("interim.sta", StatementFormat.MT942),
        ("good_camt053.xml", StatementFormat.CAMT053),
        ("good.ofx", StatementFormat.OFX),
        ("good.bai2", StatementFormat.BAI2),
        ("good.csv", StatementFormat.CSV),
    ],
)
def test_detect_format_from_content(name, expected):
    assert detect_format(fixture_bytes(name), name) == expected


def test_csv_without_mapping_is_refused():
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(fixture_bytes("good.csv"), format="csv")
    assert err.value.code == "mapping_required"


def test_declared_format_must_match_the_content():
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(fixture_bytes("good_camt053.xml"), format="camt054")
    assert err.value.code == "format_mismatch"


def test_unknown_format_name_is_refused():
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(fixture_bytes("good.sta"), format="pdf")
    assert err.value.code == "unknown_format"


def test_fingerprints_keep_identical_lines_apart_and_are_stable():
    [statement] = parse_statement_file(fixture_bytes("good.csv"), csv_mapping=GOOD_CSV_MAPPING)
    first = line_fingerprints(statement.lines)
    again = line_fingerprints(
        parse_statement_file(fixture_bytes("good.csv"), csv_mapping=GOOD_CSV_MAPPING)[0].lines
    )
    assert first == again
    assert len(set(first)) == 4  # the two identical card payments stay two lines


def test_csv_mapping_from_dict_round_trip_and_refusals():
    mapping = BANK_MAPPINGS["kbc_be"]
    assert CsvMapping.from_dict(mapping.to_dict()) == mapping
    with pytest.raises(StatementFormatError) as err:
        CsvMapping.from_dict({"date": "Date", "amount": "A", "surprise": 1})
    assert err.value.code == "bad_mapping"
    with pytest.raises(StatementFormatError):
        CsvMapping.from_dict({"date": "Date", "amount": "A", "debit": "D"})


def test_saved_mappings_exist_for_every_corpus_bank():
    assert sorted(BANK_MAPPINGS) == [
        "bank_of_ireland",
        "bunq_nl",
        "commerzbank_de",
        "kbc_be",
        "moneta_cz",
        "monzo_uk",
        "n26_de",
        "ocbc_sg",
        "rabobank_nl",
        "raiffeisen_at",
        "sparkasse_de",
        "swedbank_lt",
    ]


# --- Real variants refused before (issue 11): hand-written files reproducing them


def test_mt940_padded_entry_date_and_funds_code_after_the_mark():
    # given a US bank's statement: entry dates padded with blanks or written 0000, funds code D
    # after the D/C mark, a blank before one amount
    data = fixture_bytes("mt940_padded_entry_date.sta")

    # when it is read
    [statement] = parse_statement_file(data)

    # then every line is there with its sign, and the balances add up
    assert (statement.format, statement.account, statement.currency) == (
        StatementFormat.MT940,
        "0532013000",
        "USD",
    )
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("10000.00"),
        Decimal("11233.22"),
    )
    assert [
        (ln.booking_date, ln.amount, ln.transaction_code, ln.bank_reference)
        for ln in statement.lines
    ] == [
        (dt.date(2024, 3, 12), Decimal("-212.39"), "NMSC", ""),
        (dt.date(2024, 3, 12), Decimal("1500.00"), "NTRF", "FT24072ABC"),
        (dt.date(2024, 3, 12), Decimal("-75"), "NCHK", "CHK1001"),
        (dt.date(2024, 3, 12), Decimal("0.61"), "NINT", ""),
        (dt.date(2024, 3, 12), Decimal("20.00"), "NTRF", "RET001"),
    ]
    assert statement.lines[0].description == "MONTHLY SERVICE FEE"


def test_mt940_padded_entry_date_still_enforces_the_control_total():
    # given the padded statement with one amount changed
    data = fixture_bytes("mt940_padded_entry_date.sta").replace(b"DD212,39", b"DD212,93")

    # when it is read
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data)

    # then the closing balance no longer agrees and the error names its line
    assert (err.value.code, err.value.line) == ("control_total", 15)
    assert "= 11232.68, but the closing balance is 11233.22" in err.value.message


def test_mt940_lower_case_marks_sign_like_upper_case_ones():
    # given the padded statement with its marks in lower case (rd: a reversed debit, money in)
    data = fixture_bytes("mt940_padded_entry_date.sta")
    for upper, lower in ((b" DD", b" dD"), (b" CD", b" cD"), (b"2DD", b"2dD"), (b"0CD", b"0cD")):
        data = data.replace(upper, lower)
    data = data.replace(b"RDD 20", b"rdD 20")

    # when it is read
    [statement] = parse_statement_file(data)

    # then the amounts and their signs are those of the upper-case file
    assert b":61:240312    dD212,39" in data
    assert [ln.amount for ln in statement.lines] == [
        Decimal("-212.39"),
        Decimal("1500.00"),
        Decimal("-75"),
        Decimal("0.61"),
        Decimal("20.00"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b":61:240312     DD212,39NMSCNONREF//", "is not a statement line"),
        (b":61:240312    XD212,39NMSCNONREF//", "is not a statement line"),
        (b":61:2403121332DD212,39NMSCNONREF//", "2024-13-32 is not a date"),
    ],
)
def test_mt940_bad_padding_or_entry_date_is_refused_naming_the_line(line, message):
    # given the padded statement with its first :61: damaged
    data = fixture_bytes("mt940_padded_entry_date.sta").replace(
        b":61:240312    DD212,39NMSCNONREF//", line
    )

    # when it is read
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data)

    # then the error names the line
    assert err.value.line == 5
    assert message in err.value.message


def test_bai2_summaries_ended_early_cut_and_with_every_funds_type():
    # given accounts whose summaries end before their funds type (`,015,1490196,/` then
    # `88,100,490196,1,,400,000,0,/`), are cut between type code and amount, and carry funds
    # types 0, S, V, D and empty; details with S, V, D, Z and references in a continuation
    data = fixture_bytes("bai2_summary_funds_types.bai2")

    # when it is read
    first, second = parse_statement_file(data)

    # then both accounts balance and every detail has its amount, sign and reference
    assert (first.account, first.opening_balance, first.closing_balance) == (
        "0532013000",
        Decimal("10000.00"),
        Decimal("14901.96"),
    )
    assert [(ln.amount, ln.bank_reference) for ln in first.lines] == [
        (Decimal("4901.96"), "BREF-1")
    ]
    assert (second.account, second.opening_balance, second.closing_balance) == (
        "0532013001",
        Decimal("5000.00"),
        Decimal("7200.00"),
    )
    assert [
        (ln.amount, ln.transaction_code, ln.bank_reference, ln.description) for ln in second.lines
    ] == [
        (Decimal("2000.00"), "115", "LBX-77", "LOCKBOX DEPOSIT 77"),
        (Decimal("1000.00"), "195", "FT-9", "WIRE IN"),
        (Decimal("-500.00"), "475", "CHK-1003", "CHECK PAID 1003"),
        (Decimal("-300.00"), "451", "ACH-1", "ACH DEBIT ACME"),
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # the last summary ended by the slash with no comma, or with one more empty field
        (b"015,1490196,/", b"015,1490196/"),
        (b"015,1490196,/", b"015,1490196,,,,/"),
        # the continuation cut between amount and item count (the spec's way)
        (b"015,1490196,/\n88,100,", b"015,1490196/\n88,,,100,"),
        # the whole summary on one line
        (b"015,1490196,/\n88,100,", b"015,1490196,,,100,"),
    ],
)
def test_bai2_every_way_to_end_a_summary_reads_the_same(old, new):
    # given the first account written another way
    data = fixture_bytes("bai2_summary_funds_types.bai2").replace(old, new)
    assert data != fixture_bytes("bai2_summary_funds_types.bai2")

    # when it is read
    first, _ = parse_statement_file(data)

    # then the figures are those of the fixture
    assert (first.opening_balance, first.closing_balance, first.movement) == (
        Decimal("10000.00"),
        Decimal("14901.96"),
        Decimal("4901.96"),
    )


@pytest.mark.parametrize(
    ("old", "new", "code", "line", "message"),
    [
        (b"88,100,490196,1,,", b"88,100,490196,1,X,", "bad_summary", 4, "funds type 'X'"),
        (b"88,100,490196,", b"88,100,49O196,", "bad_summary", 4, "'49O196' is not a whole"),
        (b"88,80000,2,V,240311,", b"88,80000,2,V,2403,", "bad_summary", 8, "'2403' is not YYMM"),
        (b"D,2,0,15000,1,5000,/", b"D,200,0,15000,/", "bad_summary", 8, "count '200'"),
        (b"S,100000,150000,", b"S,1OOOOO,150000,", "bad_summary", 7, "'1OOOOO' is not a number"),
        (b"16,115,200000,S,100000,", b"16,115,200000,S,1x,", "bad_funds_type", 9, "'1x'"),
        (b"16,195,100000,V,240311,", b"16,195,100000,Q,240311,", "bad_funds_type", 11, "'Q'"),
        (b"16,475,50000,D,2,", b"16,475,50000,D,A,", "bad_funds_type", 12, "count 'A'"),
        (b"16,475,50000,D,2,0,", b"16,475,50000,D,2,X,", "bad_funds_type", 12, "days 'X'"),
        (b"88,100,490196,", b"88,100,490169,", "control_total", 3, "(100) 4901.69 but"),
    ],
)
def test_bai2_corrupted_summary_or_availability_names_the_line(old, new, code, line, message):
    # given the fixture with one summary or detail field damaged
    data = fixture_bytes("bai2_summary_funds_types.bai2").replace(old, new)
    assert data != fixture_bytes("bai2_summary_funds_types.bai2")

    # when it is read
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data)

    # then the error names the line and the field
    assert (err.value.code, err.value.line) == (code, line)
    assert message in err.value.message
