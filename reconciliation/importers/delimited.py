"""CSV (and tab-separated) exports read through a column mapping.

Python's ``csv`` module splits the rows; the mapping says what each column means. How the
control total applies to a CSV, by what the mapping declares:
- a running ``balance`` column (the balance after each row, possibly only on some rows):
  opening = first given balance - the movements up to it; every given balance must equal
  opening + the movements so far (``control="running_balance"``);
- ``record_type`` rows for the opening and closing balance (Swedbank): opening + movements
  must equal closing (``control="balances"``);
- neither: the export cannot prove it is complete, so nothing is checked and no balance is
  stored (``control="none"``); its lines are still deduplicated by fingerprint.
Rows listed newest first are put in date order before the running balance is checked.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from reconciliation.importers.common import (
    MAX_LINES_PER_FILE,
    check_control_total,
    check_currency,
    decode_text,
    to_amount,
)
from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import ParsedLine, ParsedStatement, StatementFormat

Column = str | int  # a header name, or a 0-based index (files without a header row)
csv.field_size_limit(1_000_000)


@dataclass(frozen=True)
class CsvMapping:
    """How to read one bank's export. Columns are header names or 0-based indexes."""

    date: Column
    name: str = "custom"
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8-sig"
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    thousands_separator: str = ""
    # Lines before the header row (a preamble); the header row itself is not counted.
    skip_rows: int = 0
    has_header: bool = True
    value_date: Column | None = None
    # Either one signed amount, or debit + credit columns, or an amount + a D/C flag column.
    amount: Column | None = None
    debit: Column | None = None
    credit: Column | None = None
    direction: Column | None = None
    debit_marker: str = "D"
    description: tuple[Column, ...] = ()
    counterparty_name: Column | None = None
    counterparty_account: Column | None = None
    bank_reference: Column | None = None
    balance: Column | None = None
    currency_column: Column | None = None
    # Used when the file has no currency column (else the bank account's currency).
    currency: str = ""
    account_column: Column | None = None
    statement_column: Column | None = None
    # Swedbank-style exports: one column tells transactions from balance rows.
    record_type: Column | None = None
    transaction_types: tuple[str, ...] = ()
    opening_types: tuple[str, ...] = ()
    closing_types: tuple[str, ...] = ()
    # Rows with an empty date continue the previous row's description (OCBC).
    continuation_rows: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CsvMapping:
        """Build from saved JSON, refusing unknown keys and impossible combinations."""
        if not isinstance(data, dict):
            raise StatementFormatError("a CSV mapping must be an object.", code="bad_mapping")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise StatementFormatError(
                f"unknown CSV mapping keys: {', '.join(sorted(unknown))}.", code="bad_mapping"
            )
        values = dict(data)
        for key in ("description", "transaction_types", "opening_types", "closing_types"):
            if key in values:
                values[key] = tuple(values[key])
        try:
            mapping = cls(**values)
        except TypeError as exc:
            raise StatementFormatError(f"CSV mapping: {exc}", code="bad_mapping") from None
        mapping.validate()
        return mapping

    def validate(self) -> None:
        if len(self.delimiter) != 1 or len(self.quotechar) != 1:
            raise StatementFormatError(
                "delimiter and quotechar are one character.", code="bad_mapping"
            )
        has_amount = self.amount is not None
        has_split = self.debit is not None or self.credit is not None
        if has_amount == has_split:
            raise StatementFormatError(
                "map either an amount column or debit/credit columns.", code="bad_mapping"
            )
        if self.decimal_separator not in (".", ","):
            raise StatementFormatError("decimal separator is '.' or ','.", code="bad_mapping")
        if not isinstance(self.skip_rows, int) or not 0 <= self.skip_rows <= 100:
            raise StatementFormatError("skip_rows is 0..100.", code="bad_mapping")


