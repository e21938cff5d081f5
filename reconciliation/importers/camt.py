"""ISO 20022 camt.053 statements, camt.052 intraday reports and camt.054 notifications.

No library in the lock reads camt, so this is written here on top of defusedxml. Namespaces
(001.02 to 001.08) are ignored: the element names are the same in every version used by banks.
Rules written down:
- one ParsedLine per booked entry (``Ntry``; ``Sts`` BOOK or absent): pending (PDNG) and
  information-only (INFO) entries are not movements and are left out; a batch entry with
  several ``TxDtls`` stays one line (the bank booked one amount), its details from the first;
- opening balance: OPBD, else PRCD, else OPAV; closing: CLBD, else CLAV (camt.052: ITBD
  first). camt.053 must have both; camt.052 is checked when it has both; camt.054 carries no
  balances and is imported without a control total; a camt.052 is checked only when it
  carries a closing booked balance (CLBD): its interim balance (ITBD) is a snapshot that
  delta reports do not reach from the opening balance, so it is neither checked nor stored;
- every balance and entry must be in the account's currency.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

from reconciliation.importers.common import check_control_total, check_currency, to_amount
from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import ParsedLine, ParsedStatement, StatementFormat
from reconciliation.importers.xmlsafe import child, children, local, parse_xml, text

_CONTAINERS = {
    "BkToCstmrStmt": ("Stmt", StatementFormat.CAMT053),
    "BkToCstmrAcctRpt": ("Rpt", StatementFormat.CAMT052),
    "BkToCstmrDbtCdtNtfctn": ("Ntfctn", StatementFormat.CAMT054),
}
OPENING = ("OPBD", "PRCD", "OPAV")
CLOSING = ("CLBD", "CLAV")
CLOSING_052 = ("CLBD",)
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _date(element: ET.Element | None, where: str) -> dt.date | None:
    value = text(element, "Dt") or text(element, "DtTm")
    if not value:
        return None
    match = DATE_RE.match(value)
    try:
        if not match:
            raise ValueError(value)
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise StatementFormatError(
            f"{value!r} is not a date.", code="bad_date", element=where
        ) from None


def _amount(parent: ET.Element, where: str, name: str = "Amt") -> tuple[Decimal, str]:
    amt = child(parent, name)
    if amt is None:
        raise StatementFormatError("has no amount.", code="structure", element=where)
    amount = to_amount(text(amt), where=f"<{where}/{name}> ")
    currency = check_currency(amt.get("Ccy", ""), where=f"<{where}/{name}> Ccy ")
    indicator = text(parent, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise StatementFormatError(
            f"CdtDbtInd {indicator!r} is neither CRDT nor DBIT.",
            code="structure",
            element=f"{where}/CdtDbtInd",
        )
    if amount < 0:
        raise StatementFormatError(
            "a negative amount.", code="bad_amount", element=f"{where}/{name}"
        )
    return (-amount if indicator == "DBIT" else amount), currency


def _party(details: ET.Element | None, role: str) -> tuple[str, str]:
    parties = child(details, "RltdPties")
    party = child(parties, role)
    name = text(party, "Nm") or text(party, "Pty/Nm")
    account = child(parties, f"{role}Acct/Id")
    number = text(account, "IBAN") or text(account, "Othr/Id")
    return name, number


def _line(entry: ET.Element, where: str, currency: str) -> ParsedLine:
    amount, entry_currency = _amount(entry, where)
    if entry_currency != currency:
        raise StatementFormatError(
            f"the entry is in {entry_currency}, the account in {currency}.",
            code="currency_mismatch",
            element=f"{where}/Amt",
        )
    booking = _date(child(entry, "BookgDt"), f"{where}/BookgDt")
    value = _date(child(entry, "ValDt"), f"{where}/ValDt")
    if booking is None and value is None:
        raise StatementFormatError("has no booking or value date.", code="structure", element=where)
    details = child(entry, "NtryDtls/TxDtls")
    name, account = _party(details, "Dbtr" if amount >= 0 else "Cdtr")
    remittance = child(details, "RmtInf")
    texts = [text(u) for u in children(remittance, "Ustrd")] if remittance is not None else []
    structured = text(remittance, "Strd/CdtrRefInf/Ref")
    texts += [structured, text(details, "AddtlTxInf"), text(entry, "AddtlNtryInf")]
    description = " ".join(t for t in texts if t)
    end_to_end = text(details, "Refs/EndToEndId")
    if end_to_end.upper() == "NOTPROVIDED":
        end_to_end = ""
    code = text(entry, "BkTxCd/Domn/Cd")
    family = text(entry, "BkTxCd/Domn/Fmly/Cd")
    sub = text(entry, "BkTxCd/Domn/Fmly/SubFmlyCd")
    transaction_code = "/".join(p for p in (code, family, sub) if p) or text(
        entry, "BkTxCd/Prtry/Cd"
    )
    return ParsedLine(
        booking_date=booking or value,  # type: ignore[arg-type]
        value_date=value,
        amount=amount,
        currency=currency,
        description=description[:1000],
        counterparty_name=name[:200],
        counterparty_account=account[:64],
        bank_reference=(text(entry, "AcctSvcrRef") or text(details, "Refs/AcctSvcrRef"))[:64],
        end_to_end_id=end_to_end[:64],
        transaction_code=transaction_code[:32],
        source=where,
        raw=ET.tostring(entry, encoding="unicode")[:4000],
    )


def _balances(statement: ET.Element, where: str) -> dict[str, tuple[Decimal, str, dt.date | None]]:
    found: dict[str, tuple[Decimal, str, dt.date | None]] = {}
    for index, balance in enumerate(children(statement, "Bal"), start=1):
        here = f"{where}/Bal[{index}]"
        code = text(balance, "Tp/CdOrPrtry/Cd") or text(balance, "Tp/CdOrPrtry/Prtry")
        amount, currency = _amount(balance, here)
        found.setdefault(code, (amount, currency, _date(child(balance, "Dt"), f"{here}/Dt")))
    return found


def _pick(
    balances: dict[str, tuple[Decimal, str, dt.date | None]], codes: tuple[str, ...]
) -> tuple[str, tuple[Decimal, str, dt.date | None]] | None:
    for code in codes:
        if code in balances:
            return code, balances[code]
    return None


def _statement(element: ET.Element, fmt: StatementFormat, where: str) -> ParsedStatement:
    iban = text(element, "Acct/Id/IBAN")
    account = iban or text(element, "Acct/Id/Othr/Id")
    if not account:
        raise StatementFormatError("has no account (Acct/Id).", code="structure", element=where)
    balances = _balances(element, where)
    opening = _pick(balances, OPENING)
    closing = _pick(balances, CLOSING_052 if fmt == StatementFormat.CAMT052 else CLOSING)
    if fmt != StatementFormat.CAMT053 and closing is None:
        opening = None
    entries = list(children(element, "Ntry"))
    currency = text(element, "Acct/Ccy")
    if not currency:
        if opening:
            currency = opening[1][1]
        elif entries:
            currency = (
                amount.get("Ccy", "") if (amount := child(entries[0], "Amt")) is not None else ""
            )
    currency = check_currency(currency, where=f"<{where}/Acct/Ccy> ")
    for label, picked in (("opening", opening), ("closing", closing)):
        if picked and picked[1][1] != currency:
            raise StatementFormatError(
                f"the {label} balance {picked[0]} is in {picked[1][1]}, the account in {currency}.",
                code="currency_mismatch",
                element=f"{where}/Bal",
            )
    if fmt == StatementFormat.CAMT053:
        if opening is None:
            raise StatementFormatError(
                "has no opening balance (Bal OPBD/PRCD).", code="structure", element=where
            )
        if closing is None:
            raise StatementFormatError(
                "has no closing balance (Bal CLBD).", code="structure", element=where
            )
    lines = []
    for index, entry in enumerate(entries, start=1):
        status = text(entry, "Sts") or text(entry, "Sts/Cd")
        if status and status not in ("BOOK",):
            continue
        lines.append(_line(entry, f"{where}/Ntry[{index}]", currency))
    both = opening is not None and closing is not None
    statement = ParsedStatement(
        format=fmt,
        account=account,
        currency=currency,
        lines=tuple(lines),
        statement_id=text(element, "Id"),
        sequence=text(element, "LglSeqNb") or text(element, "ElctrncSeqNb"),
        opening_balance=opening[1][0] if both and opening else None,
        closing_balance=closing[1][0] if both and closing else None,
        opening_date=opening[1][2] if both and opening else None,
        closing_date=closing[1][2] if both and closing else None,
        control="balances" if both else "none",
    )
    check_control_total(statement, element=where)
    return statement


def parse_camt(data: bytes) -> list[ParsedStatement]:
    root = parse_xml(data)
    if local(root.tag) != "Document":
        raise StatementFormatError(
            f"the root element is <{local(root.tag)}>, not <Document>.",
            code="structure",
            element=local(root.tag),
        )
    message = next(iter(root), None)
    name = local(message.tag) if message is not None else ""
    if name not in _CONTAINERS:
        raise StatementFormatError(
            f"<Document> holds <{name or 'nothing'}>, not a camt.052/053/054 message.",
            code="structure",
            element="Document",
        )
    item, fmt = _CONTAINERS[name]
    statements = [
        _statement(element, fmt, f"{item}[{index}]")
        for index, element in enumerate(children(message, item), start=1)  # type: ignore[arg-type]
    ]
    if not statements:
        raise StatementFormatError(
            f"<{name}> holds no <{item}>.", code="no_statement", element=name
        )
    return statements
