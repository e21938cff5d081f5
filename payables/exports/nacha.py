"""NACHA ACH files: an exact writer for vendor credits and a validator that checks what banks check.

Writer (``nacha_file``): one file header, **one batch** (service class 220, credits only, CCD for
companies or PPD for people), one entry per transfer (transaction code 22 checking / 32 savings),
an optional addenda 05 carrying the remittance (80 characters), the batch and file controls, and
9-filler records up to a multiple of 10 (blocking factor 10). Records are 94 ASCII characters, LF
terminated, text upper-cased with anything outside ``A-Z 0-9`` and ``&'(),-./#:;@+`` removed and cut
to the field width. Routing and account numbers are never cut or altered: a payment that cannot be
written exactly is refused (``PaymentExportError``). The trace number of the n-th transfer
(1-based, in the order given) is the ODFI's 8 digits followed by n on 7 digits; returns and
notifications of change come back with that trace number. Its Individual Identification Number
(15 characters, what the payee's bank shows) is unique in the file: the ``end_to_end_id`` when it
fits, else a compact form keeping its item number whole (``PR-2026-000001-12`` becomes
``PR-2026-1-12``), else, if two entries would still read the same, its first characters and n
(``INVOICE-0000002``).

One batch per file keeps the file and its controls simple; the field widths allow 999,999 entry
and addenda records and 9,999,999,999.99 USD per batch, far above a payment run's size (refused
beyond). The Immediate Origin of the file header is the originator's ``company_id``, the Immediate
Destination its ODFI routing number.

Validator (``nacha_validate``): records are lines of 94 characters, or one line of 94-character
records with no line breaks. It checks the record order (1, then 5 6/7... 8 per batch, then 9,
then only 9-filler), the header constants (priority 01, record size 094, blocking factor 10,
format 1), dates, SEC and transaction codes, the ABA check digit of every routing number,
ascending trace numbers starting with the batch's ODFI, addenda indicators and counts, entry hash
(sum of the 8-digit RDFI identifications, rightmost 10 digits), debit and credit totals in every
batch control and in the file control, batch count and block count. A file that is not padded to a
multiple of 10 records is accepted with a warning when its block count is right. ADV batches
(other amount layout) are reported as unsupported. All problems are collected; the error names the
first by line ("record n" in a file without line breaks) and carries the rest and what could be
read (``error.summary``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from payables.exports.common import (
    CreditTransfer,
    FormatProblem,
    Originator,
    PaymentExportError,
    PaymentFileFormatError,
    aba_routing_valid,
    is_printable_ascii,
)

RECORD_LENGTH = 94
INDIVIDUAL_ID_LENGTH = 15
BLOCKING_FACTOR = 10
FILLER = "9" * RECORD_LENGTH

CREDIT_CODES = {"checking": "22", "savings": "32"}
WRITABLE_SEC_CODES = frozenset({"CCD", "PPD"})
MAX_ENTRY_CENTS = 99_999_999_99  # the amount field has 10 digits
MAX_TOTAL_CENTS = 10**12 - 1  # batch and file totals have 12 digits
MAX_BATCH_RECORDS = 999_999  # entry/addenda count of the batch control has 6 digits

# Characters every bank's ACH system takes; the rest of ASCII (* \ ~ ^ are EDI separators) goes.
_SAFE_PUNCTUATION = " &'(),-./#:;@+"
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + _SAFE_PUNCTUATION)
_UNSAFE_BYTES = bytes(code for code in range(256) if chr(code) not in _SAFE_CHARS)
_ACCOUNT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")

SERVICE_CLASS_CODES = frozenset({"200", "220", "225", "280"})
# fmt: off
SEC_CODES = frozenset((
    "ACK", "ADV", "ARC", "ATX", "BOC", "CBR", "CCD", "CIE", "COR", "CTX", "DNE", "ENR", "IAT",
    "MTE", "PBR", "POP", "POS", "PPD", "RCK", "SHR", "TEL", "TRC", "TRX", "WEB", "XCK",
))
# The second digit 0-4 is a credit (or a prenote/zero-dollar credit), 5-9 a debit.
TRANSACTION_CODES = frozenset((
    "21", "22", "23", "24", "26", "27", "28", "29", "31", "32", "33", "34", "36", "37", "38",
    "39", "41", "42", "43", "46", "47", "48", "49", "51", "52", "53", "55", "56", "81", "82",
    "83", "84", "85", "86", "87", "88",
))
# fmt: on

_Report = Callable[[int, str], None]


class NachaFormatError(PaymentFileFormatError):
    code = "nacha_format_invalid"


@dataclass(frozen=True)
class NachaEntry:
    line: int
    transaction_code: str
    routing_number: str  # nine digits, check digit included
    account_number: str
    amount: Decimal
    individual_id: str
    name: str
    trace_number: str
    addenda: tuple[str, ...]  # positions 4-83 of each addenda record, trailing blanks removed

    @property
    def is_debit(self) -> bool:
        return self.transaction_code[1] >= "5"


@dataclass(frozen=True)
class NachaBatch:
    line: int
    batch_number: int
    service_class_code: str
    sec_code: str
    company_name: str
    company_id: str
    entry_description: str
    effective_date: str  # YYMMDD as written
    odfi: str
    entries: tuple[NachaEntry, ...]
    addenda_count: int
    entry_hash: int
    total_debit: Decimal
    total_credit: Decimal


@dataclass(frozen=True)
class NachaSummary:
    """What the file holds, computed from its entries (equal to its controls when valid)."""

    immediate_destination: str
    immediate_origin: str
    creation_date: str  # YYMMDD as written
    file_id_modifier: str
    batches: tuple[NachaBatch, ...]
    record_count: int  # physical records, 9-filler included
    block_count: int
    entry_count: int
    addenda_count: int
    entry_hash: int
    total_debit: Decimal
    total_credit: Decimal
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------------------- writer


def _text(value: str, width: int) -> str:
    """Upper-case ASCII with unsafe characters removed, cut and blank-padded to ``width``."""
    if not value.isascii():
        value = unicodedata.normalize("NFKD", value)
    cleaned = value.upper().encode("ascii", "ignore").translate(None, _UNSAFE_BYTES).strip()
    return cleaned[:width].decode("ascii").ljust(width)


def _compact_id(end_to_end_id: str) -> str:
    """The end-to-end id in at most 15 ACH characters, its trailing item number kept whole."""
    cleaned = _text(end_to_end_id, 35).strip()
    if len(cleaned) <= INDIVIDUAL_ID_LENGTH:
        return cleaned
    head, _, item = cleaned.rpartition("-")
    tail = "-" + (item.lstrip("0") or "0")
    if not (head and item.isdigit() and len(tail) < INDIVIDUAL_ID_LENGTH):
        return cleaned[:INDIVIDUAL_ID_LENGTH]
    # Run number parts without their leading zeros: PR-2026-000001 -> PR-2026-1.
    parts = [
        (part.lstrip("0") or "0") if part.isdigit() else part
        for part in re.split(r"[^A-Z0-9]+", head)
        if part
    ]
    room = INDIVIDUAL_ID_LENGTH - len(tail)
    for joined in ("-".join(parts), "".join(parts)):
        if len(joined) <= room:
            return joined + tail
    # The run number's end changes from run to run, its start (the series prefix) does not.
    return "".join(parts)[-room:] + tail


def _individual_ids(end_to_end_ids: Sequence[str]) -> list[str]:
    """One Individual Identification Number per entry, all different."""
    compact = [_compact_id(e2e) for e2e in end_to_end_ids]
    if len(set(compact)) == len(compact):
        return compact
    # Ids that read the same once compacted: the entry's place in the file tells them apart.
    return [f"{ident[:7].rstrip()}-{n:07d}" for n, ident in enumerate(compact, start=1)]


def _cents(amount: Decimal) -> int | None:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return None
    scaled = amount.scaleb(2)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def nacha_file(
    *,
    originator: Originator,
    transfers: Sequence[CreditTransfer],
    effective_date: dt.date,
    created_at: dt.datetime,
    file_id_modifier: str = "A",
    entry_description: str = "VENDOR PAY",
    sec_code: str = "CCD",
) -> bytes:
    """The NACHA file paying ``transfers`` (USD credits) from the originator's account.

    Deterministic: the same arguments give the same bytes. Refuses the whole file, listing every
    bad transfer, rather than leaving a payment out or altering an account number. ``created_at``
    is written as given (date and HHMM): convert it to the bank's time zone first.
    """
    errors: list[str] = []
    odfi_routing = originator.routing_number
    if not aba_routing_valid(odfi_routing):
        errors.append(f"originator routing number {odfi_routing!r} is not a valid ABA number")
    company_id = originator.company_id
    if not (0 < len(company_id) <= 10 and is_printable_ascii(company_id)):
        errors.append(f"company id {company_id!r} must be 1 to 10 printable ASCII characters")
    if not _text(originator.name, 16).strip():
        errors.append("the originator needs a name")
    if sec_code not in WRITABLE_SEC_CODES:
        errors.append(f"SEC code {sec_code!r} is not supported (CCD or PPD)")
    if not (
        len(file_id_modifier) == 1 and file_id_modifier in _SAFE_CHARS - set(_SAFE_PUNCTUATION)
    ):
        errors.append(f"file id modifier {file_id_modifier!r} must be one of A-Z or 0-9")
    if not _text(entry_description, 10).strip():
        errors.append("the entry description is empty")
    if isinstance(effective_date, dt.datetime) or not isinstance(effective_date, dt.date):
        errors.append("effective_date must be a date")
    if not isinstance(created_at, dt.datetime):
        errors.append("created_at must be a datetime")
    if not transfers:
        errors.append("there are no transfers")
    if errors:
        raise PaymentExportError(errors[0], problems=tuple(errors))

    odfi = odfi_routing[:8]
    records: list[str] = [
        "101"
        f" {odfi_routing}"
        f"{company_id.upper():<10}"
        f"{created_at:%y%m%d%H%M}"
        f"{file_id_modifier}094101"
        f"{_text(originator.bank_name, 23)}"
        f"{_text(originator.name, 23)}"
        f"{'':8}",
        "5220"
        f"{_text(originator.name, 16)}"
        f"{'':20}"
        f"{company_id.upper():<10}"
        f"{sec_code}"
        f"{_text(entry_description, 10)}"
        f"{'':6}"
        f"{effective_date:%y%m%d}"
        f"{'':3}1{odfi}0000001",
    ]
    append = records.append
    individual_ids = _individual_ids([transfer.end_to_end_id for transfer in transfers])
    seen_ids: set[str] = set()
    entry_hash = 0
    total = 0
    sequence = 0
    for transfer in transfers:
        sequence += 1
        e2e = transfer.end_to_end_id
        checked = _transfer_problem(transfer, seen_ids)
        if isinstance(checked, str):
            errors.append(f"transfer {e2e!r}: {checked}")
            continue
        cents, name = checked
        seen_ids.add(e2e)
        rdfi = transfer.routing_number
        entry_hash += int(rdfi[:8])
        total += cents
        remittance = _text(transfer.remittance, 80) if transfer.remittance else ""
        has_addenda = bool(remittance) and not remittance.isspace()
        trace_seq = f"{sequence:07d}"
        append(
            f"6{CREDIT_CODES[transfer.account_type]}{rdfi}"
            f"{transfer.account_number.upper():<17}"
            f"{cents:010d}"
            f"{individual_ids[sequence - 1]:<15}"
            f"{name}"
            f"  {'1' if has_addenda else '0'}{odfi}{trace_seq}"
        )
        if has_addenda:
            append(f"705{remittance}0001{trace_seq}")
    if errors:
        raise PaymentExportError(
            f"{errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            problems=tuple(errors),
        )
    entry_addenda_count = len(records) - 2
    if entry_addenda_count > MAX_BATCH_RECORDS:
        raise PaymentExportError(
            f"{entry_addenda_count} entry and addenda records do not fit one batch "
            f"(at most {MAX_BATCH_RECORDS}); split the payment run"
        )
    if total > MAX_TOTAL_CENTS:
        raise PaymentExportError("the total exceeds 9,999,999,999.99 USD; split the payment run")
    hash_field = entry_hash % 10**10
    append(
        f"8220{entry_addenda_count:06d}{hash_field:010d}{0:012d}{total:012d}"
        f"{company_id.upper():<10}{'':25}{odfi}0000001"
    )
    record_count = len(records) + 1
    block_count = -(-record_count // BLOCKING_FACTOR)
    append(
        f"9{1:06d}{block_count:06d}{entry_addenda_count:08d}{hash_field:010d}"
        f"{0:012d}{total:012d}{'':39}"
    )
    records.extend([FILLER] * (block_count * BLOCKING_FACTOR - record_count))
    records.append("")
    return "\n".join(records).encode("ascii")


def _transfer_problem(transfer: CreditTransfer, seen_ids: set[str]) -> str | tuple[int, str]:
    """What is wrong with a transfer, or its amount in cents and its name field."""
    e2e = transfer.end_to_end_id
    if not (0 < len(e2e) <= 35 and is_printable_ascii(e2e)):
        return "end_to_end_id must be 1 to 35 printable ASCII characters"
    if e2e in seen_ids:
        return "end_to_end_id is not unique in the file"
    if transfer.currency != "USD":
        return f"ACH pays USD only, not {transfer.currency!r}"
    cents = _cents(transfer.amount)
    if cents is None:
        return f"amount {transfer.amount!r} is not a Decimal in whole cents"
    if not 0 < cents <= MAX_ENTRY_CENTS:
        return f"amount {transfer.amount} must be above 0 and at most 99,999,999.99"
    if not aba_routing_valid(transfer.routing_number):
        return f"routing number {transfer.routing_number!r} is not a valid ABA number"
    account = transfer.account_number
    if not (0 < len(account) <= 17 and _ACCOUNT_CHARS.issuperset(account.upper())):
        return "account number must be 1 to 17 letters, digits or hyphens"
    if transfer.account_type not in CREDIT_CODES:
        return f"account type {transfer.account_type!r} is not checking or savings"
    name = _text(transfer.payee_name, 22)
    if name.isspace():
        return "payee name is empty once reduced to ACH characters"
    return cents, name


# ------------------------------------------------------------------------------------- validator


def _split_records(data: bytes) -> tuple[list[str], str]:
    """The records of the file and the word naming a position in it ("line" or "record")."""
    text = data.decode("latin-1")  # one character per byte: lengths stay byte lengths
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) == 1 and len(lines[0]) > RECORD_LENGTH and len(lines[0]) % RECORD_LENGTH == 0:
        single = lines[0]
        return [
            single[i : i + RECORD_LENGTH] for i in range(0, len(single), RECORD_LENGTH)
        ], "record"
    return lines, "line"


def _valid_yymmdd(value: str) -> bool:
    if len(value) != 6 or not value.isdigit():
        return False
    try:
        dt.date(2000 + int(value[:2]), int(value[2:4]), int(value[4:]))
    except ValueError:
        return False
    return True


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


class _Batch:
    """A batch being read: header fields, entries, running totals."""

    def __init__(self, line: int, rec: str) -> None:
        self.line = line
        self.rec = rec
        self.service_class = rec[1:4]
        self.sec_code = rec[50:53]
        self.company_id = rec[40:50]
        self.odfi = rec[79:87]
        self.number = rec[87:94]
        self.entries: list[NachaEntry] = []
        self.addenda_count = 0
        self.entry_hash = 0
        self.debit = 0
        self.credit = 0
        self.last_trace = ""


def nacha_validate(data: bytes) -> NachaSummary:
    """The summary of a NACHA file that passes every check; otherwise ``NachaFormatError``."""
    records, unit = _split_records(data)
    problems: list[FormatProblem] = []

    def problem(index: int, message: str) -> None:
        problems.append(FormatProblem(f"{unit} {index}", message))

    if not records:
        raise NachaFormatError([FormatProblem(f"{unit} 1", "the file is empty")])

    header = ""
    batches: list[NachaBatch] = []
    batch: _Batch | None = None
    entry_rec = ""
    entry_line = 0
    entry_addenda: list[str] = []
    file_control = ""
    file_control_line = 0
    filler_count = 0
    last_batch_number = 0
    warnings: list[str] = []

    def close_entry() -> None:
        nonlocal entry_rec
        if not entry_rec or batch is None:
            return
        if entry_rec[78] == "1" and not entry_addenda:
            problem(entry_line, "addenda indicator is 1 but no addenda record follows")
        cents = int(entry_rec[29:39]) if entry_rec[29:39].isdigit() else 0
        batch.entries.append(
            NachaEntry(
                line=entry_line,
                transaction_code=entry_rec[1:3],
                routing_number=entry_rec[3:12],
                account_number=entry_rec[12:29].strip(),
                amount=_money(cents),
                individual_id=entry_rec[39:54].strip(),
                name=entry_rec[54:76].strip(),
                trace_number=entry_rec[79:94],
                addenda=tuple(entry_addenda),
            )
        )
        entry_rec = ""

    def close_batch(control: str, line: int) -> None:
        nonlocal batch
        close_entry()
        if batch is None:
            return
        b = batch
        if not b.entries:
            problem(b.line, "the batch has no entry detail records")
        if control and b.sec_code != "ADV":
            _check_batch_control(b, control, line, problem)
        batches.append(
            NachaBatch(
                line=b.line,
                batch_number=int(b.number) if b.number.isdigit() else 0,
                service_class_code=b.service_class,
                sec_code=b.sec_code,
                company_name=b.rec[4:20].strip(),
                company_id=b.company_id.strip(),
                entry_description=b.rec[53:63].strip(),
                effective_date=b.rec[69:75],
                odfi=b.odfi,
                entries=tuple(b.entries),
                addenda_count=b.addenda_count,
                entry_hash=b.entry_hash % 10**10,
                total_debit=_money(b.debit),
                total_credit=_money(b.credit),
            )
        )
        batch = None

    for index, raw in enumerate(records, start=1):
        length = len(raw)
        if length != RECORD_LENGTH:
            if file_control and raw.strip() == "":
                problem(index, "blank line after the file control")
                continue
            problem(index, f"record is {length} characters long, not {RECORD_LENGTH}")
        rec = raw[:RECORD_LENGTH].ljust(RECORD_LENGTH)
        kind = rec[0]
        if file_control:
            if rec == FILLER:
                filler_count += 1
            else:
                problem(index, "only 9-filler records may follow the file control")
            continue
        if index == 1 and kind != "1":
            problem(index, f"the first record must be the file header (1), not {kind!r}")
        if kind == "1":
            if index != 1:
                problem(index, "a file header (1) may only be the first record")
                continue
            header = rec
            _check_file_header(rec, index, problem)
        elif kind == "5":
            if batch is not None:
                problem(
                    index, f"batch header before the control of the batch at {unit} {batch.line}"
                )
                close_batch("", index)
            batch = _Batch(index, rec)
            _check_batch_header(batch, index, problem)
            if batch.number.isdigit():
                if int(batch.number) <= last_batch_number:
                    problem(index, f"batch number {batch.number} does not ascend")
                last_batch_number = int(batch.number)
        elif kind == "6":
            if batch is None:
                problem(index, "entry detail (6) outside a batch")
                continue
            close_entry()
            entry_rec, entry_line, entry_addenda = rec, index, []
            if batch.sec_code != "ADV":
                _check_entry(batch, rec, index, problem)
        elif kind == "7":
            if batch is None or not entry_rec:
                problem(index, "addenda (7) without an entry detail before it")
                continue
            if entry_rec[78] != "1":
                problem(
                    index, f"addenda follows the entry at {unit} {entry_line}, whose indicator is 0"
                )
            if rec[1:3] == "05" and rec[87:94] != entry_rec[87:94]:
                problem(
                    index, "addenda entry sequence number differs from its entry's trace number"
                )
            entry_addenda.append(rec[3:83].rstrip())
            batch.addenda_count += 1
        elif kind == "8":
            if batch is None:
                problem(index, "batch control (8) without a batch header")
                continue
            close_batch(rec, index)
        elif kind == "9":
            if batch is not None:
                problem(
                    index,
                    f"file control inside the batch at {unit} {batch.line} (no batch control)",
                )
                close_batch("", index)
            file_control, file_control_line = rec, index
        else:
            problem(index, f"unknown record type {kind!r}")

    if batch is not None:
        problem(len(records), f"the batch at {unit} {batch.line} has no batch control (8)")
        close_batch("", len(records))
    entry_count = sum(len(b.entries) for b in batches)
    addenda_count = sum(b.addenda_count for b in batches)
    entry_hash = sum(b.entry_hash for b in batches) % 10**10
    total_debit = sum(b.total_debit for b in batches) or Decimal("0.00")
    total_credit = sum(b.total_credit for b in batches) or Decimal("0.00")
    record_count = len(records)
    block_count = -(-record_count // BLOCKING_FACTOR)
    if not file_control:
        problem(len(records), "the file ends without a file control (9) record")
    else:
        declared = {
            "batch count": (file_control[1:7], len(batches)),
            "block count": (file_control[7:13], block_count),
            "entry/addenda count": (file_control[13:21], entry_count + addenda_count),
            "entry hash": (file_control[21:31], entry_hash),
            "total debit": (file_control[31:43], int(total_debit.scaleb(2))),
            "total credit": (file_control[43:55], int(total_credit.scaleb(2))),
        }
        for label, (written, actual) in declared.items():
            if not written.isdigit():
                problem(file_control_line, f"file control {label} {written!r} is not a number")
            elif int(written) != actual:
                problem(
                    file_control_line,
                    f"file control {label} is {int(written)}, the file has {actual}",
                )
        if record_count % BLOCKING_FACTOR:
            warnings.append(
                f"{record_count} records: not padded with 9-filler to a multiple of "
                f"{BLOCKING_FACTOR}"
            )
    summary = NachaSummary(
        immediate_destination=header[3:13].strip(),
        immediate_origin=header[13:23].strip(),
        creation_date=header[23:29],
        file_id_modifier=header[33:34],
        batches=tuple(batches),
        record_count=record_count,
        block_count=block_count,
        entry_count=entry_count,
        addenda_count=addenda_count,
        entry_hash=entry_hash,
        total_debit=total_debit,
        total_credit=total_credit,
        warnings=tuple(warnings),
    )
    if problems:
        raise NachaFormatError(problems, summary=summary)
    return summary


def _check_file_header(rec: str, index: int, problem: _Report) -> None:
    if rec[1:3] != "01":
        problem(index, f"priority code {rec[1:3]!r}, expected '01'")
    destination = rec[3:13].strip()
    if not aba_routing_valid(destination):
        problem(index, f"immediate destination {destination!r} is not a valid routing number")
    if not rec[13:23].strip():
        problem(index, "immediate origin is blank")
    if not _valid_yymmdd(rec[23:29]):
        problem(index, f"file creation date {rec[23:29]!r} is not a date (YYMMDD)")
    time = rec[29:33]
    if time.strip() and not (time.isdigit() and int(time[:2]) < 24 and int(time[2:]) < 60):
        problem(index, f"file creation time {time!r} is not a time (HHMM)")
    if not (rec[33].isascii() and rec[33].isalnum() and not rec[33].islower()):
        problem(index, f"file id modifier {rec[33]!r} must be A-Z or 0-9")
    if rec[34:37] != "094":
        problem(index, f"record size {rec[34:37]!r}, expected '094'")
    if rec[37:39] != "10":
        problem(index, f"blocking factor {rec[37:39]!r}, expected '10'")
    if rec[39] != "1":
        problem(index, f"format code {rec[39]!r}, expected '1'")


def _check_batch_header(batch: _Batch, index: int, problem: _Report) -> None:
    rec = batch.rec
    if batch.service_class not in SERVICE_CLASS_CODES:
        problem(index, f"service class code {batch.service_class!r} is not 200, 220, 225 or 280")
    if batch.sec_code not in SEC_CODES:
        problem(index, f"standard entry class {batch.sec_code!r} is unknown")
    elif batch.sec_code == "ADV":
        problem(index, "ADV batches are not supported")
    if not batch.company_id.strip():
        problem(index, "company identification is blank")
    effective = rec[69:75]
    if effective != "000000" and not _valid_yymmdd(effective):
        problem(index, f"effective entry date {effective!r} is not a date (YYMMDD)")
    if rec[78] not in "012":
        problem(index, f"originator status code {rec[78]!r} is not 0, 1 or 2")
    if not batch.odfi.isdigit():
        problem(index, f"originating DFI {batch.odfi!r} is not 8 digits")
    if not batch.number.isdigit():
        problem(index, f"batch number {batch.number!r} is not 7 digits")


def _check_entry(batch: _Batch, rec: str, index: int, problem: _Report) -> None:
    code = rec[1:3]
    if code not in TRANSACTION_CODES:
        problem(index, f"transaction code {code!r} is unknown")
    is_debit = code[1:] >= "5"
    if batch.service_class == "220" and is_debit:
        problem(index, f"debit transaction code {code} in a credits-only (220) batch")
    elif batch.service_class == "225" and not is_debit:
        problem(index, f"credit transaction code {code} in a debits-only (225) batch")
    routing = rec[3:12]
    if aba_routing_valid(routing):
        batch.entry_hash += int(routing[:8])
    else:
        problem(index, f"receiving DFI routing number {routing!r} fails the ABA check digit")
        if routing[:8].isdigit():
            batch.entry_hash += int(routing[:8])
    if not rec[12:29].strip():
        problem(index, "DFI account number is blank")
    amount = rec[29:39]
    if amount.isdigit():
        if is_debit:
            batch.debit += int(amount)
        else:
            batch.credit += int(amount)
    else:
        problem(index, f"amount {amount!r} is not 10 digits")
    if rec[78] not in "01":
        problem(index, f"addenda record indicator {rec[78]!r} is not 0 or 1")
    trace = rec[79:94]
    if not trace.isdigit():
        problem(index, f"trace number {trace!r} is not 15 digits")
    else:
        if trace[:8] != batch.odfi:
            problem(index, f"trace number {trace} does not start with the ODFI {batch.odfi}")
        if trace <= batch.last_trace:
            problem(index, f"trace number {trace} does not ascend within the batch")
        batch.last_trace = trace


def _check_batch_control(batch: _Batch, rec: str, index: int, problem: _Report) -> None:
    if rec[1:4] != batch.service_class:
        problem(index, f"service class {rec[1:4]!r} differs from the batch header's")
    expected = {
        "entry/addenda count": (rec[4:10], len(batch.entries) + batch.addenda_count),
        "entry hash": (rec[10:20], batch.entry_hash % 10**10),
        "total debit": (rec[20:32], batch.debit),
        "total credit": (rec[32:44], batch.credit),
    }
    for label, (written, actual) in expected.items():
        if not written.isdigit():
            problem(index, f"batch control {label} {written!r} is not a number")
        elif int(written) != actual:
            problem(index, f"batch control {label} is {int(written)}, the batch has {actual}")
    # Compared without blanks: real files justify the same identification differently.
    if rec[44:54].strip() != batch.company_id.strip():
        problem(index, f"company identification {rec[44:54]!r} differs from the batch header's")
    if rec[79:87] != batch.odfi:
        problem(index, f"originating DFI {rec[79:87]!r} differs from the batch header's")
    if rec[87:94] != batch.number:
        problem(index, f"batch number {rec[87:94]!r} differs from the batch header's")
