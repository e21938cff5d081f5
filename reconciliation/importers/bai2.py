"""BAI2 cash-management files: one ParsedStatement per account record (03 ... 49).

The ``bai2`` library's type-code table (``bai2.constants.TypeCodes``) decides whether a
detail is a credit or a debit. Its parser is not used: it cannot read several records on
one physical line (sample3 of moov-io), it counts continuation records differently from
banks that omit the trailing ``/`` (it refuses Goldman Sachs files), and it reports neither
line numbers nor one exception type. Records are read here with their line numbers
(tests/reconciliation/test_importer_libraries.py compares both on every corpus file).

A logical record is a record and its 88 continuations. The account record's summaries
(type code, amount, item count, funds type and the funds type's availability fields: three
amounts for S, a date and time for V, a count and that many day/amount pairs for D) may be
cut anywhere by a continuation: the spec continues the cut summary in the 88 record, while
many banks end the summary early (``,015,33845,/`` or ``,0/``) and start the next one in the
88. Both readings are tried and the one under which every field is valid is kept.

Control totals, in this order: opening (010) + details = closing ledger (015) when both are
given; the account's total credits (100) and debits (400) against the details; the account
trailer (49) total, the algebraic sum of the summary and detail amounts of the account
(availability amounts are not part of it). Amounts are in the currency's minor units (BAI2
has no decimal point).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from bai2.constants import TypeCodes, TypeCodeTransaction

from reconciliation.importers.common import (
    MAX_LINES_PER_FILE,
    check_control_total,
    check_currency,
    currency_exponent,
    decode_text,
    make_date,
)
from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import ParsedLine, ParsedStatement, StatementFormat

RECORD_SPLIT = re.compile(r"(?<=/)\s+(?=(?:01|02|03|16|49|88|98|99),)")
AMOUNT_RE = re.compile(r"^[+-]?\d{1,18}$")
COUNT_RE = re.compile(r"^\d{1,9}$")
TYPE_CODE_RE = re.compile(r"^\d{3}$")
FUNDS_TYPES = frozenset({"", "0", "1", "2", "S", "V", "D", "Z"})
# More distributions than days in a quarter is not availability but a misread file.
MAX_DISTRIBUTIONS = 99


@dataclass
class _Record:
    code: str
    fields: list[str]
    line: int
    text: str = ""
    # Per field: the physical line it came from, and whether its physical record ends after it.
    lines: list[int] = field(default_factory=list)
    ends: list[bool] = field(default_factory=list)

    def extend(self, values: list[str], line: int) -> None:
        self.fields += values
        self.lines += [line] * len(values)
        self.ends += [False] * (len(values) - 1) + [True]


@dataclass
class _Account:
    number: str
    currency: str
    line: int
    summary: list[tuple[str, Decimal]] = field(default_factory=list)
    details: list[_Record] = field(default_factory=list)
    raw_total: int = 0


def _body_fields(body: str) -> list[str]:
    return body.rstrip().removesuffix("/").split(",")


def _text_index(fields: list[str]) -> int | None:
    """Where a 16 record's free text starts, or None while its funds type is not known yet."""
    if len(fields) < 3:
        return None
    funds = fields[2].strip().upper()
    if funds == "S":
        return 8
    if funds == "V":
        return 7
    if funds == "D":
        if len(fields) < 4 or not COUNT_RE.match(fields[3].strip()):
            return None
        return 6 + 2 * min(int(fields[3]), MAX_DISTRIBUTIONS)
    return 5


