"""Writes of the reconciliation app: bank accounts, CSV mappings and statement import.

``statement_import`` is atomic and idempotent: the same file again returns the statements it
created; a statement already imported from another file is recognised by its content; lines
already known (from another file or, later, a bank feed) are skipped by fingerprint; a
malformed file, or one for another account or currency, writes nothing but its ImportLog row.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from moneyed import CURRENCIES

from core.exceptions import NotFound
from core.ledger.enums import AccountRole, AccountType
from core.ledger.models import Account
from reconciliation.actors import acting_user, permission_check
from reconciliation.audit import audit_record
from reconciliation.enums import AuditAction, ImportResult, StatementFormatChoice
from reconciliation.exceptions import ReconciliationError, StatementMismatch, StatementRefused
from reconciliation.importers import (
    CsvMapping as CsvMappingSpec,
)
from reconciliation.importers import (
    ParsedLine,
    ParsedStatement,
    StatementFormatError,
    bank_mapping,
    line_fingerprints,
    parse_statement_file,
)
from reconciliation.models import BankAccount, CsvMapping, ImportLog, Statement, StatementLine

IMPORT_PERMISSION = "reconciliation.import_statement"


def normalize_identifier(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value or "").upper()


# ---------------------------------------------------------------- bank accounts


def bank_account_create(
    *,
    actor: Any,
    name: str,
    currency: str,
    account_number: str = "",
    iban: str = "",
    bic: str = "",
    bank_name: str = "",
    ledger_account_id: int | None = None,
) -> BankAccount:
    """A bank account on a ledger asset account (by default the chart's cash account)."""
    permission_check(
        actor, "reconciliation.add_bankaccount", "adding bank accounts", system_allowed=True
    )
    currency = (currency or "").upper()
    if currency not in CURRENCIES or currency == "XXX":
        raise ReconciliationError(f"Unknown currency {currency!r}.", code="invalid_currency")
    number = normalize_identifier(account_number)
    iban_clean = normalize_identifier(iban)
    if iban_clean and not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban_clean):
        raise ReconciliationError(f"{iban!r} is not an IBAN.", code="invalid_iban")
    if ledger_account_id is None:
        ledger = Account.objects.filter(role=AccountRole.CASH).first()
        if ledger is None:
            raise ReconciliationError(
                "The chart of accounts has no cash account.", code="no_cash_account"
            )
    else:
        ledger = Account.objects.filter(pk=ledger_account_id).first()
        if ledger is None:
            raise NotFound(f"No ledger account {ledger_account_id}.")
    if ledger.type != AccountType.ASSET or not ledger.is_active:
        raise ReconciliationError(
            f"Ledger account {ledger.code} is not an active asset account.",
            code="invalid_ledger_account",
        )
    if ledger.currency and ledger.currency != currency:
        raise ReconciliationError(
            f"Ledger account {ledger.code} holds {ledger.currency}, not {currency}.",
            code="currency_mismatch",
        )
    return BankAccount.objects.create(
        name=name.strip(),
        currency=currency,
        ledger_account=ledger,
        account_number=number,
        account_number_last4=number[-4:],
        iban=iban_clean,
        iban_last4=iban_clean[-4:],
        bic=bic.strip().upper(),
        bank_name=bank_name.strip(),
        created_by=acting_user(actor),
    )


def csv_mapping_save(*, actor: Any, bank_account_id: int, config: dict[str, Any]) -> CsvMapping:
    """Save (or replace) a bank account's CSV mapping after checking it reads as one."""
    permission_check(
        actor, "reconciliation.add_csvmapping", "saving CSV mappings", system_allowed=True
    )
    try:
        spec = CsvMappingSpec.from_dict(config)
    except StatementFormatError as exc:
        raise ReconciliationError(exc.message, code="invalid_mapping") from None
    with transaction.atomic():
        account = BankAccount.objects.select_for_update().filter(pk=bank_account_id).first()
        if account is None:
            raise NotFound(f"No bank account {bank_account_id}.")
        mapping, _ = CsvMapping.objects.update_or_create(
            bank_account=account,
            defaults={
                "name": spec.name,
                "config": spec.to_dict(),
                "updated_at": timezone.now(),
                "updated_by": acting_user(actor),
            },
        )
    return mapping


# ---------------------------------------------------------------- statement import


@dataclass(frozen=True)
class ImportOutcome:
    statements: list[Statement]
    created: bool
    log: ImportLog
    skipped_statements: int = 0