def _rows(text: str, mapping: CsvMapping) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=mapping.delimiter, quotechar=mapping.quotechar
    )
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if reader.line_num > MAX_LINES_PER_FILE:
                raise StatementFormatError(
                    f"More than {MAX_LINES_PER_FILE} lines.", code="too_large"
                )
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise StatementFormatError(
            f"unreadable CSV: {exc}", code="bad_csv", line=reader.line_num
        ) from None
    rows = rows[mapping.skip_rows :]
    header: list[str] = []
    if mapping.has_header:
        while rows and not any(cell.strip() for cell in rows[0][1]):
            rows.pop(0)
        if not rows:
            raise StatementFormatError("the header row is missing.", code="no_statement")
        header = [cell.strip() for cell in rows.pop(0)[1]]
    return header, [(n, r) for n, r in rows if any(cell.strip() for cell in r)]


class _Reader:
    def __init__(self, header: list[str], mapping: CsvMapping) -> None:
        self.mapping = mapping
        self.index: dict[Column, int] = {}
        wanted = [
            mapping.date, mapping.value_date, mapping.amount, mapping.debit, mapping.credit,
            mapping.direction, *mapping.description, mapping.counterparty_name,
            mapping.counterparty_account, mapping.bank_reference, mapping.balance,
            mapping.currency_column, mapping.account_column, mapping.statement_column,
            mapping.record_type,
        ]  # fmt: skip
        for column in wanted:
            if column is None:
                continue
            if isinstance(column, int):
                self.index[column] = column
            elif column in header:
                self.index[column] = header.index(column)
            else:
                raise StatementFormatError(
                    f"the header has no column {column!r} (mapping {mapping.name!r}).",
                    code="bad_header",
                    line=mapping.skip_rows + 1,
                )

    def get(self, row: list[str], column: Column | None) -> str:
        if column is None:
            return ""
        i = self.index[column]
        return row[i].strip() if i < len(row) else ""

    def amount(self, value: str, line: int, what: str) -> Decimal:
        m = self.mapping
        value = value.replace("\u00a0", "").replace(" ", "")
        if m.thousands_separator:
            value = value.replace(m.thousands_separator, "")
        if m.decimal_separator == ",":
            if "." in value and "," in value:
                value = value.replace(".", "")
            value = value.replace(",", ".")
        return to_amount(value, where=f"{what} ", line=line)

    def date(self, value: str, line: int, what: str) -> dt.date:
        try:
            parsed = dt.datetime.strptime(value, self.mapping.date_format)  # noqa: DTZ007 - a date only
        except ValueError:
            raise StatementFormatError(
                f"{what} {value!r} does not match the date format {self.mapping.date_format!r}.",
                code="bad_date",
                line=line,
            ) from None
        return parsed.date()


