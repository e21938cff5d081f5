"""Payment files of payment runs: NACHA and pain.001 writers, exact to the byte and the cent, and
validators that accept what banks accept and refuse the real malformed samples."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payables.exports import (
    CreditTransfer,
    FormatProblem,
    NachaFormatError,
    Originator,
    Pain001FormatError,
    PaymentExportError,
    nacha_file,
    nacha_validate,
    pain001_file,
    pain001_validate,
)

D = Decimal
EFFECTIVE = dt.date(2026, 11, 27)
CREATED = dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)
ORIGINATOR = Originator(
    name="Acme Back Office Inc",
    company_id="1234567890",
    routing_number="021000021",
    account_number="123456789",
    iban="DE89370400440532013000",
    bic="COBADEFFXXX",
    bank_name="JPMorgan Chase",
)
ROUTINGS = ("021200025", "121042882", "026009593", "011000138")


def ach(n: int, amount: str = "100.00", **overrides: str) -> CreditTransfer:
    values = {
        "end_to_end_id": f"PR1-{n}",
        "payee_name": f"Vendor {n}",
        "amount": D(amount),
        "currency": "USD",
        "routing_number": ROUTINGS[n % len(ROUTINGS)],
        "account_number": f"9984{n:05d}",
    }
    values.update(overrides)
    return CreditTransfer(**values)  # type: ignore[arg-type]


def write_nacha(transfers: list[CreditTransfer], **kwargs: object) -> bytes:
    return nacha_file(
        originator=ORIGINATOR,
        transfers=transfers,
        effective_date=EFFECTIVE,
        created_at=CREATED,
        **kwargs,  # type: ignore[arg-type]
    )


def lines_of(data: bytes) -> list[str]:
    return data.decode("ascii").split("\n")


# ------------------------------------------------------------------------------- NACHA writer


def test_nacha_file_is_exact_to_the_byte() -> None:
    # given two vendor payments, one to a savings account with a remittance, one without
    transfers = [
        ach(1, "1250.50", account_type="savings", remittance="Bills B-101, B-102 *paid*"),
        ach(2, "0.07", payee_name="Zoë's Café ~Ltd~ with a very long name"),
    ]

    # when the file is written
    data = write_nacha(transfers)

    # then every record is what NACHA prescribes, padded with 9-filler to a block of 10
    assert lines_of(data) == [
        "101 02100002112345678902611251430A094101JPMORGAN CHASE         ACME BACK OFFICE INC           ",
        "5220ACME BACK OFFICE                    1234567890CCDVENDOR PAY      261127   1021000020000001",
        "632121042882998400001        0000125050PR1-1          VENDOR 1                1021000020000001",
        "705BILLS B-101, B-102 PAID                                                         00010000001",
        "622026009593998400002        0000000007PR1-2          ZOE'S CAFE LTD WITH A   0021000020000002",
        "822000000300147052470000000000000000001250571234567890                         021000020000001",
        "9000001000001000000030014705247000000000000000000125057                                       ",
        "9" * 94,
        "9" * 94,
        "9" * 94,
        "",
    ]
    assert all(len(line) == 94 for line in lines_of(data)[:-1])


def test_nacha_file_round_trips_through_the_validator() -> None:
    # given three payments
    transfers = [ach(1, "10.00"), ach(2, "20.05", remittance="INV-2"), ach(3, "99999999.99")]

    # when the file is written and read back
    summary = nacha_validate(write_nacha(transfers))

    # then the amounts, accounts, routing numbers, names and traces come back
    (batch,) = summary.batches
    assert [(e.routing_number, e.account_number, e.amount, e.name) for e in batch.entries] == [
        ("121042882", "998400001", D("10.00"), "VENDOR 1"),
        ("026009593", "998400002", D("20.05"), "VENDOR 2"),
        ("011000138", "998400003", D("99999999.99"), "VENDOR 3"),
    ]
    assert [e.trace_number for e in batch.entries] == [
        "021000020000001",
        "021000020000002",
        "021000020000003",
    ]
    assert [e.individual_id for e in batch.entries] == ["PR1-1", "PR1-2", "PR1-3"]
    assert batch.entries[1].addenda == ("INV-2",)
    assert (batch.sec_code, batch.service_class_code, batch.effective_date) == (
        "CCD",
        "220",
        "261127",
    )
    assert (summary.total_credit, summary.total_debit) == (D("100000030.04"), D("0.00"))
    assert summary.entry_hash == 12104288 + 2600959 + 1100013
    assert (summary.record_count, summary.block_count, summary.warnings) == (10, 1, ())


def test_nacha_file_of_50000_transfers_is_one_valid_batch() -> None:
    # given a payment run of 50,000 payments, each with a remittance
    transfers = [
        ach(n, f"{n % 1000 + 1}.{n % 100:02d}", remittance=f"BILL-{n}") for n in range(50_000)
    ]

    # when it is written and validated
    summary = nacha_validate(write_nacha(transfers))

    # then every payment and addenda is in the controls
    assert (summary.entry_count, summary.addenda_count) == (50_000, 50_000)
    assert summary.total_credit == sum((t.amount for t in transfers), D(0))
    assert summary.block_count == 10_001  # 100,004 records, padded to 100,010


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        (ach(1, currency="EUR"), "transfer 'PR1-1': ACH pays USD only, not 'EUR'"),
        (
            ach(1, routing_number="021200026"),
            "transfer 'PR1-1': routing number '021200026' is not a valid ABA number",
        ),
        (
            ach(1, "10.005"),
            "transfer 'PR1-1': amount Decimal('10.005') is not a Decimal in whole cents",
        ),
        (ach(1, "0.00"), "transfer 'PR1-1': amount 0.00 must be above 0 and at most 99,999,999.99"),
        (
            ach(1, "100000000.00"),
            "transfer 'PR1-1': amount 100000000.00 must be above 0 and at most 99,999,999.99",
        ),
        (
            ach(1, account_number="123456789012345678"),
            "transfer 'PR1-1': account number must be 1 to 17 letters, digits or hyphens",
        ),
        (
            ach(1, account_type="money market"),
            "transfer 'PR1-1': account type 'money market' is not checking or savings",
        ),
        (
            ach(1, end_to_end_id="PR1-é"),
            "transfer 'PR1-é': end_to_end_id must be 1 to 35 printable ASCII characters",
        ),
        (
            ach(1, payee_name="***"),
            "transfer 'PR1-1': payee name is empty once reduced to ACH characters",
        ),
    ],
)
def test_nacha_file_refuses_what_it_cannot_write_exactly(
    transfer: CreditTransfer, message: str
) -> None:
    # given a payment that cannot go into an ACH file as it is
    # when the file is written
    with pytest.raises(PaymentExportError) as refused:
        write_nacha([ach(0), transfer])

    # then the whole file is refused, naming the payment
    assert refused.value.message == message
    assert refused.value.details["problems"] == (message,)


def test_nacha_file_lists_every_bad_transfer_and_duplicate_ids() -> None:
    # given a duplicate id and a bad routing number among good payments
    transfers = [ach(1), ach(2, end_to_end_id="PR1-1"), ach(3, routing_number="123")]

    # when the file is written
    with pytest.raises(PaymentExportError) as refused:
        write_nacha(transfers)

    # then both problems are listed
    assert refused.value.details["problems"] == (
        "transfer 'PR1-1': end_to_end_id is not unique in the file",
        "transfer 'PR1-3': routing number '123' is not a valid ABA number",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sec_code": "CTX"}, "SEC code 'CTX' is not supported (CCD or PPD)"),
        ({"file_id_modifier": "a"}, "file id modifier 'a' must be one of A-Z or 0-9"),
        ({"transfers": []}, "there are no transfers"),
        ({"effective_date": CREATED}, "effective_date must be a date"),
    ],
)
def test_nacha_file_refuses_bad_file_settings(kwargs: dict[str, object], message: str) -> None:
    # given a file setting banks do not take
    arguments: dict[str, object] = {
        "originator": ORIGINATOR,
        "transfers": [ach(1)],
        "effective_date": EFFECTIVE,
        "created_at": CREATED,
    }
    arguments.update(kwargs)

    # when the file is written
    with pytest.raises(PaymentExportError) as refused:
        nacha_file(**arguments)  # type: ignore[arg-type]

    # then it is refused with the reason
    assert refused.value.message == message


def test_nacha_file_refuses_an_originator_with_a_bad_routing_number() -> None:
    # given our own bank's routing number mistyped
    originator = Originator(name="Acme", company_id="1234567890", routing_number="021000022")

    # when the file is written
    with pytest.raises(PaymentExportError) as refused:
        nacha_file(
            originator=originator, transfers=[ach(1)], effective_date=EFFECTIVE, created_at=CREATED
        )

    # then it is refused
    assert (
        refused.value.message == "originator routing number '021000022' is not a valid ABA number"
    )


def test_ppd_batch_for_employee_expenses() -> None:
    # given an expense reimbursement to an employee's savings account
    transfers = [ach(1, "42.10", account_type="savings", payee_name="Jane Doe")]

    # when it is written as PPD
    summary = nacha_validate(write_nacha(transfers, sec_code="PPD", entry_description="EXPENSES"))

    # then the batch is PPD with a savings credit (32)
    (batch,) = summary.batches
    assert (batch.sec_code, batch.entry_description) == ("PPD", "EXPENSES")
    assert [(e.transaction_code, e.amount) for e in batch.entries] == [("32", D("42.10"))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cents=st.lists(st.integers(min_value=1, max_value=99_999_999_99), min_size=1, max_size=200))
def test_nacha_control_totals_equal_the_exact_sum(cents: list[int]) -> None:
    transfers = [ach(n, str(D(c).scaleb(-2))) for n, c in enumerate(cents)]
    expected = sum((t.amount for t in transfers), D(0))

    data = write_nacha(transfers)
    summary = nacha_validate(data)

    lines = lines_of(data)
    batch_control = lines[len(transfers) + 2]
    file_control = lines[len(transfers) + 3]
    assert summary.total_credit == expected
    assert D(int(batch_control[32:44])).scaleb(-2) == expected
    assert D(int(file_control[43:55])).scaleb(-2) == expected
    assert int(file_control[13:21]) == len(transfers)
    assert len(lines) % 10 == 1  # blocks of 10 records, then the final newline


def test_nacha_individual_id_keeps_every_entry_of_a_payment_run_apart() -> None:
    # given a payment run's transfers, whose end-to-end ids (run number, item) exceed 15 characters
    transfers = [ach(n, end_to_end_id=f"PR-2026-000001-{n}") for n in (1, 2, 10, 12345)]

    # when the file is written and read back
    summary = nacha_validate(write_nacha(transfers))

    # then each entry carries the run and its own item number, within 15 characters
    (batch,) = summary.batches
    assert [e.individual_id for e in batch.entries] == [
        "PR-2026-1-1",
        "PR-2026-1-2",
        "PR-2026-1-10",
        "PR-2026-1-12345",
    ]
    assert lines_of(write_nacha(transfers[:1]))[2][39:54] == "PR-2026-1-1    "


@pytest.mark.parametrize(
    ("end_to_end_id", "individual_id"),
    [
        ("PR1-7", "PR1-7"),
        ("PR-2026-000001-000012", "PR-2026-1-12"),
        ("PR-2026-000123-50000", "PR2026123-50000"),
        ("PR-2026-123456-999999", "26123456-999999"),
        ("pr/2026/000001-7", "PR-2026-1-7"),
    ],
)
def test_nacha_individual_id_is_a_compact_form_of_the_end_to_end_id(
    end_to_end_id: str, individual_id: str
) -> None:
    # given a transfer whose end-to-end id may be longer than the field
    transfers = [ach(1, end_to_end_id=end_to_end_id)]

    # when the file is written and read back
    (batch,) = nacha_validate(write_nacha(transfers)).batches

    # then the identification is the compact form, item number whole
    assert [e.individual_id for e in batch.entries] == [individual_id]


def test_nacha_individual_ids_that_would_read_the_same_take_the_entry_number() -> None:
    # given end-to-end ids that are the same in their first 15 characters, or once upper-cased
    transfers = [
        ach(1, end_to_end_id="INVOICE-BATCH-ALPHA-PAYMENT"),
        ach(2, end_to_end_id="INVOICE-BATCH-ALPHA-REFUND"),
        ach(3, end_to_end_id="inv-3"),
        ach(4, end_to_end_id="INV-3"),
    ]

    # when the file is written and read back
    (batch,) = nacha_validate(write_nacha(transfers)).batches

    # then every entry's identification holds its place in the file, as its trace number does
    assert [e.individual_id for e in batch.entries] == [
        "INVOICE-0000001",
        "INVOICE-0000002",
        "INV-3-0000003",
        "INV-3-0000004",
    ]
    assert [e.trace_number[-7:] for e in batch.entries] == [
        "0000001",
        "0000002",
        "0000003",
        "0000004",
    ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.lists(
        st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=35
        ),
        min_size=1,
        max_size=40,
        unique=True,
    )
)
def test_nacha_individual_ids_are_unique_for_any_unique_end_to_end_ids(ids: list[str]) -> None:
    # given transfers with any distinct printable end-to-end ids
    transfers = [ach(n, end_to_end_id=e2e) for n, e2e in enumerate(ids)]

    # when the file is written and read back
    (batch,) = nacha_validate(write_nacha(transfers)).batches

    # then every identification is different and fits its field
    identifications = [e.individual_id for e in batch.entries]
    assert len(set(identifications)) == len(ids)
    assert all(len(ident) <= 15 for ident in identifications)


# ---------------------------------------------------------------------- NACHA corruption caught


def corrupt(data: bytes, line: int, column: int, text: str) -> bytes:
    lines = lines_of(data)
    record = lines[line - 1]
    lines[line - 1] = record[: column - 1] + text + record[column - 1 + len(text) :]
    return "\n".join(lines).encode("latin-1")


@pytest.mark.parametrize(
    ("line", "column", "text", "first_problem"),
    [
        # an amount changed by one digit: the batch control (line 5) no longer adds up
        (
            3,
            39,
            "9",
            FormatProblem("line 5", "batch control total credit is 2100, the batch has 2109"),
        ),
        # a routing number changed by one digit: the check digit catches it
        (
            4,
            5,
            "7",
            FormatProblem(
                "line 4", "receiving DFI routing number '076009593' fails the ABA check digit"
            ),
        ),
        # a record type that does not exist
        (3, 1, "4", FormatProblem("line 3", "unknown record type '4'")),
        # the trace numbers out of order
        (
            4,
            94,
            "0",
            FormatProblem(
                "line 4", "trace number 021000020000000 does not ascend within the batch"
            ),
        ),
        # a byte that is not a digit in the file control's entry hash
        (
            6,
            25,
            "X",
            FormatProblem("line 6", "file control entry hash '001X705247' is not a number"),
        ),
        # the file header's record size
        (1, 37, "5", FormatProblem("line 1", "record size '095', expected '094'")),
    ],
)
def test_nacha_validate_catches_a_corrupted_byte(
    line: int, column: int, text: str, first_problem: FormatProblem
) -> None:
    # given a valid generated file with one byte changed
    data = write_nacha([ach(1, "12.00"), ach(2, "9.00")])
    assert nacha_validate(data).total_credit == D("21.00")
    damaged = corrupt(data, line, column, text)

    # when it is validated
    with pytest.raises(NachaFormatError) as refused:
        nacha_validate(damaged)

    # then the first problem names the line
    assert refused.value.problems[0] == first_problem
    assert str(refused.value).startswith(str(first_problem))


def test_nacha_validate_catches_a_deleted_entry_and_a_shortened_line() -> None:
    # given a generated file missing its second entry, and one whose entry lost a character
    lines = lines_of(write_nacha([ach(1, "12.00"), ach(2, "9.00")]))
    without_entry = "\n".join(lines[:3] + lines[4:]).encode()
    shortened = "\n".join([*lines[:2], lines[2][:-1], *lines[3:]]).encode()

    # when they are validated
    with pytest.raises(NachaFormatError) as missing:
        nacha_validate(without_entry)
    with pytest.raises(NachaFormatError) as short:
        nacha_validate(shortened)

    # then the counts and the length are named by line
    assert missing.value.problems[:3] == (
        FormatProblem("line 4", "batch control entry/addenda count is 2, the batch has 1"),
        FormatProblem("line 4", "batch control entry hash is 14705247, the batch has 12104288"),
        FormatProblem("line 4", "batch control total credit is 2100, the batch has 1200"),
    )
    assert short.value.problems[0] == FormatProblem(
        "line 3", "record is 93 characters long, not 94"
    )


def test_nacha_validate_reads_a_file_without_line_breaks() -> None:
    # given a generated file with its line breaks removed, and a copy with a damaged entry
    data = write_nacha([ach(1, "12.00")]).replace(b"\n", b"")
    damaged = data[: 94 * 2] + b"4" + data[94 * 2 + 1 :]

    # when they are validated
    summary = nacha_validate(data)
    with pytest.raises(NachaFormatError) as refused:
        nacha_validate(damaged)

    # then it reads the same 10 records, and names a damaged one by its number
    assert (summary.record_count, summary.total_credit) == (10, D("12.00"))
    assert refused.value.problems[0] == FormatProblem("record 3", "unknown record type '4'")


# ------------------------------------------------------------------------------- NACHA corpus

VALID_NACHA = {
    # file: (batches, entries, addenda, total debit, total credit, entry hash, warnings)
    "moov_ccd_debit.ach": (1, 2, 0, "5001.25", "0.00", 46276020, ()),
    "moov_cor_noc.ach": (1, 1, 1, "0.00", "0.00", 23138010, ()),
    "moov_return_web.ach": (2, 2, 2, "123.54", "45.65", 18280120, ()),
    "moov_same_day_ppd_credit.ach": (1, 1, 0, "0.00", "1000000.00", 23138010, ()),
    "nacha_sample_tel_reversal.ach": (1, 2, 0, "6851.00", "6851.00", 5201918, ()),
    "moov_ppd_debit_fixed_length_no_newlines.ach": (
        1,
        1,
        0,
        "105.00",
        "0.00",
        5320001,
        ("5 records: not padded with 9-filler to a multiple of 10",),
    ),
}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(VALID_NACHA))
def test_nacha_validate_accepts_the_valid_real_files(shared_data: Path, name: str) -> None:
    # given a real file a bank would take
    data = (shared_data / "nacha" / name).read_bytes()

    # when it is validated
    summary = nacha_validate(data)

    # then its counts and totals are the ones written in it
    batches, entries, addenda, debit, credit, entry_hash, warnings = VALID_NACHA[name]
    assert len(summary.batches) == batches
    assert (summary.entry_count, summary.addenda_count) == (entries, addenda)
    assert (summary.total_debit, summary.total_credit) == (D(debit), D(credit))
    assert summary.entry_hash == entry_hash
    assert summary.warnings == warnings


@pytest.mark.corpus
def test_nacha_multibatch_sample_is_read_but_its_batch_count_is_wrong(shared_data: Path) -> None:
    # given moov's 20110805A: 4 batches (numbers 1, 3, 4, 5), but a file control saying 5
    data = (shared_data / "nacha" / "moov_20110805A_multibatch.ach").read_bytes()

    # when it is validated
    with pytest.raises(NachaFormatError) as refused:
        nacha_validate(data)

    # then that is the only problem, and everything else adds up
    assert refused.value.problems == (
        FormatProblem("line 93", "file control batch count is 5, the file has 4"),
    )
    summary = refused.value.summary
    assert [
        (b.batch_number, b.sec_code, len(b.entries), b.addenda_count, b.total_debit, b.total_credit)
        for b in summary.batches
    ] == [
        (1, "PPD", 25, 0, D("46100.00"), D("0.00")),
        (3, "PPD", 18, 0, D("0.00"), D("1.76")),
        (4, "IAT", 3, 21, D("4910.00"), D("0.00")),
        (5, "IAT", 2, 14, D("0.00"), D("0.24")),
    ]
    assert (summary.entry_count, summary.addenda_count, summary.record_count) == (48, 35, 93)
    assert (summary.total_debit, summary.total_credit, summary.entry_hash) == (
        D("51010.00"),
        D("2.00"),
        136685201,
    )


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "problems", "total_debit"),
    [
        (
            "moov_ppd_debit.ach",
            (
                FormatProblem("line 1", "record is 75 characters long, not 94"),
                FormatProblem("line 5", "record is 55 characters long, not 94"),
            ),
            D("1000000.00"),
        ),
        (
            "moov_ctx_nonascii_edi820.ach",
            (
                FormatProblem("line 1", "record is 75 characters long, not 94"),
                FormatProblem("line 17", "record is 55 characters long, not 94"),
                FormatProblem("line 17", "file control block count is 1, the file has 2"),
                FormatProblem("line 17", "file control entry/addenda count is 1, the file has 13"),
            ),
            D("1000000.00"),
        ),
    ],
)
def test_nacha_samples_with_trimmed_records_are_refused(
    shared_data: Path, name: str, problems: tuple[FormatProblem, ...], total_debit: Decimal
) -> None:
    # given a sample whose header and file control lost their trailing blanks
    data = (shared_data / "nacha" / name).read_bytes()

    # when it is validated
    with pytest.raises(NachaFormatError) as refused:
        nacha_validate(data)

    # then the short records are named, and the amounts are still read
    assert refused.value.problems == problems
    assert refused.value.summary.total_debit == total_debit


@pytest.mark.corpus
def test_nacha_file_without_file_control_is_refused(shared_data: Path) -> None:
    # given moov's ADV file that stops after its batch control
    data = (shared_data / "nacha" / "moov_adv_no_file_control.ach").read_bytes()

    # when it is validated
    with pytest.raises(NachaFormatError) as refused:
        nacha_validate(data)

    # then the missing file control is named at the last line (ADV itself is not supported)
    assert refused.value.problems == (
        FormatProblem("line 2", "ADV batches are not supported"),
        FormatProblem("line 5", "the file ends without a file control (9) record"),
    )
    assert "line 5: the file ends without a file control (9) record" in str(refused.value)


@pytest.mark.corpus
def test_nacha_file_with_shifted_fields_is_refused(shared_data: Path) -> None:
    # given moov's 20110729A-invalid: a 93-character header, shifted dates, SEC 'PDT'
    data = (shared_data / "nacha" / "moov_20110729A_invalid.ach").read_bytes()

    # when it is validated
    with pytest.raises(NachaFormatError) as refused:
        nacha_validate(data)

    # then the header is named first, then the batch header's bad fields
    assert refused.value.problems[0] == FormatProblem(
        "line 1", "record is 93 characters long, not 94"
    )
    assert (
        FormatProblem("line 2", "standard entry class 'PDT' is unknown") in refused.value.problems
    )
    assert (
        FormatProblem("line 293", "file control batch count is 5, the file has 4")
        in refused.value.problems
    )


# ------------------------------------------------------------------------------ pain.001 writer


def sepa(n: int, amount: str = "100.00", **overrides: str) -> CreditTransfer:
    values = {
        "end_to_end_id": f"PR2-{n}",
        "payee_name": f"Lieferant {n}",
        "amount": D(amount),
        "currency": "EUR",
        "iban": "FR1420041010050500013M02606",
        "remittance": f"Rechnung R-{n}",
    }
    values.update(overrides)
    return CreditTransfer(**values)  # type: ignore[arg-type]


def write_pain(transfers: list[CreditTransfer], message_id: str = "PR2") -> bytes:
    return pain001_file(
        originator=ORIGINATOR,
        transfers=transfers,
        execution_date=EFFECTIVE,
        message_id=message_id,
        created_at=CREATED,
    )


def test_pain001_file_groups_by_currency_with_exact_controls() -> None:
    # given SEPA euro payments, a US wire to a routing number, a yen and a dinar payment
    transfers = [
        sepa(1, "1250.50", payee_name="Müller & Söhne GmbH"),
        ach(2, "99.99"),
        sepa(3, "0.01"),
        CreditTransfer(
            "PR2-4", "Tokyo KK", D("120000"), "JPY", account_number="1234567", bic="BOTKJPJT"
        ),
        CreditTransfer(
            "PR2-5", "Kuwait Co", D("12.345"), "KWD", iban="KW81CBKU0000000000001234560101"
        ),
    ]

    # when the message is written (and checked against the XSD on the way out)
    data = write_pain(transfers)
    summary = pain001_validate(data)

    # then there is one PmtInf per currency, with exact counts and sums
    assert (summary.version, summary.message_id, summary.created_at) == (
        "pain.001.001.03",
        "PR2",
        "2026-11-25T14:30:00+00:00",
    )
    assert [
        (p.payment_info_id, p.execution_date, p.number_of_transactions, p.control_sum)
        for p in summary.payment_infos
    ] == [
        ("PR2-EUR", "2026-11-27", 2, D("1250.51")),
        ("PR2-USD", "2026-11-27", 1, D("99.99")),
        ("PR2-JPY", "2026-11-27", 1, D("120000")),
        ("PR2-KWD", "2026-11-27", 1, D("12.345")),
    ]
    assert (summary.number_of_transactions, summary.control_sum) == (5, D("121362.845"))
    assert [
        (t.end_to_end_id, t.creditor_name, t.creditor_account, t.creditor_agent)
        for t in summary.transactions
    ] == [
        ("PR2-1", "Muller Sohne GmbH", "FR1420041010050500013M02606", ""),
        ("PR2-3", "Lieferant 3", "FR1420041010050500013M02606", ""),
        ("PR1-2", "Vendor 2", "998400002", "026009593"),
        ("PR2-4", "Tokyo KK", "1234567", "BOTKJPJT"),
        ("PR2-5", "Kuwait Co", "KW81CBKU0000000000001234560101", ""),
    ]
    # and the amounts carry the currency's decimals, SEPA only where it applies
    text = data.decode()
    assert '<InstdAmt Ccy="JPY">120000</InstdAmt>' in text
    assert '<InstdAmt Ccy="KWD">12.345</InstdAmt>' in text
    assert '<InstdAmt Ccy="EUR">0.01</InstdAmt>' in text
    assert text.count("<Cd>SEPA</Cd>") == 1
    assert "<ClrSysId><Cd>USABA</Cd></ClrSysId>\n<MmbId>026009593</MmbId>" in text


def test_pain001_file_is_deterministic() -> None:
    # given the same payments twice
    transfers = [sepa(1), sepa(2)]

    # when both are written
    first, second = write_pain(transfers), write_pain(transfers)

    # then the bytes are the same (no random ids, no clock)
    assert first == second


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        (
            sepa(1, iban="FR1420041010050500013M02607"),
            "transfer 'PR2-1': IBAN 'FR1420041010050500013M02607' is not valid",
        ),
        (
            sepa(1, "5.5", currency="JPY"),
            "transfer 'PR2-1': amount Decimal('5.5') must be a positive Decimal in JPY units",
        ),
        (sepa(1, currency="XXY"), "transfer 'PR2-1': currency 'XXY' is not an ISO 4217 code"),
        (
            sepa(1, iban="", account_number="1234"),
            "transfer 'PR2-1': an account without IBAN needs a BIC or an ABA routing number",
        ),
        (sepa(1, bic="NOTABIC"), "transfer 'PR2-1': BIC 'NOTABIC' is not valid"),
        (sepa(0), "transfer 'PR2-0': end_to_end_id is not unique in the file"),
    ],
)
def test_pain001_file_refuses_what_it_cannot_write_exactly(
    transfer: CreditTransfer, message: str
) -> None:
    # given a payment that cannot be written as it is
    # when the message is written
    with pytest.raises(PaymentExportError) as refused:
        write_pain([sepa(0), transfer])

    # then the whole message is refused, naming the payment
    assert refused.value.message == message


def test_pain001_file_refuses_a_message_id_too_long_for_its_payment_info_ids() -> None:
    # given a 32-character message id
    # when the message is written
    with pytest.raises(PaymentExportError) as refused:
        write_pain([sepa(1)], message_id="X" * 32)

    # then it is refused
    assert refused.value.message == "message_id must be 1 to 31 printable ASCII characters"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cents=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=30))
def test_pain001_control_sums_equal_the_exact_sum(cents: list[int]) -> None:
    transfers = [sepa(n, str(D(c).scaleb(-2))) for n, c in enumerate(cents)]
    expected = sum((t.amount for t in transfers), D(0))

    summary = pain001_validate(write_pain(transfers))

    assert summary.control_sum == expected
    assert summary.payment_infos[0].control_sum == expected
    assert summary.number_of_transactions == len(transfers)


# --------------------------------------------------------------------------- pain.001 validator


def test_pain001_validate_catches_a_wrong_control_sum() -> None:
    # given a generated message whose group CtrlSum was changed
    data = write_pain([sepa(1, "10.00"), sepa(2, "5.00")])
    damaged = data.replace(b"<CtrlSum>15.00</CtrlSum>", b"<CtrlSum>15.01</CtrlSum>", 1)

    # when it is validated
    with pytest.raises(Pain001FormatError) as refused:
        pain001_validate(damaged)

    # then the element is named
    assert refused.value.problems == (
        FormatProblem(
            "/Document/CstmrCdtTrfInitn/GrpHdr/CtrlSum", "says 15.01, the amounts add up to 15.00"
        ),
    )


def test_pain001_validate_names_the_element_the_xsd_refuses() -> None:
    # given a generated message without its message id
    damaged = write_pain([sepa(1)]).replace(b"<MsgId>PR2</MsgId>\n", b"")

    # when it is validated
    with pytest.raises(Pain001FormatError) as refused:
        pain001_validate(damaged)

    # then the XSD error names the group header
    assert refused.value.problems[0].where == "/Document/CstmrCdtTrfInitn/GrpHdr"
    assert "MsgId" in refused.value.problems[0].message


def test_pain001_validate_refuses_entities() -> None:
    # given a message declaring an entity (the billion laughs family)
    data = (
        b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY a "aaaa">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">&a;</Document>'
    )

    # when it is validated
    with pytest.raises(Pain001FormatError) as refused:
        pain001_validate(data)

    # then it is refused before anything is expanded
    assert refused.value.problems == (
        FormatProblem("line 1", "refused: DTDForbidden (no DTD or entities)"),
    )


def test_pain001_validate_names_the_line_of_broken_xml() -> None:
    # given a message cut in the middle
    data = write_pain([sepa(1)])[:400]

    # when it is validated
    with pytest.raises(Pain001FormatError) as refused:
        pain001_validate(data)

    # then the line is named
    assert refused.value.problems[0].where.startswith("line ")
    assert refused.value.problems[0].message.startswith("not well-formed XML")


# ---------------------------------------------------------------------------- pain.001 corpus

VALID_PAIN001 = {
    # file: (message id, transactions, control sum, totals by currency)
    "gist_pain.001.001.03.xml": (
        "ABC/090928/CCT001",
        3,
        "11500000",
        {"JPY": D("10000000"), "EUR": D("500000"), "USD": D("1000000")},
    ),
    "lt_international_payment_usd.xml": ("MSGID0002", 1, "111.11", {"USD": D("111.11")}),
    "lt_sepa_payment.xml": ("MSGID0001", 1, "99.99", {"EUR": D("99.99")}),
    "sepaking_pain.001.001.03.xml": ("Message-ID-4711", 2, "6655.86", {"EUR": D("6655.86")}),
}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(VALID_PAIN001))
def test_pain001_validate_accepts_the_valid_real_files(shared_data: Path, name: str) -> None:
    # given a real pain.001.001.03 message
    data = (shared_data / "pain001" / name).read_bytes()

    # when it is validated
    summary = pain001_validate(data)

    # then it passes the XSD and its controls, with these totals
    message_id, count, control_sum, totals = VALID_PAIN001[name]
    assert summary.version == "pain.001.001.03"
    assert (summary.message_id, summary.number_of_transactions) == (message_id, count)
    assert summary.control_sum == D(control_sum)
    assert summary.totals_by_currency == totals


@pytest.mark.corpus
def test_pain001_sepaking_transactions_are_read(shared_data: Path) -> None:
    # given sepa_king's two-transfer example
    data = (shared_data / "pain001" / "sepaking_pain.001.001.03.xml").read_bytes()

    # when it is validated
    summary = pain001_validate(data)

    # then both transfers are read exactly
    assert [
        (t.end_to_end_id, t.amount, t.creditor_account, t.creditor_agent)
        for t in summary.transactions
    ] == [
        ("OriginatorID1234", D("6543.14"), "DE21500500009876543210", "SPUEDE2UXXX"),
        ("OriginatorID1235", D("112.72"), "DE21500500001234567897", "SPUEDE2UXXX"),
    ]


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (
            "invalid_pain.001.001.11.xml",
            FormatProblem("/Document", "has no namespace, so no pain.001 version"),
        ),
        (
            "sepaking_pain.001.003.03.xml",
            FormatProblem(
                "/Document",
                "namespace 'urn:iso:std:iso:20022:tech:xsd:pain.001.003.03' is not a supported version "
                "(pain.001.001.03, pain.001.001.09, pain.001.001.10, pain.001.001.11)",
            ),
        ),
        (
            "muster_pain.001_Nov2020.xml",
            FormatProblem(
                "/Document",
                "namespace 'http://www.six-interbank-clearing.com/de/pain.001.001.03.ch.02.xsd' is not a "
                "supported version (pain.001.001.03, pain.001.001.09, pain.001.001.10, pain.001.001.11)",
            ),
        ),
    ],
)
def test_pain001_validate_refuses_invalid_and_unsupported_files(
    shared_data: Path, name: str, problem: FormatProblem
) -> None:
    # given a file that is not a pain.001 we hold the official XSD for
    data = (shared_data / "pain001" / name).read_bytes()

    # when it is validated
    with pytest.raises(Pain001FormatError) as refused:
        pain001_validate(data)

    # then the Document element is named with the reason
    assert refused.value.problems == (problem,)