def _identifier_fits(identifier: str, account: BankAccount) -> bool:
    """Does the statement's account (IBAN, number, BLZ/number, number+currency) name ours?"""
    known = [normalize_identifier(v) for v in (account.iban, account.account_number) if v]
    if not known or not identifier:
        return True
    ident = normalize_identifier(identifier)
    if re.fullmatch(r".*\d[A-Z]{3}", ident) and ident[-3:] in CURRENCIES:
        ident = ident[:-3]
    candidates = {ident, ident.rsplit("/", 1)[-1]}
    for value in known:
        for candidate in candidates:
            if not candidate:
                continue
            if candidate == value or (candidate.lstrip("0") or "0") == (value.lstrip("0") or "-"):
                return True
            # A legacy account number inside our IBAN (NL..INGB0001234567).
            if (
                len(candidate) >= 6
                and value.startswith(tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
                and value.endswith(candidate)
            ):
                return True
    return False


def _statement_fingerprint(parsed: ParsedStatement, fingerprints: list[str]) -> str:
    parts = [
        parsed.format.value,
        normalize_identifier(parsed.account),
        parsed.currency,
        parsed.statement_id,
        parsed.sequence,
        f"{parsed.opening_balance}",
        f"{parsed.closing_balance}",
        f"{parsed.opening_date}",
        f"{parsed.closing_date}",
        *fingerprints,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _audit_import(
    log: ImportLog, action: AuditAction, actor: Any, statements: list[Statement]
) -> None:
    audit_record(
        action=action,
        actor=actor,
        subject=log,
        bank_account_id=log.bank_account_id,
        reason=log.message,
        details={
            "file_name": log.file_name,
            "file_sha256": log.file_sha256,
            "result": log.result,
            "error_code": log.error_code,
            "statements": [x.pk for x in statements],
            "lines": log.line_count,
        },
    )


def statement_import(
    *,
    bank_account_id: int,
    data: bytes,
    filename: str = "",
    format: str | None = None,
    csv_mapping: str | None = None,
    actor: Any,
) -> ImportOutcome:
    """Import a statement file into a bank account, all or nothing (see the module doc).

    ``csv_mapping`` names a saved bank mapping (``importers.BANK_MAPPINGS``) for a CSV file;
    without it the bank account's own mapping is used. Returns the statements and
    ``created`` (False when the same file, or the same statements, were imported before).
    Refusals raise StatementRefused / StatementMismatch and write only the ImportLog row.
    """
    permission_check(actor, IMPORT_PERMISSION, "importing bank statements", system_allowed=True)
    digest = hashlib.sha256(data).hexdigest()
    # Only the base name is kept: a path in the upload ("../../etc/passwd") means nothing here.
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1][:255]
    account = BankAccount.objects.filter(pk=bank_account_id).first()
    if account is None:
        raise NotFound(f"No bank account {bank_account_id}.")
    base_log: dict[str, Any] = {
        "bank_account": account,
        "file_name": name,
        "file_sha256": digest,
        "file_size": min(len(data), 2**31 - 1),
        "actor": acting_user(actor),
    }
    try:
        with transaction.atomic():
            # One import at a time per bank account, so the duplicate checks below hold.
            account = BankAccount.objects.select_for_update().get(pk=bank_account_id)
            existing = list(
                Statement.objects.filter(bank_account=account, file_sha256=digest).order_by(
                    "file_position"
                )
            )
            if not existing:
                statements, already, skipped = _import(
                    account, data, name, digest, format, csv_mapping, actor
                )
                if statements:
                    log = ImportLog.objects.create(
                        **base_log,
                        format=statements[0].format,
                        result=ImportResult.IMPORTED,
                        statement_count=len(statements),
                        line_count=sum(s.line_count - s.skipped_line_count for s in statements),
                        skipped_line_count=sum(s.skipped_line_count for s in statements),
                        message=(
                            f"{skipped} statements of other accounts left out." if skipped else ""
                        ),
                    )
                    log.statements.set(statements)
                    _audit_import(log, AuditAction.IMPORT, actor, statements)
                    return ImportOutcome(statements, True, log, skipped)
                existing = already
            log = ImportLog.objects.create(
                **base_log,
                format=existing[0].format,
                result=ImportResult.DUPLICATE,
                message="Already imported; nothing new was imported.",
                statement_count=len(existing),
            )
            log.statements.set(existing)
            _audit_import(log, AuditAction.IMPORT, actor, existing)
            return ImportOutcome(existing, False, log)
    except (StatementRefused, StatementMismatch) as exc:
        log = ImportLog.objects.create(
            **base_log,
            format=(format or "")[:10],
            result=ImportResult.REFUSED,
            error_code=exc.code[:40],
            message=exc.message,
        )
        _audit_import(log, AuditAction.IMPORT_REFUSED, actor, [])
        raise


def _mapping_for(account: BankAccount, csv_mapping: str | None) -> CsvMappingSpec | None:
    try:
        if csv_mapping:
            return bank_mapping(csv_mapping)
        saved = CsvMapping.objects.filter(bank_account=account).first()
        return CsvMappingSpec.from_dict(saved.config) if saved else None
    except StatementFormatError as exc:
        raise StatementRefused(f"CSV mapping: {exc.message}", code="invalid_mapping") from None


def _without_feed_lines(
    account: BankAccount, new: list[tuple[ParsedLine, str]]
) -> list[tuple[ParsedLine, str]]:
    """Leave out the lines a bank feed brought already: the rule of
    ``services_feeds`` the other way round. For each (booking date, amount, currency), as
    many lines as the feed holds beyond the file lines already imported with that key are
    the feed's, taken one for one in the file's order."""
    feed_lines = StatementLine.objects.filter(
        bank_account=account, statement__format=StatementFormatChoice.FEED
    )
    if not new or not feed_lines.exists():
        return new
    keys = {(ln.booking_date, ln.amount, ln.currency) for ln, _ in new}
    dates = {k[0] for k in keys}
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    rows = (
        StatementLine.objects.filter(bank_account=account, booking_date__in=dates)
        .values_list("booking_date", "amount", "currency", "statement__format")
        .order_by()
    )
    for day, amount, currency, fmt in rows:
        key = (day, amount, currency)
        if key in keys:
            counts[key] += 1 if fmt == StatementFormatChoice.FEED else -1
    kept = []
    for line, fp in new:
        key = (line.booking_date, line.amount, line.currency)
        if counts[key] > 0:
            counts[key] -= 1
            continue
        kept.append((line, fp))
    return kept


def _import(
    account: BankAccount,
    data: bytes,
    name: str,
    digest: str,
    format: str | None,
    csv_mapping: str | None,
    actor: Any,
) -> tuple[list[Statement], list[Statement], int]:
    """(statements created, statements of this file imported before from another, skipped)."""
    spec = _mapping_for(account, csv_mapping)
    try:
        parsed = parse_statement_file(
            data, format=format, filename=name, csv_mapping=spec, default_currency=account.currency
        )
    except StatementFormatError as exc:
        raise StatementRefused(exc.message, code=exc.code) from None
    mine = [p for p in parsed if _identifier_fits(p.account, account)]
    distinct = {normalize_identifier(p.account) for p in mine} - {""}
    if len(distinct) > 1:
        raise StatementMismatch(
            f"The file holds statements of {len(distinct)} accounts; give the bank account "
            "its number or IBAN so that only its own statements are imported.",
            code="account_mismatch",
        )
    if not mine:
        accounts = sorted({p.account for p in parsed})
        raise StatementMismatch(
            f"The file is for account {', '.join(accounts)[:200]}, not for bank account "
            f"{account.name}.",
            code="account_mismatch",
        )
    for p in mine:
        if p.currency != account.currency:
            raise StatementMismatch(
                f"Statement {p.statement_id or p.account} is in {p.currency}; the bank account "
                f"holds {account.currency}.",
                code="currency_mismatch",
            )
    created: list[Statement] = []
    already: list[Statement] = []
    for position, p in enumerate(mine, start=1):
        fingerprints = line_fingerprints(p.lines)
        content = _statement_fingerprint(p, fingerprints)
        before = Statement.objects.filter(bank_account=account, fingerprint=content).first()
        if before is not None:
            already.append(before)
            continue
        known = set(
            StatementLine.objects.filter(
                bank_account=account, fingerprint__in=fingerprints
            ).values_list("fingerprint", flat=True)
        )
        new = [(ln, fp) for ln, fp in zip(p.lines, fingerprints, strict=True) if fp not in known]
        new = _without_feed_lines(account, new)
        statement = Statement.objects.create(
            bank_account=account,
            format=p.format.value,
            statement_id=p.statement_id[:100],
            sequence=p.sequence[:40],
            account_identifier=p.account[:100],
            currency=p.currency,
            opening_balance=p.opening_balance,
            closing_balance=p.closing_balance,
            opening_date=p.opening_date,
            closing_date=p.closing_date,
            control=p.control,
            file_name=name,
            file_sha256=digest,
            file_position=position,
            fingerprint=content,
            line_count=len(p.lines),
            skipped_line_count=len(p.lines) - len(new),
            imported_by=acting_user(actor),
        )
        # Lines carry no history of their own (the statement's history and the import log
        # cover them), so bulk_create skips nothing that matters.
        StatementLine.objects.bulk_create(
            [
                StatementLine(
                    statement=statement,
                    bank_account=account,
                    position=index,
                    booking_date=line.booking_date,
                    value_date=line.value_date,
                    amount=line.amount,
                    currency=line.currency,
                    description=line.description,
                    counterparty_name=line.counterparty_name,
                    counterparty_account=line.counterparty_account,
                    bank_reference=line.bank_reference,
                    end_to_end_id=line.end_to_end_id,
                    transaction_code=line.transaction_code,
                    source=line.source[:100],
                    raw=line.raw,
                    fingerprint=fp,
                )
                for index, (line, fp) in enumerate(new, start=1)
            ]
        )
        created.append(statement)
    return created, already, len(parsed) - len(mine)