def _records(text: str) -> list[_Record]:
    physical = text.splitlines()
    if len(physical) > MAX_LINES_PER_FILE:
        raise StatementFormatError(f"More than {MAX_LINES_PER_FILE} lines.", code="too_large")
    records: list[_Record] = []
    for number, raw in enumerate(physical, start=1):
        for piece in RECORD_SPLIT.split(raw.strip()):
            piece = piece.strip()
            if not piece:
                continue
            code = piece[:2]
            if piece[2:3] != "," and records and records[-1].code == "16":
                # A detail's free text wrapped onto the next line without an 88 record.
                records[-1].text = (records[-1].text + " " + piece.rstrip("/").strip()).strip()
                continue
            if piece[2:3] != "," or code not in ("01", "02", "03", "16", "49", "88", "98", "99"):
                raise StatementFormatError(
                    f"{piece[:30]!r} is not a BAI2 record (01, 02, 03, 16, 49, 88, 98, 99).",
                    code="bad_record",
                    line=number,
                )
            body = piece[3:]
            if code == "88" and records:
                previous = records[-1]
                start = _text_index(previous.fields) if previous.code == "16" else None
                if previous.code == "16" and (
                    previous.text or (start is not None and len(previous.fields) > start)
                ):
                    # The detail's text has begun: the continuation carries more of it.
                    previous.text = (previous.text + " " + body.rstrip("/").strip()).strip()
                else:
                    # Fields continue where the previous physical record stopped.
                    previous.extend(_body_fields(body), number)
                continue
            record = _Record(code, [], number)
            record.extend(_body_fields(body), number)
            records.append(record)
    return records


def _int(value: str, line: int, what: str) -> int:
    value = value.strip()
    if not AMOUNT_RE.match(value):
        raise StatementFormatError(
            f"{what} {value!r} is not a whole number.", code="bad_amount", line=line
        )
    return int(value)


def _to_money(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency))


def _direction(type_code: str, line: int) -> int:
    entry = TypeCodes.get(type_code)
    if entry is not None and entry.transaction == TypeCodeTransaction.credit:
        return 1
    if entry is not None and entry.transaction == TypeCodeTransaction.debit:
        return -1
    if re.fullmatch(r"\d{3}", type_code):
        number = int(type_code)
        if 100 <= number <= 399 or 900 <= number <= 959:
            return 1
        if 400 <= number <= 699 or 960 <= number <= 999:
            return -1
    raise StatementFormatError(
        f"type code {type_code!r} is neither a credit nor a debit.", code="bad_type_code", line=line
    )


def _availability_problem(funds: str, values: list[str]) -> str | None:
    """What is wrong with the availability fields of a funds type, or None."""
    if funds == "S":
        for value in values:
            if value.strip() and not AMOUNT_RE.match(value.strip()):
                return f"availability amount {value.strip()!r} is not a whole number"
    elif funds == "V":
        date, time = (value.strip() for value in values)
        if date and not re.fullmatch(r"\d{6}", date):
            return f"value date {date!r} is not YYMMDD"
        if time and not re.fullmatch(r"\d{4}", time):
            return f"value time {time!r} is not HHMM"
    elif funds == "D":
        for position, value in enumerate(values[1:]):
            what = "days" if position % 2 == 0 else "amount"
            pattern = COUNT_RE if what == "days" else AMOUNT_RE
            if not pattern.match(value.strip()):
                return f"distributed availability {what} {value.strip()!r} is not a whole number"
    return None


def _availability_size(funds: str, count: str) -> int | str:
    """How many fields follow a funds type (D: its count included), or what is wrong."""
    if funds == "S":
        return 3
    if funds == "V":
        return 2
    if funds == "D":
        count = count.strip()
        if not count:
            return 1
        if not COUNT_RE.match(count) or int(count) > MAX_DISTRIBUTIONS:
            return f"distribution count {count!r} is not a number up to {MAX_DISTRIBUTIONS}"
        return 1 + 2 * int(count)
    return 0


