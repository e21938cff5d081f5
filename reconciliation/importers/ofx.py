"""OFX 1.x (SGML) and 2.x (XML) bank, credit-card and investment-cash statements (QFX too).

``ofxtools`` lexes the markup (its ``TreeBuilder`` reads both SGML without end tags and
XML, and never expands entities). Its model layer (``OFXTree.convert``) is not used: it
enforces the letter of the spec and refuses files banks really send (a 10-digit BANKID,
headerless files, empty tags, recursion on INVSTMTRS). The statements are read from the
element tree here instead. OFX has no opening balance: LEDGERBAL is kept as the closing
balance and the statement is imported without a control total (``control="none"``).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
import xml.etree.ElementTree as ET

from ofxtools.Parser import TreeBuilder

from reconciliation.importers.common import check_currency, decode_text, make_date, to_amount
from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import ParsedLine, ParsedStatement, StatementFormat

STATEMENTS = ("STMTRS", "CCSTMTRS", "INVSTMTRS")
OFX_START = re.compile(r"<OFX>", re.IGNORECASE)
DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})")


def _text(element: ET.Element | None, path: str) -> str:
    found = element.find(path) if element is not None else None
    if found is None or found.text is None:
        return ""
    return " ".join(found.text.split())


def _date(value: str, where: str) -> dt.date:
    match = DATE_RE.match(value)
    if not match:
        raise StatementFormatError(f"{value!r} is not a date.", code="bad_date", element=where)
    return make_date(int(match[1]), int(match[2]), int(match[3]), where=f"<{where}> ")


def _amount(value: str, where: str):  # type: ignore[no-untyped-def]
    if "," in value and "." not in value:
        value = value.replace(",", ".")
    return to_amount(value, where=f"<{where}> ")


def _tree(data: bytes) -> ET.Element:
    text = decode_text(data)
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise StatementFormatError(
            "OFX with a DTD or entity declarations is refused.", code="unsafe_xml"
        )
    start = OFX_START.search(text)
    if not start:
        raise StatementFormatError("no <OFX> element: the file has no body.", code="no_statement")
    builder = TreeBuilder()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            builder.feed(text[start.start() :])
            root = builder.close()
    except Exception as exc:  # ofxtools raises ParseError, AssertionError, IndexError...
        raise StatementFormatError(
            f"the OFX markup cannot be read: {str(exc)[:200]}", code="bad_ofx", element="OFX"
        ) from None
    if root is None or root.tag != "OFX":
        raise StatementFormatError("the markup is not one <OFX> element.", code="bad_ofx")
    return root


def _line(trn: ET.Element, where: str, currency: str) -> ParsedLine:
    posted = _text(trn, "DTPOSTED")
    if not posted:
        raise StatementFormatError("has no DTPOSTED.", code="structure", element=where)
    amount_text = _text(trn, "TRNAMT")
    if not amount_text:
        raise StatementFormatError("has no TRNAMT.", code="structure", element=where)
    amount = _amount(amount_text, f"{where}/TRNAMT")
    name = _text(trn, "NAME") or _text(trn, "PAYEE/NAME")
    memo = _text(trn, "MEMO")
    account = _text(trn, "BANKACCTTO/ACCTID") or _text(trn, "CCACCTTO/ACCTID")
    user_date = _text(trn, "DTAVAIL") or _text(trn, "DTUSER")
    return ParsedLine(
        booking_date=_date(posted, f"{where}/DTPOSTED"),
        value_date=_date(user_date, f"{where}/DTAVAIL") if user_date else None,
        amount=amount,
        currency=currency,
        description=" ".join(p for p in (name, memo) if p)[:1000],
        counterparty_name=name[:200],
        counterparty_account=account[:64],
        bank_reference=(_text(trn, "FITID") or _text(trn, "REFNUM") or _text(trn, "CHECKNUM"))[:64],
        transaction_code=_text(trn, "TRNTYPE")[:32],
        source=where,
        raw=ET.tostring(trn, encoding="unicode")[:4000],
    )


def _statement(rs: ET.Element, where: str) -> ParsedStatement:
    account = (
        _text(rs, "BANKACCTFROM/ACCTID")
        or _text(rs, "CCACCTFROM/ACCTID")
        or _text(rs, "INVACCTFROM/ACCTID")
    )
    if not account:
        raise StatementFormatError("has no account (ACCTID).", code="structure", element=where)
    transactions = list(rs.iter("STMTTRN"))
    currency = _text(rs, "CURDEF")
    if not currency:
        symbols = {_text(t, "CURRENCY/CURSYM") for t in transactions} - {""}
        if len(symbols) != 1:
            raise StatementFormatError("has no currency (CURDEF).", code="structure", element=where)
        currency = symbols.pop()
    currency = check_currency(currency, where=f"<{where}/CURDEF> ")
    closing = None
    closing_date = None
    ledger = rs.find("LEDGERBAL")
    if ledger is not None:
        balance = _text(ledger, "BALAMT")
        if not balance:
            raise StatementFormatError(
                "LEDGERBAL has an empty BALAMT.", code="bad_amount", element=f"{where}/LEDGERBAL"
            )
        closing = _amount(balance, f"{where}/LEDGERBAL/BALAMT")
        as_of = _text(ledger, "DTASOF")
        closing_date = _date(as_of, f"{where}/LEDGERBAL/DTASOF") if as_of else None
    lines = tuple(
        _line(trn, f"{where}/STMTTRN[{index}]", currency)
        for index, trn in enumerate(transactions, start=1)
    )
    dtstart = _text(rs, "BANKTRANLIST/DTSTART") or _text(rs, "INVTRANLIST/DTSTART")
    return ParsedStatement(
        format=StatementFormat.OFX,
        account=account,
        currency=currency,
        lines=lines,
        statement_id="",
        sequence="",
        opening_balance=None,
        closing_balance=closing,
        opening_date=_date(dtstart, f"{where}/DTSTART") if dtstart else None,
        closing_date=closing_date,
        control="none",
        extra={"bank_id": _text(rs, "BANKACCTFROM/BANKID")},
    )


def parse_ofx(data: bytes) -> list[ParsedStatement]:
    root = _tree(data)
    found = [rs for rs in root.iter() if rs.tag in STATEMENTS]
    if not found:
        severity = ""
        for status in root.iter("STATUS"):
            if _text(status, "SEVERITY") == "ERROR":
                severity = f"{_text(status, 'CODE')} {_text(status, 'MESSAGE')}".strip()
        if severity:
            raise StatementFormatError(
                f"the bank answered with an error ({severity}), not a statement.",
                code="no_statement",
                element="STATUS",
            )
        raise StatementFormatError(
            "holds no statement (STMTRS, CCSTMTRS or INVSTMTRS).",
            code="no_statement",
            element="OFX",
        )
    return [_statement(rs, f"{rs.tag}[{index}]") for index, rs in enumerate(found, start=1)]
