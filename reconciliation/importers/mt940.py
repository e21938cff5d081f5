"""SWIFT MT940 statements and MT942 interim reports.

The ``mt-940`` library (``import mt940``) is not used here: it merges every statement of a
file into one ``Transactions`` object (later balances overwrite earlier ones), it reports no
line numbers, it raises ``RuntimeError``/``ValueError`` of its own, and it cannot read
supplementary details on the line after ``:61:`` (ASN Bank). So the file is tokenised here,
tag by tag with line numbers, one statement per ``:20:``. The library serves as the reference
reader instead: tests/reconciliation/test_importer_libraries.py runs both on every corpus
file and names each disagreement.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from reconciliation.importers.common import (
    MAX_LINES_PER_FILE,
    check_amount,
    check_control_total,
    check_currency,
    decode_text,
    make_date,
)
from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import ParsedLine, ParsedStatement, StatementFormat

TAG_RE = re.compile(r"^:(?P<tag>[0-9]{2}[A-Z]?|NS):(?P<value>.*)$")
BALANCE_RE = re.compile(
    r"^(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>\d[\d,]*)\s*$"
)
# :61: first line: value date, [entry date], mark, [funds code], amount, type, references.
# Banks pad a missing entry date with blanks (four, some fewer) or write it as 0000, follow the
# mark (upper or lower case) with a funds code (the currency's third letter: D for USD) and may
# put a blank before the amount.
ENTRY_RE = re.compile(
    r"^(?P<value>\d{6})(?:(?P<entry>\d{4})| {1,4})?(?P<mark>(?i:RC|RD|C|D))(?P<funds>[A-Z])? ?"
    r"(?P<amount>\d[\d,]{0,17})(?P<type>[A-Z][A-Z0-9 ]{3})"
    r"(?P<ref>(?:(?!//).)*)(?://(?P<bankref>.*))?$"
)
FLOOR_RE = re.compile(r"^(?P<currency>[A-Z]{3})(?P<mark>[CD])?(?P<amount>\d[\d,]*)\s*$")
COUNT_SUM_RE = re.compile(r"^(?P<count>\d{1,5})(?P<currency>[A-Z]{3})(?P<amount>\d[\d,]*)\s*$")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
SEPA_KEYS = ("EREF", "KREF", "MREF", "CRED", "DEBT", "SVWZ", "ABWA", "ABWE", "IBAN", "BIC")


@dataclass
class _Tag:
    tag: str
    value: str
    line: int


@dataclass
class _Block:
    tags: list[_Tag] = field(default_factory=list)


def swift_amount(text: str, *, line: int) -> Decimal:
    """SWIFT amount ``1234,5`` / ``9,`` / ``00,12`` (comma decimal) to Decimal."""
    if text.count(",") > 1 or not re.fullmatch(r"\d+,?\d*", text):
        raise StatementFormatError(f"{text!r} is not a SWIFT amount.", code="bad_amount", line=line)
    whole, _, fraction = text.partition(",")
    value = Decimal(f"{int(whole)}.{fraction}") if fraction else Decimal(int(whole))
    return check_amount(value, line=line)


def _year(yy: int) -> int:
    return 1900 + yy if yy >= 80 else 2000 + yy


def swift_date(text: str, *, line: int, lenient_day: bool = False) -> dt.date:
    """YYMMDD. ``lenient_day`` moves 30 February and the like to the month's last day: banks
    that count interest on 30-day months put such value dates on real statements."""
    year, month, day = _year(int(text[0:2])), int(text[2:4]), int(text[4:6])
    if lenient_day and 1 <= month <= 12 and 28 <= day <= 31:
        day = min(day, calendar.monthrange(year, month)[1])
    return make_date(year, month, day, line=line)


def _tokenise(text: str) -> list[_Block]:
    """Split into messages (one per ``:20:``) of tags with the line each starts on."""
    lines = text.splitlines()
    if len(lines) > MAX_LINES_PER_FILE:
        raise StatementFormatError(f"More than {MAX_LINES_PER_FILE} lines.", code="too_large")
    blocks: list[_Block] = []
    current: _Block | None = None
    last: _Tag | None = None
    for number, raw in enumerate(lines, start=1):
        # Transmission control characters (SOH, ETX, NUL) frame messages on some links.
        line = CONTROL_RE.sub("", raw)
        # SWIFT envelope: {1:...}{2:...}{3:...}{4: opens, -}{5:...} closes.
        if line.startswith("{"):
            opened = line.find("{4:")
            if opened < 0:
                last = None
                continue
            line = line[opened + 3 :]
            if not line.strip():
                last = None
                continue
        stripped = line.strip()
        if stripped.startswith("-") and (
            stripped in ("-", "-}")
            or stripped.startswith("-}{")
            or re.fullmatch(r"-[A-Z]{0,4}", stripped)
        ):
            # End of a message: header lines before the next :20: are not statement content.
            last = current = None
            continue
        match = TAG_RE.match(line)
        if match:
            tag = match["tag"]
            if tag == "20":
                current = _Block()
                blocks.append(current)
            if current is None:
                if tag in ("60F", "60M", "61", "62F", "62M", "86", "25", "28C", "28"):
                    raise StatementFormatError(
                        f"tag :{tag}: comes before the statement's :20: reference.",
                        code="structure",
                        line=number,
                    )
                last = None
                continue
            last = _Tag(tag, match["value"], number)
            current.tags.append(last)
        elif last is not None:
            if stripped or last.tag == "86":
                last.value += "\n" + line
        elif stripped and current is not None and current.tags:
            raise StatementFormatError(
                f"{stripped[:40]!r} is outside any tag.", code="structure", line=number
            )
    return blocks


def _structured_details(text: str) -> dict[str, str]:
    """German ``?20..?63`` subfields and SEPA keywords (EREF+, SVWZ+, ...) of an :86:."""
    flat = text.replace("\n", "")
    out: dict[str, str] = {}
    if re.match(r"^\d{3}\?", flat):
        parts = re.split(r"\?(\d{2})", flat[3:])
        fields: dict[str, str] = {}
        for key, value in zip(parts[1::2], parts[2::2], strict=False):
            fields[key] = fields.get(key, "") + value
        purpose = "".join(fields.get(str(k), "") for k in range(20, 30)) + "".join(
            fields.get(str(k), "") for k in range(60, 64)
        )
        out["purpose"] = purpose
        out["name"] = (fields.get("32", "") + fields.get("33", "")).strip()
        out["account"] = fields.get("31", "").strip()
        out["posting_text"] = fields.get("00", "").strip()
        for key in SEPA_KEYS:
            found = re.search(rf"{key}\+(.*?)(?=(?:{'|'.join(SEPA_KEYS)})\+|$)", purpose)
            if found:
                out[key] = found.group(1).strip()
    return out


def _parse_entry(tag: _Tag, currency: str) -> dict[str, object]:
    first, _, supplementary = tag.value.partition("\n")
    match = ENTRY_RE.match(first.rstrip())
    if not match:
        raise StatementFormatError(
            f":61: {first[:60]!r} is not a statement line (date, D/C mark, amount, type).",
            code="bad_line",
            line=tag.line,
        )
    value_date = swift_date(match["value"], line=tag.line, lenient_day=True)
    booking_date = value_date
    if match["entry"] and match["entry"] != "0000":
        month, day = int(match["entry"][:2]), int(match["entry"][2:])
        year = value_date.year
        if month == 1 and value_date.month == 12:
            year += 1
        elif month == 12 and value_date.month == 1:
            year -= 1
        if 28 <= day <= 31 and 1 <= month <= 12:
            day = min(day, calendar.monthrange(year, month)[1])
        booking_date = make_date(year, month, day, line=tag.line)
    amount = swift_amount(match["amount"], line=tag.line)
    # D and RC (reversal of a credit) take money out; C and RD put it in.
    if match["mark"].upper() in ("D", "RC"):
        amount = -amount
    ref = match["ref"].strip()
    bank_ref = (match["bankref"] or "").strip()
    return {
        "booking_date": booking_date,
        "value_date": value_date,
        "amount": amount,
        "currency": currency,
        "transaction_code": match["type"].strip(),
        "customer_ref": "" if ref.upper() == "NONREF" else ref,
        "bank_reference": bank_ref,
        "supplementary": supplementary.strip(),
        "raw": tag.value,
        "line": tag.line,
    }


def _line_from(entry: dict[str, object], details: str) -> ParsedLine:
    info = _structured_details(details)
    description = info.get("purpose") or details.replace("\n", " ").strip()
    if not description:
        description = str(entry["supplementary"])
    eref = info.get("EREF", "")
    if eref.upper() == "NOTPROVIDED":
        eref = ""
    name = info.get("name", "") or str(entry["supplementary"]).strip()
    raw = str(entry["raw"]) + ("\n:86:" + details if details else "")
    return ParsedLine(
        booking_date=entry["booking_date"],  # type: ignore[arg-type]
        value_date=entry["value_date"],  # type: ignore[arg-type]
        amount=entry["amount"],  # type: ignore[arg-type]
        currency=str(entry["currency"]),
        description=" ".join(description.split())[:1000],
        counterparty_name=" ".join(name.split())[:200],
        counterparty_account=info.get("account", "")[:64],
        bank_reference=str(entry["bank_reference"] or entry["customer_ref"])[:64],
        end_to_end_id=eref[:64],
        transaction_code=str(entry["transaction_code"]),
        source=f"line {entry['line']}",
        raw=raw[:4000],
    )


def _balance(tag: _Tag) -> tuple[Decimal, dt.date, str]:
    match = BALANCE_RE.match(tag.value.split("\n")[0].strip())
    if not match:
        raise StatementFormatError(
            f":{tag.tag}: {tag.value[:40]!r} is not a balance (C/D, YYMMDD, currency, amount).",
            code="bad_balance",
            line=tag.line,
        )
    amount = swift_amount(match["amount"], line=tag.line)
    if match["mark"] == "D":
        amount = -amount
    return amount, swift_date(match["date"], line=tag.line), match["currency"]


def _statement(block: _Block) -> ParsedStatement:
    head = block.tags[0]
    statement_id = head.value.strip()
    account = sequence = ""
    account_line: int | None = None
    opening = closing = None
    currency = ""
    entries: list[dict[str, object]] = []
    details: dict[int, list[str]] = {}
    floor_currency = ""
    sums: dict[str, tuple[int, Decimal, int]] = {}
    closed = False
    closing_line = head.line
    for tag in block.tags[1:]:
        name = tag.tag
        if name == "25":
            if account_line is not None:
                raise StatementFormatError(
                    f"a second :25: account tag (the account was given at line {account_line}).",
                    code="structure",
                    line=tag.line,
                )
            account, account_line = tag.value.split("\n")[0].strip(), tag.line
        elif name in ("28", "28C"):
            sequence = tag.value.strip()
        elif name in ("60F", "60M"):
            if opening is not None:
                raise StatementFormatError("a second opening balance.", line=tag.line)
            opening = _balance(tag)
            currency = opening[2]
        elif name == "61":
            if closed:
                raise StatementFormatError(":61: after the closing balance.", line=tag.line)
            if not currency:
                if not floor_currency:
                    raise StatementFormatError(
                        ":61: before the opening balance (:60F:) or floor limit (:34F:).",
                        code="structure",
                        line=tag.line,
                    )
                currency = floor_currency
            entries.append(_parse_entry(tag, currency))
        elif name == "86":
            if entries and not closed:
                details.setdefault(len(entries) - 1, []).append(tag.value)
        elif name in ("62F", "62M"):
            if closing is not None:
                raise StatementFormatError("a second closing balance.", line=tag.line)
            closing = _balance(tag)
            closing_line = tag.line
            closed = True
        elif name == "34F":
            match = FLOOR_RE.match(tag.value.strip())
            if not match:
                raise StatementFormatError(
                    f":34F: {tag.value!r} is not a floor limit.", line=tag.line
                )
            floor_currency = floor_currency or match["currency"]
        elif name in ("90D", "90C"):
            match = COUNT_SUM_RE.match(tag.value.strip())
            if not match:
                raise StatementFormatError(
                    f":{name}: {tag.value!r} is not a count and sum.", line=tag.line
                )
            sums[name] = (
                int(match["count"]),
                swift_amount(match["amount"], line=tag.line),
                tag.line,
            )
    if not account:
        raise StatementFormatError(
            f"statement {statement_id!r} has no :25: account.", code="structure", line=head.line
        )
    is_942 = opening is None and closing is None and (floor_currency or sums)
    if not is_942:
        if opening is None:
            raise StatementFormatError(
                f"statement {statement_id!r} has no opening balance (:60F:).",
                code="structure",
                line=head.line,
            )
        if closing is None:
            raise StatementFormatError(
                f"statement {statement_id!r} has no closing balance (:62F:).",
                code="structure",
                line=head.line,
            )
        if closing[2] != opening[2]:
            raise StatementFormatError(
                f"the closing balance is in {closing[2]}, the opening balance in {opening[2]}.",
                code="currency_mismatch",
                line=head.line,
            )
    currency = check_currency(currency or floor_currency, line=head.line)
    lines = tuple(
        _line_from(entry, "\n".join(details.get(i, []))) for i, entry in enumerate(entries)
    )
    if is_942:
        statement = ParsedStatement(
            format=StatementFormat.MT942,
            account=account,
            currency=currency,
            lines=lines,
            statement_id=statement_id,
            sequence=sequence,
            control="summary_totals" if sums else "none",
        )
        for name, (count, total, line) in sums.items():
            picked = [ln.amount for ln in lines if (ln.amount < 0) == (name == "90D")]
            if len(picked) != count or abs(sum(picked, Decimal(0))) != total:
                raise StatementFormatError(
                    f":{name}: announces {count} entries of {total} but the report holds "
                    f"{len(picked)} of {abs(sum(picked, Decimal(0)))}.",
                    code="control_total",
                    line=line,
                )
        return statement
    if opening is None or closing is None:  # pragma: no cover - checked above
        raise StatementFormatError("balances missing.", line=head.line)
    statement = ParsedStatement(
        format=StatementFormat.MT940,
        account=account,
        currency=currency,
        lines=lines,
        statement_id=statement_id,
        sequence=sequence,
        opening_balance=opening[0],
        closing_balance=closing[0],
        opening_date=opening[1],
        closing_date=closing[1],
    )
    check_control_total(statement, line=closing_line)
    return statement


def parse_mt940(data: bytes) -> list[ParsedStatement]:
    """Every statement of an MT940/MT942 file, each checked against its own totals."""
    text = decode_text(data)
    blocks = _tokenise(text)
    if not blocks:
        raise StatementFormatError(
            "no statement found (no :20: transaction reference tag).", code="no_statement", line=1
        )
    return [_statement(block) for block in blocks]