def parse_csv(
    data: bytes, mapping: CsvMapping, *, default_currency: str = ""
) -> list[ParsedStatement]:
    mapping.validate()
    text = decode_text(data, mapping.encoding)
    header, rows = _rows(text, mapping)
    reader = _Reader(header, mapping)
    fixed_currency = mapping.currency or default_currency
    lines: list[ParsedLine] = []
    opening: Decimal | None = None
    closing: Decimal | None = None
    balances: list[tuple[int, Decimal, int]] = []  # (index into lines, balance, file line)
    accounts: set[str] = set()
    statements: set[str] = set()
    for number, row in rows:
        kind = reader.get(row, mapping.record_type)
        date_text = reader.get(row, mapping.date)
        if mapping.continuation_rows and not date_text:
            if lines:
                extra = " ".join(" ".join(cell.split()) for cell in row if cell.strip())
                last = lines[-1]
                lines[-1] = ParsedLine(
                    **{**last.__dict__, "description": f"{last.description} {extra}".strip()[:1000]}
                )
            continue
        if (
            mapping.record_type is not None
            and kind in mapping.opening_types + mapping.closing_types
        ):
            value = reader.amount(reader.get(row, mapping.amount), number, "balance")
            if (
                mapping.direction is not None
                and reader.get(row, mapping.direction).upper() == mapping.debit_marker
            ):
                value = -value
            if kind in mapping.opening_types:
                opening = value
            else:
                closing = value
            continue
        if mapping.record_type is not None and kind not in mapping.transaction_types:
            continue
        if mapping.amount is not None:
            amount = reader.amount(reader.get(row, mapping.amount), number, "amount")
            if mapping.direction is not None:
                flag = reader.get(row, mapping.direction).upper()
                amount = -abs(amount) if flag == mapping.debit_marker else abs(amount)
        else:
            debit_text = reader.get(row, mapping.debit)
            credit_text = reader.get(row, mapping.credit)
            if not debit_text and not credit_text:
                raise StatementFormatError(
                    "neither a debit nor a credit amount.", code="bad_amount", line=number
                )
            debit = reader.amount(debit_text, number, "debit") if debit_text else Decimal(0)
            credit = reader.amount(credit_text, number, "credit") if credit_text else Decimal(0)
            amount = abs(credit) - abs(debit)
        currency = reader.get(row, mapping.currency_column) or fixed_currency
        currency = check_currency(currency, where="currency ", line=number)
        value_text = reader.get(row, mapping.value_date)
        description = " ".join(
            " ".join(reader.get(row, c).split()) for c in mapping.description if reader.get(row, c)
        )
        if mapping.account_column is not None:
            accounts.add(reader.get(row, mapping.account_column).strip('"'))
        if mapping.statement_column is not None:
            statements.add(reader.get(row, mapping.statement_column))
        lines.append(
            ParsedLine(
                booking_date=reader.date(date_text, number, "date"),
                value_date=reader.date(value_text, number, "value date") if value_text else None,
                amount=amount,
                currency=currency,
                description=description[:1000],
                counterparty_name=" ".join(reader.get(row, mapping.counterparty_name).split())[
                    :200
                ],
                counterparty_account=reader.get(row, mapping.counterparty_account)[:64],
                bank_reference=reader.get(row, mapping.bank_reference)[:64],
                source=f"row {number}",
                raw=mapping.delimiter.join(row)[:4000],
            )
        )
        balance_text = reader.get(row, mapping.balance)
        if balance_text:
            balances.append(
                (len(lines) - 1, reader.amount(balance_text, number, "balance"), number)
            )
    if not lines and opening is None:
        raise StatementFormatError("no transaction rows.", code="no_statement")
    currencies = {line.currency for line in lines}
    if len(currencies) > 1:
        raise StatementFormatError(
            f"rows in several currencies ({', '.join(sorted(currencies))}).",
            code="currency_mismatch",
        )
    if len(accounts) > 1:
        raise StatementFormatError(f"rows of several accounts ({len(accounts)}).", code="structure")
    currency = currencies.pop() if currencies else check_currency(fixed_currency, where="currency ")
    # Newest first: put the rows (and their balances) in date order.
    if len(lines) > 1 and lines[0].booking_date > lines[-1].booking_date:
        count = len(lines)
        lines.reverse()
        balances = [(count - 1 - i, b, n) for i, b, n in reversed(balances)]
    control = "none"
    if balances:
        control = "running_balance"
        first_index, first_balance, _ = balances[0]
        opening = first_balance - sum((ln.amount for ln in lines[: first_index + 1]), Decimal(0))
        running = opening
        cumulative = [running := running + ln.amount for ln in lines]
        for index, balance, number in balances:
            if cumulative[index] != balance:
                raise StatementFormatError(
                    f"the balance after this row is {balance}, but the opening balance {opening} "
                    f"+ the rows up to it = {cumulative[index]}.",
                    code="control_total",
                    line=number,
                )
        closing = cumulative[-1]
    elif opening is not None or closing is not None:
        if opening is None or closing is None:
            raise StatementFormatError(
                "an opening balance row without a closing one (or the reverse).", code="structure"
            )
        control = "balances"
    statement = ParsedStatement(
        format=StatementFormat.CSV,
        account=accounts.pop() if accounts else "",
        currency=currency,
        lines=tuple(lines),
        statement_id=statements.pop() if len(statements) == 1 else "",
        opening_balance=opening,
        closing_balance=closing,
        opening_date=lines[0].booking_date if lines and opening is not None else None,
        closing_date=lines[-1].booking_date if lines and closing is not None else None,
        control=control,
        extra={"mapping": mapping.name},
    )
    check_control_total(statement)
    return [statement]