def _detail_line(
    record: _Record, currency: str, as_of: tuple[int, int, int]
) -> tuple[ParsedLine, int]:
    f = record.fields
    if len(f) < 2:
        raise StatementFormatError("a 16 record needs a type code and an amount.", line=record.line)
    type_code = f[0].strip()
    amount_text = f[1].strip()
    minor = _int(amount_text, record.line, "amount") if amount_text else 0
    if minor < 0:
        raise StatementFormatError("a detail amount must not be negative.", line=record.line)
    funds = f[2].strip().upper() if len(f) > 2 else ""
    if funds not in FUNDS_TYPES:
        raise StatementFormatError(
            f"funds type {funds!r} is not one of 0, 1, 2, S, V, D, Z or empty.",
            code="bad_funds_type",
            line=record.line,
        )
    rest = f[3:]
    size = _availability_size(funds, rest[0] if rest else "")
    if isinstance(size, str):
        raise StatementFormatError(f"{size}.", code="bad_funds_type", line=record.line)
    problem = _availability_problem(funds, (rest[:size] + [""] * size)[:size])
    if problem:
        raise StatementFormatError(f"{problem}.", code="bad_funds_type", line=record.line)
    rest = rest[size:]
    bank_ref = rest[0].strip() if rest else ""
    customer_ref = rest[1].strip() if len(rest) > 1 else ""
    text = ",".join(rest[2:]).strip().rstrip("/").strip()
    text = " ".join((text + " " + record.text).split())
    amount = _to_money(minor, currency) * _direction(type_code, record.line)
    eref = re.search(r"EREF: ?(\S+)", text)
    name = re.search(r"(?:DBNM|CRNM): ?([^:]+?)(?= [A-Z]{4}:|$)", text)
    line = ParsedLine(
        booking_date=make_date(*as_of, line=record.line),
        value_date=None,
        amount=amount,
        currency=currency,
        description=text[:1000],
        counterparty_name=(name.group(1).strip() if name else "")[:200],
        bank_reference=(bank_ref or customer_ref)[:64],
        end_to_end_id=(eref.group(1) if eref else "")[:64],
        transaction_code=type_code[:32],
        source=f"line {record.line}",
        raw=("16," + ",".join(record.fields) + (" 88," + record.text if record.text else ""))[
            :4000
        ],
    )
    return line, minor


@dataclass(frozen=True)
class _Summary:
    code: str
    amount: str
    line: int


