"""Helpers shared by the parsers: limits, decoding, amounts, currencies, the control total."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import ParsedStatement

# Bank statements are small; anything larger is refused before parsing (B7).
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_LINES_PER_FILE = 200_000
# Amounts are stored with 4 decimal places (Decimal(19, 4)).
MAX_DECIMALS = 4
MAX_ABS_AMOUNT = Decimal("999999999999999")

# ISO 4217 minor units that are not 2 (BAI2 sends amounts in minor units).
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def check_size(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray):
        raise StatementFormatError("The statement must be given as bytes.", code="invalid_input")
    if len(data) > MAX_FILE_BYTES:
        raise StatementFormatError(
            f"The file has {len(data)} bytes; at most {MAX_FILE_BYTES} are accepted.",
            code="too_large",
        )
    if not data.strip():
        raise StatementFormatError("The file is empty.", code="empty")


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """UTF-8 (with or without BOM), else the given encoding, else Latin-1 (never fails)."""
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise StatementFormatError(
                f"The file is not valid {encoding}: {exc}", code="encoding"
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def to_amount(text: str, *, where: str = "", line: int | None = None) -> Decimal:
    """A plain decimal string ("-12.50") to Decimal, refusing NaN, exponents and overflow."""
    value = (text or "").strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", value):
        raise StatementFormatError(
            f"{where}{value!r} is not an amount.", code="bad_amount", line=line
        )
    try:
        amount = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees it
        raise StatementFormatError(f"{where}{value!r} is not an amount.", line=line) from None
    return check_amount(amount, where=where, line=line)


def check_amount(amount: Decimal, *, where: str = "", line: int | None = None) -> Decimal:
    if abs(amount) > MAX_ABS_AMOUNT:
        raise StatementFormatError(f"{where}amount {amount} is too large.", line=line)
    normalized = amount.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise StatementFormatError(
            f"{where}amount {amount} has more than {MAX_DECIMALS} decimal places.",
            code="bad_amount",
            line=line,
        )
    return amount


def check_currency(code: str, *, where: str = "", line: int | None = None) -> str:
    code = (code or "").strip().upper()
    if not CURRENCY_RE.match(code):
        raise StatementFormatError(
            f"{where}{code!r} is not a currency code.", code="bad_currency", line=line
        )
    return code


def make_date(
    year: int, month: int, day: int, *, where: str = "", line: int | None = None
) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise StatementFormatError(
            f"{where}{year:04d}-{month:02d}-{day:02d} is not a date.", code="bad_date", line=line
        ) from None


def check_control_total(
    statement: ParsedStatement,
    *,
    where: str = "",
    line: int | None = None,
    element: str | None = None,
) -> None:
    """Opening balance + the lines must equal the closing balance (when both are given)."""
    if statement.opening_balance is None or statement.closing_balance is None:
        return
    expected = statement.opening_balance + statement.movement
    if expected != statement.closing_balance:
        label = statement.statement_id or statement.account or "statement"
        raise StatementFormatError(
            f"{where}statement {label}: opening balance {statement.opening_balance} + "
            f"{len(statement.lines)} transactions ({statement.movement}) = {expected}, "
            f"but the closing balance is {statement.closing_balance}.",
            code="control_total",
            line=line,
            element=element,
        )
