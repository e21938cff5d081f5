"""Manual journal entries: a person's own postings, with a second person above a threshold.

``manual_entry_submit`` checks the lines (known, active, non-control accounts; whole minor
units; the line limit; the entry date) and records a ``ManualEntry``. One whose debits in the
functional currency are at or under the system settings' ``ledger.manual_approval_threshold``
is posted at once. A larger one is posted only when someone other than its author, holding
``ledger.approve_manualentry``, approves it (``manual_entry_approve``); or it is rejected with
a reason. The lines are checked again at approval: an account closed or a period locked in the
meantime refuses the posting rather than letting it through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.dates import DateKind, date_check
from core.exceptions import Conflict, NotFound, PermissionDeniedError
from core.fx import fx_convert
from core.ledger.enums import ManualEntryStatus
from core.ledger.exceptions import ControlAccount, InvalidLine
from core.ledger.models import Account, JournalEntry, ManualEntry
from core.ledger.ownership import control_roles, manual_posting_roles
from core.ledger.services import LineSpec, journal_post
from core.money import check_amount, round_storage
from core.system_settings import system_settings

ZERO = Decimal(0)


class ApproverIsAuthor(PermissionDeniedError):
    code = "approver_is_author"


class ManualEntryDecided(Conflict):
    code = "manual_entry_decided"


def _lines_checked(lines: Sequence[dict[str, Any]], entry_date: date) -> dict[str, Account]:
    """The lines' accounts by code, once every rule a manual entry follows holds."""
    limits = system_settings().limits
    if len(lines) > limits.document_lines:
        raise InvalidLine(
            f"A journal entry has at most {limits.document_lines} lines; this one has "
            f"{len(lines)}.",
            code="too_many_lines",
            field="lines",
        )
    codes = {line["account"] for line in lines}
    accounts = {a.code: a for a in Account.objects.filter(code__in=codes)}
    for n, line in enumerate(lines):
        if line["account"] not in accounts:
            raise InvalidLine(
                f"Unknown account code {line['account']!r}.", field=f"lines[{n}].account"
            )
    _refuse_control_accounts(lines, accounts)
    date_check(entry_date, field="entry_date", kind=DateKind.DOCUMENT)
    for n, line in enumerate(lines):
        # Posted money is in whole minor units: 0.001 USD is refused as a payment of
        # 10.001 is, never rounded.
        for side in ("debit", "credit"):
            check_amount(_amount(line, side), line["currency"], field=f"lines[{n}].{side}")
    return accounts


def _refuse_control_accounts(lines: Sequence[dict[str, Any]], accounts: dict[str, Account]) -> None:
    allowed = manual_posting_roles()
    roles = control_roles((a.pk, a.role) for a in accounts.values())
    for n, line in enumerate(lines):
        account = accounts[line["account"]]
        for control in roles[account.pk]:
            if control.role in allowed:
                continue
            what = f"{control.role}: {control.what}" if control.what else control.role
            raise ControlAccount(
                f"Account {account} is a control account ({what}): its balance must equal "
                "its sub-ledger, so it takes no manual lines. Post through its documents "
                f"(invoices, payments, bills, bank matches), or add {control.role} to "
                "ledger.manual_posting_roles in the system settings.",
                field=f"lines[{n}].account",
                account=account.code,
                role=control.role,
            )


def _amount(line: dict[str, Any], side: str) -> Decimal:
    return Decimal(str(line.get(side) or 0))


def _debits_functional(lines: Sequence[dict[str, Any]], entry_date: date) -> Decimal:
    """The entry's debits in the functional currency at the entry date's rates."""
    functional = system_settings().functional_currency
    total = ZERO
    for line in lines:
        debit = _amount(line, "debit")
        if not debit:
            continue
        if line["currency"] == functional:
            total += debit
        else:
            total += fx_convert(
                amount=debit,
                from_currency=line["currency"],
                to_currency=functional,
                on_date=entry_date,
                exact=True,
            )
    return round_storage(total)


def _post(manual: ManualEntry, accounts: dict[str, Account]) -> JournalEntry:
    return journal_post(
        lines=[
            LineSpec(
                account=accounts[line["account"]].pk,
                currency=line["currency"],
                debit=_amount(line, "debit"),
                credit=_amount(line, "credit"),
                memo=line.get("memo", ""),
            )
            for line in manual.lines
        ],
        entry_date=manual.entry_date,
        description=manual.description,
        source="manual",
        actor=manual.author,
        # One entry per manual entry, whatever retries the approval sees.
        idempotency_key=f"ledger.manual_entry:{manual.pk}",
    )


def manual_entry_submit(
    *, actor: Any, entry_date: date, description: str, lines: Sequence[dict[str, Any]]
) -> ManualEntry:
    """Record a manual journal entry by ``actor``; post it now if it is under the threshold.

    Returns the ``ManualEntry``: ``posted`` with its ``journal_entry``, or
    ``pending_approval``. Lines on a control account are refused (``control_account``, naming
    the line) unless the system settings' ``ledger.manual_posting_roles`` lists its role.
    """
    if not getattr(actor, "pk", None) or not actor.has_perm("ledger.post_journalentry"):
        raise PermissionDeniedError("You may not post manual journal entries.")
    accounts = _lines_checked(lines, entry_date)
    stored = [
        {
            "account": line["account"],
            "currency": line["currency"],
            "debit": str(_amount(line, "debit")),
            "credit": str(_amount(line, "credit")),
            "memo": line.get("memo", ""),
        }
        for line in lines
    ]
    amount = _debits_functional(stored, entry_date)
    settings = system_settings()
    with transaction.atomic():
        manual = ManualEntry.objects.create(
            entry_date=entry_date,
            description=description,
            lines=stored,
            amount_functional=amount,
            functional_currency=settings.functional_currency,
            author=actor,
        )
        if amount <= settings.ledger.manual_approval_threshold:
            manual.journal_entry = _post(manual, accounts)
            manual.post()
            manual.save()
    return manual


def _for_decision(entry_id: int, actor: Any) -> ManualEntry:
    if not getattr(actor, "pk", None) or not actor.has_perm("ledger.approve_manualentry"):
        raise PermissionDeniedError("You may not approve manual journal entries.")
    manual = ManualEntry.objects.select_for_update().filter(pk=entry_id).first()
    if manual is None:
        raise NotFound(f"No manual entry {entry_id}.", entry=entry_id)
    if manual.author_id == actor.pk:
        raise ApproverIsAuthor(
            "A manual journal entry is approved or rejected by someone other than its author.",
            entry=manual.pk,
        )
    if manual.status != ManualEntryStatus.PENDING_APPROVAL:
        raise ManualEntryDecided(
            f"Manual entry {manual.pk} is already {manual.get_status_display().lower()}.",
            entry=manual.pk,
            status=manual.status,
        )
    return manual


def manual_entry_approve(*, entry_id: int, actor: Any) -> ManualEntry:
    """Approve a pending manual entry of someone else and post it (checked again now)."""
    with transaction.atomic():
        manual = _for_decision(entry_id, actor)
        accounts = _lines_checked(manual.lines, manual.entry_date)
        manual.journal_entry = _post(manual, accounts)
        manual.decided_by = actor
        manual.decided_at = timezone.now()
        manual.post()
        manual.save()
    return manual


def manual_entry_reject(*, entry_id: int, actor: Any, reason: str) -> ManualEntry:
    """Reject a pending manual entry of someone else, with the reason; nothing is posted."""
    with transaction.atomic():
        manual = _for_decision(entry_id, actor)
        manual.decided_by = actor
        manual.rejection_reason = reason
        manual.reject()
        manual.save()
    return manual