class _SummaryReader:
    """The summaries of an account record: type code, amount, item count, funds type and its
    availability fields, repeated. A physical record may end a summary early (its remaining
    fields empty) or cut it, the continuation carrying on with the next field; of the
    readings that make every field valid, the one following the spec (cut) is preferred."""

    def __init__(self, values: list[str], lines: list[int], ends: list[bool]) -> None:
        self.values = [value.strip() for value in values]
        self.lines = lines
        self.ends = ends
        # The invalid field found furthest into the record, to name it if nothing reads.
        self.failure: tuple[int, str] = (-1, "")

    def _fail(self, index: int, message: str) -> None:
        if index > self.failure[0]:
            self.failure = (index, message)

    def _options(self, start: int) -> list[tuple[_Summary | None, int]]:
        """Each valid reading of one summary from ``start`` as (summary, or None for an empty
        one; where the next begins), the longest (the spec's) first."""
        values, ends = self.values, self.ends
        taken: list[str] = []
        options: list[tuple[_Summary | None, int]] = []
        size: int | None = None
        i = start
        while size is None or len(taken) < 4 + size:
            if i >= len(values):
                break  # the last fields of the record may be left out
            slot = len(taken)
            if slot and ends[i - 1]:
                # The physical record ended here: the summary may end with it.
                options.append((self._summary(taken, start), i))
            problem = self._slot_problem(slot, values[i], taken)
            if problem:
                self._fail(i, problem)
                return options[::-1]
            taken.append(values[i])
            i += 1
            if slot == 3:
                size = {"S": 3, "V": 2, "D": None}.get(taken[3].upper(), 0)
            elif slot == 4 and size is None:
                found = _availability_size("D", taken[4])
                if isinstance(found, str):
                    self._fail(i - 1, found)
                    return options[::-1]
                size = found
        options.append((self._summary(taken, start), i))
        return options[::-1]

    def _summary(self, taken: list[str], start: int) -> _Summary | None:
        if not taken[0]:
            return None
        return _Summary(taken[0], taken[1] if len(taken) > 1 else "", self.lines[start])

    @staticmethod
    def _slot_problem(slot: int, value: str, taken: list[str]) -> str | None:
        if slot == 0:
            if value and not TYPE_CODE_RE.match(value):
                return f"summary type code {value!r} is not 3 digits"
        elif slot == 1:
            if value and not taken[0]:
                return f"summary amount {value!r} has no type code"
            if value and not AMOUNT_RE.match(value):
                return f"summary {taken[0]} amount {value!r} is not a whole number"
        elif slot == 2:
            if value and not taken[0]:
                return f"item count {value!r} has no type code"
            if value and not COUNT_RE.match(value):
                return f"summary {taken[0]} item count {value!r} is not a number"
        elif slot == 3:
            if value.upper() not in FUNDS_TYPES:
                return (
                    f"summary {taken[0] or '(empty)'} funds type {value!r} is not one of "
                    "0, 1, 2, S, V, D, Z or empty"
                )
        else:
            funds = taken[3].upper()
            position = slot - 4
            if funds == "V":
                if position == 0 and value and not re.fullmatch(r"\d{6}", value):
                    return f"summary {taken[0]} value date {value!r} is not YYMMDD"
                if position == 1 and value and not re.fullmatch(r"\d{4}", value):
                    return f"summary {taken[0]} value time {value!r} is not HHMM"
            elif funds == "S" or (funds == "D" and position % 2 == 0 and position):
                if value and not AMOUNT_RE.match(value):
                    return f"summary {taken[0]} availability amount {value!r} is not a number"
            elif funds == "D" and position % 2 == 1 and not COUNT_RE.match(value):
                return f"summary {taken[0]} availability days {value!r} is not a number"
        return None

    def read(self) -> list[_Summary]:
        count = len(self.values)
        # readable[i]: the fields from i on read as whole summaries (computed from the end).
        readable = [False] * (count + 1)
        readable[count] = True
        for start in range(count - 1, -1, -1):
            readable[start] = any(readable[end] for _, end in self._options(start))
        if not readable[0]:
            self._explain()
        summaries: list[_Summary] = []
        start = 0
        while start < count:
            summary, start = next(
                (summary, end) for summary, end in self._options(start) if readable[end]
            )
            if summary is not None:
                summaries.append(summary)
        return summaries

    def _explain(self) -> None:
        """Name the invalid field reached furthest along the readings that begin at 0."""
        self.failure = (-1, "")
        reached, start_points = {0}, [0]
        while start_points:
            start = start_points.pop()
            for _, end in self._options(start):
                if end not in reached and end < len(self.values):
                    reached.add(end)
                    start_points.append(end)
        index, message = self.failure
        index = max(index, 0)
        line = self.lines[index] if self.lines else None
        raise StatementFormatError(
            f"{message or 'the account summary cannot be read'}.", code="bad_summary", line=line
        )


def _as_of(value: str, line: int) -> tuple[int, int, int]:
    value = value.strip()
    if not re.fullmatch(r"\d{6}", value):
        raise StatementFormatError(
            f"as-of date {value!r} is not YYMMDD.", code="bad_date", line=line
        )
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    make_date(year, month, day, line=line)
    return year, month, day


