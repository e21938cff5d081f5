"""RELIABILITY.md B6 (corrupted files: only StatementFormatError escapes, and corrupted files
that still parse are caught by the control total) and B7 (hostile files refused fast)."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation.importers import (
    PARSERS,
    StatementFormatError,
    bank_mapping,
    detect_format,
    parse_statement_file,
)
from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.importers.delimited import parse_csv
from reconciliation.importers.types import StatementFormat
from tests.reconciliation.conftest import GOOD_CSV_MAPPING, fixture_bytes

SEEDS = {
    "good.sta": StatementFormat.MT940,
    "interim.sta": StatementFormat.MT942,
    "good_camt053.xml": StatementFormat.CAMT053,
    "good.ofx": StatementFormat.OFX,
    "good.bai2": StatementFormat.BAI2,
    "good.csv": StatementFormat.CSV,
    "mt940_padded_entry_date.sta": StatementFormat.MT940,
    "bai2_summary_funds_types.bai2": StatementFormat.BAI2,
}
FUZZ = settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run_parser(fmt: StatementFormat, data: bytes) -> None:
    """The format's own parser, without the safety net of parse_statement_file, so that a
    parser bug shows up here as the exception it is."""
    error = None
    try:
        if fmt == StatementFormat.CSV:
            parse_csv(data, GOOD_CSV_MAPPING)
        else:
            PARSERS[fmt](data)
    except StatementFormatError as exc:
        error = exc
    if error is not None:
        assert error.message
        assert error.code


@st.composite
def corrupted(draw: st.DrawFn, seed: bytes) -> bytes:
    """A seed file with 1-3 corruptions: byte changes, cut, deleted/doubled/swapped lines,
    inserted junk."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "delete", "double", "swap", "insert", "digit"]))
        lines = bytes(data).split(b"\n")
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind in ("delete", "double", "swap") and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "delete":
                del lines[i]
            elif kind == "double":
                lines.insert(i, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        elif kind == "insert":
            i = draw(st.integers(0, len(data)))
            junk = draw(
                st.one_of(
                    st.binary(max_size=12),
                    st.sampled_from(
                        [b":61:", b":20:", b"<Ntry>", b"</Stmt>", b"<STMTTRN>", b"16,", b"88,",
                         b";", b'"', b",", b"-", b"\r", b"\x00", b"NaN", b"1e999", b"<!--"]
                    ),
                )
            )  # fmt: skip
            data[i:i] = junk
        elif kind == "digit":
            digits = [m.start() for m in re.finditer(rb"\d", bytes(data))]
            if digits:
                i = draw(st.sampled_from(digits))
                data[i] = ord(str(draw(st.integers(0, 9))))
    return bytes(data)


@pytest.mark.parametrize(("name", "fmt"), list(SEEDS.items()))
def test_b6_corrupted_variants_only_raise_statement_format_error(name, fmt):
    seed = fixture_bytes(name)

    @FUZZ
    @given(data=corrupted(seed))
    def check(data: bytes) -> None:
        run_parser(fmt, data)

    check()


@pytest.mark.parametrize(("name", "fmt"), list(SEEDS.items()))
def test_b6_arbitrary_bytes_only_raise_statement_format_error(name, fmt):
    @settings(max_examples=300, derandomize=True, deadline=None)
    @given(data=st.binary(max_size=400))
    def check(data: bytes) -> None:
        run_parser(fmt, data)
        with contextlib.suppress(StatementFormatError):
            parse_statement_file(data, filename=name, csv_mapping=GOOD_CSV_MAPPING)

    check()


# Every amount of the balanced fixtures, one digit at a time: a file that still parses after
# the change must be caught by the control total.
AMOUNT_PATTERNS = {
    "good.sta": rb"(?<=EUR)\d[\d,]*|(?<=[CD])\d+,\d*(?=N)",
    # (the pending 5000.00 entry is not a movement, so it is left out)
    "good_camt053.xml": rb"(?<=>)(?!5000)\d+\.\d+(?=</Amt>)",
    "good.bai2": rb"(?<=010,)\d+|(?<=015,)\d+|(?<=100,)\d+|(?<=400,)\d+|(?<=16,195,)\d+"
    rb"|(?<=16,475,)\d+|(?<=49,)\d+",
    "mt940_padded_entry_date.sta": rb"(?<=USD)\d[\d,]*|(?<=D)\d+,\d*(?=N)|(?<=D )\d+,\d*(?=N)",
    # (availability amounts are not part of any control total, so they are left out)
    "bai2_summary_funds_types.bai2": rb"(?<=0[14]0,)\d+|(?<=015,)\d+|(?<=100,)\d+|(?<=400,)\d+"
    rb"|(?<=072,)\d+|(?<=88,)80000|(?<=16,\d\d\d,)\d+|(?<=49,)\d+",
    # From the second row on: the first row's balance is what the opening balance is derived
    # from (a CSV proves itself consistent from there; the next statement's opening checks it).
    "good.csv": rb"(?<=\n02\.03\.2026;Card payment;)[^\n]*|(?<=\n03\.03\.2026;Fee;)[^\n]*",
}


@pytest.mark.parametrize("name", list(AMOUNT_PATTERNS))
def test_b6_every_changed_amount_digit_is_refused(name):
    seed = fixture_bytes(name)
    positions = [
        i
        for m in re.finditer(AMOUNT_PATTERNS[name], seed)
        for i in range(m.start(), m.end())
        if seed[i : i + 1].isdigit()
    ]
    assert len(positions) >= 10
    checked = 0
    for i in positions:
        digit = int(seed[i : i + 1])
        data = seed[:i] + str((digit + 1) % 10).encode() + seed[i + 1 :]
        mapping = GOOD_CSV_MAPPING if name.endswith(".csv") else None
        with pytest.raises(StatementFormatError) as err:
            parse_statement_file(data, csv_mapping=mapping)
        assert err.value.code in ("control_total", "bad_record", "structure"), err.value.message
        checked += 1
    assert checked == len(positions)


@pytest.mark.corpus
@pytest.mark.parametrize(
    "name",
    [
        "mt940/mbank_mt940.sta",
        "mt940/cmxl_mt940.sta",
        "camt053/lt_bank_camt053_statement_1.xml",
        "camt054/postfinance_camt054_batch_20200617.xml",
        "ofx/ofxparse_checking.ofx",
        "bai2/moov_sample3_multi_record_lines.bai2",
        "bai2/natwest_example.bai2",
        "csv/swedbank_lt_statement.csv",
    ],
)
def test_b6_corrupted_corpus_files(shared_data: Path, name):
    seed = (shared_data / name).read_bytes()
    fmt = StatementFormat.CSV if name.endswith(".csv") else detect_format(seed, name)

    @settings(max_examples=1000, derandomize=True, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(data=corrupted(seed))
    def check(data: bytes) -> None:
        # The format's own parser, without the safety net: a bug would escape here.
        with contextlib.suppress(StatementFormatError):
            if fmt == StatementFormat.CSV:
                parse_csv(data, bank_mapping("swedbank_lt"))
            else:
                PARSERS[fmt](data)

    check()


# --- B7


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>
<Id>&lol9;</Id></Stmt></BkToCstmrStmt></Document>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>
<Id>&xxe;</Id></Stmt></BkToCstmrStmt></Document>"""

OFX_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE OFX [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD<BANKACCTFROM><ACCTID>&xxe;</BANKACCTFROM>
</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"""


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (BILLION_LAUGHS, None),
        (EXTERNAL_ENTITY, None),
        (EXTERNAL_ENTITY, "camt053"),
        (OFX_ENTITY, None),
        (OFX_ENTITY, "ofx"),
    ],
)
def test_b7_entities_and_dtds_are_refused_fast(data, fmt):
    # when
    started = time.monotonic()
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data, format=fmt)
    # then
    # A generous bound: an expanded billion-laughs takes minutes and gigabytes, not seconds.
    assert time.monotonic() - started < 5
    assert err.value.code == "unsafe_xml"
    assert "passwd" not in err.value.message


def test_b7_oversized_input_is_refused_before_parsing():
    data = b":20:X\n" + b":86:" + b"A" * MAX_FILE_BYTES
    started = time.monotonic()
    with pytest.raises(StatementFormatError) as err:
        parse_statement_file(data)
    # A generous bound: parsing 10 MB line by line would take far longer than a size check.
    assert time.monotonic() - started < 5
    assert err.value.code == "too_large"


def test_b7_deeply_nested_xml_is_refused():
    data = b"<Document>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</Document>"
    with pytest.raises(StatementFormatError):
        parse_statement_file(data)


def test_b7_many_lines_of_ofx_nesting_is_refused():
    data = b"<OFX>" + b"<STMTRS>" * 50_000
    with pytest.raises(StatementFormatError):
        parse_statement_file(data)
