"""BAI2 cash-management files: one ParsedStatement per account record (03 ... 49).

The ``bai2`` library's type-code table (``bai2.constants.TypeCodes``) decides whether a
detail is a credit or a debit. Its parser is not used: it cannot read several records on
one physical line (sample3 of moov-io), it counts continuation records differently from
banks that omit the trailing ``/`` (it refuses Goldman Sachs files), and it reports neither
line numbers nor one exception type. Records are read here with their line numbers.

Control totals, in this order: opening (010) + details = closing ledger (015) when both are
given; the account's total credits (100) and debits (400) against the details; the account
trailer (49) total, the algebraic sum of every amount of the account's 03/16/88 records.
Amounts are in the currency's minor units (BAI2 has no decimal point).
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


@dataclass
class _Record:
    code: str
    fields: list[str]
    line: int
    text: str = ""


@dataclass
class _Account:
    number: str
    currency: str
    line: int
    summary: list[tuple[str, Decimal]] = field(default_factory=list)
    details: list[_Record] = field(default_factory=list)
    raw_total: int = 0


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
                if previous.code == "16":
                    previous.text = (previous.text + " " + body.rstrip("/").strip()).strip()
                else:
                    previous.fields += body.rstrip().rstrip("/").split(",")
                continue
            if code == "16":
                records.append(_Record(code, body.split(","), number))
            else:
                records.append(_Record(code, body.rstrip().rstrip("/").split(","), number))
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
    rest = f[3:]
    # The funds type decides how many availability fields follow it.
    skip = {"S": 3, "V": 2, "D": None}.get(funds, 0)
    if skip is None:
        count = _int(rest[0], record.line, "availability count") if rest else 0
        skip = 1 + 2 * count
    rest = rest[skip:]
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


def _summaries(account: _Account, items: list[str], line: int) -> None:
    """Type code, amount, item count, funds type (+ its availability fields), repeated."""
    i = 0
    while i < len(items):
        code = items[i].strip()
        amount = items[i + 1].strip() if i + 1 < len(items) else ""
        funds = items[i + 3].strip().upper() if i + 3 < len(items) else ""
        i += 4
        if funds == "S":
            i += 3
        elif funds == "V":
            i += 2
        elif funds == "D":
            count = _int(items[i], line, "availability count") if i < len(items) else 0
            i += 1 + 2 * count
        if not code:
            continue
        if not re.fullmatch(r"\d{3}", code):
            raise StatementFormatError(f"summary type code {code!r} is not 3 digits.", line=line)
        if amount:
            value = _int(amount, line, f"summary {code} amount")
            account.summary.append((code, Decimal(value)))
            account.raw_total += value


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
            _summaries(account, f[2:], record.line)
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