def _statement(
    account: _Account,
    details: list[tuple[ParsedLine, int]],
    trailer: _Record,
    as_of: tuple[int, int, int],
) -> ParsedStatement:
    summary = dict(account.summary)
    lines = tuple(line for line, _ in details)
    cur = account.currency
    opening = summary.get("010")
    closing = summary.get("015")
    statement = ParsedStatement(
        format=StatementFormat.BAI2,
        account=account.number,
        currency=cur,
        lines=lines,
        statement_id=f"{account.number}-{as_of[0]:04d}{as_of[1]:02d}{as_of[2]:02d}",
        opening_balance=_to_money(int(opening), cur)
        if opening is not None and closing is not None
        else None,
        closing_balance=_to_money(int(closing), cur)
        if opening is not None and closing is not None
        else None,
        opening_date=make_date(*as_of) if opening is not None else None,
        closing_date=make_date(*as_of) if closing is not None else None,
        control="balances" if opening is not None and closing is not None else "summary_totals",
    )
    check_control_total(statement, line=account.line)
    credits = sum((minor for line, minor in details if line.amount > 0), 0)
    debits = sum((minor for line, minor in details if line.amount < 0), 0)
    for code, total, label in (("100", credits, "credits"), ("400", debits, "debits")):
        if code in summary and int(summary[code]) != total:
            raise StatementFormatError(
                f"account {account.number}: total {label} ({code}) "
                f"{_to_money(int(summary[code]), cur)} but the details add up to "
                f"{_to_money(total, cur)}.",
                code="control_total",
                line=account.line,
            )
    announced = trailer.fields[0].strip() if trailer.fields else ""
    if announced:
        expected = account.raw_total + sum(minor for _, minor in details)
        if _int(announced, trailer.line, "account control total") != expected:
            raise StatementFormatError(
                f"account {account.number}: the trailer's control total is {announced}, "
                f"the records add up to {expected}.",
                code="control_total",
                line=trailer.line,
            )
    return statement


def parse_bai2(data: bytes) -> list[ParsedStatement]:
    records = _records(decode_text(data))
    if not records or records[0].code != "01":
        raise StatementFormatError(
            "a BAI2 file starts with a file header (01).",
            code="structure",
            line=records[0].line if records else 1,
        )
    statements: list[ParsedStatement] = []
    group_currency = "USD"
    as_of: tuple[int, int, int] | None = None
    account: _Account | None = None
    details: list[tuple[ParsedLine, int]] = []
    saw_file_trailer = False
    for record in records[1:]:
        if saw_file_trailer:
            raise StatementFormatError("records after the file trailer (99).", line=record.line)
        f = record.fields
        if record.code == "02":
            if len(f) < 4:
                raise StatementFormatError("group header (02) is too short.", line=record.line)
            as_of = _as_of(f[3], record.line)
            if len(f) > 5 and f[5].strip():
                group_currency = check_currency(f[5], line=record.line)
        elif record.code == "03":
            if as_of is None:
                raise StatementFormatError("account (03) outside a group (02).", line=record.line)
            if account is not None:
                raise StatementFormatError(
                    "account (03) before the previous trailer (49).", line=record.line
                )
            number = f[0].strip()
            if not number:
                raise StatementFormatError("account (03) without a number.", line=record.line)
            currency = (
                check_currency(f[1], line=record.line)
                if len(f) > 1 and f[1].strip()
                else group_currency
            )
            account = _Account(number, currency, record.line)
            reader = _SummaryReader(f[2:], record.lines[2:], record.ends[2:])
            for summary in reader.read():
                if summary.amount:
                    value = _int(summary.amount, summary.line, f"summary {summary.code} amount")
                    account.summary.append((summary.code, Decimal(value)))
                    account.raw_total += value
            details = []
        elif record.code == "16":
            if account is None:
                raise StatementFormatError(
                    "transaction detail (16) outside an account (03).", line=record.line
                )
            details.append(_detail_line(record, account.currency, as_of))  # type: ignore[arg-type]
        elif record.code == "49":
            if account is None:
                raise StatementFormatError(
                    "account trailer (49) without an account (03).", line=record.line
                )
            statements.append(_statement(account, details, record, as_of))  # type: ignore[arg-type]
            account = None
        elif record.code == "98":
            if account is not None:
                raise StatementFormatError(
                    "group trailer (98) inside an account.", line=record.line
                )
            as_of = None
        elif record.code == "99":
            saw_file_trailer = True
        elif record.code == "01":
            raise StatementFormatError("a second file header (01).", line=record.line)
    if account is not None:
        raise StatementFormatError(
            f"account {account.number} has no trailer (49).", code="structure", line=account.line
        )
    if not saw_file_trailer:
        raise StatementFormatError(
            "the file trailer (99) is missing.", code="structure", line=records[-1].line
        )
    if not statements:
        raise StatementFormatError("no account (03) in the file.", code="no_statement", line=1)
    return statements
