"""Bank feeds (Plaid, Yodlee): linking a feed to a bank account and syncing it.

A sync asks the provider for what changed, then writes the new statement lines, the changes to
known lines, the new cursor (Plaid) or ``synced_through`` date (Yodlee), the ``FeedSync`` row
and its audit event in ONE transaction: a crash before commit loses nothing (the cursor did not
move) and a retry repeats nothing (a transaction already stored is recognised by its source
``"<provider>:<transaction id>"``). A provider failure writes only the failed ``FeedSync``, the
feed's error state and the audit event; the cursor stays where it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.encryption import mask_tail
from core.exceptions import Conflict, NotFound
from reconciliation.actors import acting_user, permission_check
from reconciliation.audit import audit_record
from reconciliation.enums import (
    AuditAction,
    ExceptionKind,
    FeedProvider,
    FeedStatus,
    FeedSyncResult,
    StatementControl,
    StatementFormatChoice,
    StatementLineStatus,
)
from reconciliation.exceptions import ReconciliationError
from reconciliation.feeds import FeedError, FeedErrorCode, FeedTransaction, RemovedTransaction
from reconciliation.feeds.plaid import MAX_SYNC_COUNT, PlaidConfig, plaid_transactions_sync
from reconciliation.feeds.yodlee import YodleeConfig, yodlee_token_get, yodlee_transactions_list
from reconciliation.importers.fingerprint import line_fingerprints
from reconciliation.models import BankAccount, BankFeed, FeedSync, Statement, StatementLine
from reconciliation.services_exceptions import exception_raise
from reconciliation.services_matching import reconciliation_run_start

logger = logging.getLogger(__name__)

ADD_PERMISSION = "reconciliation.add_bankfeed"
CHANGE_PERMISSION = "reconciliation.change_bankfeed"
SYNC_PERMISSION = "reconciliation.sync_feed"

# Yodlee lists by date: each sync starts this many days before the last one ended, because
# banks post late (a card payment of Friday booked on Tuesday).
YODLEE_LOOKBACK_DAYS = 7
# The first Yodlee sync of a feed reaches this far back.
YODLEE_INITIAL_DAYS = 90
# A Plaid sync whose cursor another sync moved meanwhile is fetched again at most this often.
CONCURRENT_ATTEMPTS = 3
MAX_TOKEN_LENGTH = 2000
# Transactions per /transactions/sync page (Plaid's maximum).
PLAID_PAGE_SIZE = MAX_SYNC_COUNT
FEED_SOURCE_PREFIXES = tuple(f"{p}:" for p in FeedProvider.values)


def _source(provider: str, transaction_id: str) -> str:
    return f"{provider}:{transaction_id}"[:100]


# ---------------------------------------------------------------- set up and change


def _audit_change(feed: BankFeed, actor: Any, reason: str, details: dict[str, Any]) -> None:
    audit_record(
        action=AuditAction.FEED_CHANGED,
        actor=actor,
        subject=feed,
        bank_account_id=feed.bank_account_id,
        reason=reason,
        details={
            "provider": feed.provider,
            "external_account_id": mask_tail(feed.external_account_id),
            "status": feed.status,
            **details,
        },
    )


def _clean_token(access_token: str) -> str:
    token = (access_token or "").strip()
    if not token:
        raise ReconciliationError(
            "The feed needs its access token (Plaid) or login name (Yodlee).",
            code="access_token_required",
            field="access_token",
        )
    if len(token) > MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ReconciliationError(
            "The access token is not a single word of at most 2000 characters.",
            code="invalid_access_token",
            field="access_token",
        )
    return token


def _clean_external_id(external_account_id: str) -> str:
    value = (external_account_id or "").strip()
    if not value:
        raise ReconciliationError(
            "The provider's account id is required.",
            code="external_account_id_required",
            field="external_account_id",
        )
    if len(value) > 100:
        raise ReconciliationError(
            "The provider's account id is longer than 100 characters.",
            code="invalid_external_account_id",
            field="external_account_id",
        )
    return value


def bank_feed_create(
    *,
    actor: Any,
    bank_account_id: int,
    provider: str,
    external_account_id: str,
    access_token: str = "",
) -> BankFeed:
    """Link a bank account to its Plaid or Yodlee account (one feed per bank account). The
    token is stored encrypted and never shown again, not even in the audit trail."""
    permission_check(actor, ADD_PERMISSION, "setting up bank feeds", system_allowed=True)
    if provider not in FeedProvider.values:
        raise ReconciliationError(
            f"Unknown feed provider {provider!r}; one of {', '.join(FeedProvider.values)}.",
            code="invalid_provider",
            field="provider",
        )
    external = _clean_external_id(external_account_id)
    token = _clean_token(access_token)
    with transaction.atomic():
        account = BankAccount.objects.select_for_update().filter(pk=bank_account_id).first()
        if account is None:
            raise NotFound(f"No bank account {bank_account_id}.", field="bank_account")
        if not account.is_active:
            raise ReconciliationError(
                f"Bank account {account.name} is not active.",
                code="bank_account_inactive",
                field="bank_account",
            )
        if BankFeed.objects.filter(bank_account=account).exists():
            raise Conflict(
                f"Bank account {account.name} already has a feed.",
                code="feed_exists",
                field="bank_account",
            )
        feed = BankFeed.objects.create(
            bank_account=account,
            provider=provider,
            external_account_id=external,
            access_token=token,
            created_by=acting_user(actor),
        )
        _audit_change(feed, actor, "Feed set up.", {"change": "created"})
    return feed


def bank_feed_update(
    *,
    actor: Any,
    feed_id: int,
    enabled: bool | None = None,
    access_token: str | None = None,
    external_account_id: str | None = None,
) -> BankFeed:
    """Disable or enable a feed, or give it a new token (after the account holder signed in to
    the bank again). Enabling or a new token makes a failing feed active with its failures
    reset; its cursor is kept, so the next sync resumes where the last good one ended."""
    permission_check(actor, CHANGE_PERMISSION, "changing bank feeds", system_allowed=True)
    token = _clean_token(access_token) if access_token else None  # None and "": no new token
    external = None if external_account_id is None else _clean_external_id(external_account_id)
    with transaction.atomic():
        feed = BankFeed.objects.select_for_update().filter(pk=feed_id).first()
        if feed is None:
            raise NotFound(f"No bank feed {feed_id}.")
        changes: dict[str, Any] = {}
        if external is not None and external != feed.external_account_id:
            feed.external_account_id = external
            # Another account at the provider: its history starts anew.
            feed.cursor = ""
            feed.synced_through = None
            changes["external_account_id"] = mask_tail(external)
        if token is not None:
            feed.access_token = token
            changes["access_token"] = "replaced"  # noqa: S105 (a note, never the token)
        if enabled is False:
            if feed.status != FeedStatus.DISABLED:
                feed.status = FeedStatus.DISABLED
                changes["status"] = FeedStatus.DISABLED
        elif (enabled is True or (token is not None and feed.status == FeedStatus.ERROR)) and (
            feed.status != FeedStatus.ACTIVE or feed.consecutive_failures
        ):
            feed.status = FeedStatus.ACTIVE
            feed.consecutive_failures = 0
            changes["status"] = FeedStatus.ACTIVE
        if not changes:
            return feed
        feed.save()
        _audit_change(feed, actor, "Feed changed.", {"change": "updated", **changes})
    return feed


# ---------------------------------------------------------------- fetching


@dataclass(frozen=True)
class _Fetched:
    added: tuple[FeedTransaction, ...]
    modified: tuple[FeedTransaction, ...] = ()
    removed: tuple[RemovedTransaction, ...] = ()
    cursor_after: str = ""
    synced_through: dt.date | None = None


def _not_configured(provider: str, names: str) -> FeedError:
    return FeedError(
        f"{provider.title()} is not configured: set {names} in the environment.",
        code=FeedErrorCode.INVALID_CREDENTIALS,
        provider=provider,
    )


def _fetch_plaid(feed: BankFeed) -> _Fetched:
    if not (settings.PLAID_CLIENT_ID and settings.PLAID_SECRET and settings.PLAID_API_BASE):
        raise _not_configured("plaid", "PLAID_CLIENT_ID, PLAID_SECRET and PLAID_API_BASE")
    config = PlaidConfig(
        host=settings.PLAID_API_BASE,
        client_id=settings.PLAID_CLIENT_ID,
        secret=settings.PLAID_SECRET,
    )
    result = plaid_transactions_sync(
        config=config,
        access_token=feed.access_token,
        cursor=feed.cursor,
        count=PLAID_PAGE_SIZE,
        account_id=feed.external_account_id,
    )
    return _Fetched(
        added=result.added,
        modified=result.modified,
        removed=result.removed,
        # Plaid answers an empty cursor while it has no data yet: keep ours.
        cursor_after=result.next_cursor or feed.cursor,
    )


def _fetch_yodlee(feed: BankFeed, today: dt.date) -> _Fetched:
    if not (settings.YODLEE_CLIENT_ID and settings.YODLEE_SECRET and settings.YODLEE_API_BASE):
        raise _not_configured("yodlee", "YODLEE_CLIENT_ID, YODLEE_SECRET and YODLEE_API_BASE")
    config = YodleeConfig(base_url=settings.YODLEE_API_BASE)
    if feed.synced_through is None:
        from_date = today - dt.timedelta(days=YODLEE_INITIAL_DAYS)
    else:
        from_date = min(feed.synced_through - dt.timedelta(days=YODLEE_LOOKBACK_DAYS), today)
    token = yodlee_token_get(
        config=config,
        client_id=settings.YODLEE_CLIENT_ID,
        secret=settings.YODLEE_SECRET,
        login_name=feed.access_token,
    )
    listed = yodlee_transactions_list(
        config=config,
        access_token=token.access_token,
        from_date=from_date,
        to_date=today,
        account_id=feed.external_account_id,
    )
    # A listing by date has no "added" or "modified": known ones are compared with their line.
    ordered = sorted(listed, key=lambda t: (t.booking_date, t.transaction_id))
    return _Fetched(added=tuple(ordered), synced_through=today)


# ---------------------------------------------------------------- applying


class _SyncRefused(Exception):
    """What the provider sent cannot be stored (nothing is); recorded like a provider failure."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Applied:
    new: list[tuple[FeedTransaction, str]] = field(default_factory=list)
    modified: int = 0
    removed: int = 0
    skipped: int = 0
    pending: int = 0
    exceptions: int = 0


def _is_free(line: StatementLine) -> bool:
    """Unmatched and in no live match or proposal: the feed may still change it."""
    return (
        line.status == StatementLineStatus.UNMATCHED
        and not line.match_lines.filter(is_live=True).exists()
    )


def _fingerprint(txn: FeedTransaction) -> str:
    return line_fingerprints([txn.to_parsed_line()])[0]


def _feed_change(feed: BankFeed, line: StatementLine, txn_id: str, message: str) -> None:
    exception_raise(
        kind=ExceptionKind.FEED_CHANGE,
        key=f"feed_change:{feed.provider}:{txn_id}"[:200],
        message=message,
        bank_account_id=feed.bank_account_id,
        statement_id=line.statement_id,
        line_id=line.pk,
        amount=line.amount,
        currency=line.currency,
    )


def _file_lines_by_key(
    account: BankAccount, candidates: Iterable[FeedTransaction]
) -> dict[tuple[dt.date, Any, str], list[int]]:
    """Lines imported from statement files with the booking date, amount and currency of one
    of ``candidates``, oldest first: the movements a feed transaction may already be."""
    dates = {t.booking_date for t in candidates}
    if not dates:
        return {}
    rows = (
        StatementLine.objects.filter(bank_account=account, booking_date__in=dates)
        .exclude(statement__format=StatementFormatChoice.FEED)
        .order_by("booking_date", "pk")
        .values_list("pk", "booking_date", "amount", "currency")
    )
    out: dict[tuple[dt.date, Any, str], list[int]] = defaultdict(list)
    for pk, booking_date, amount, currency in rows:
        out[(booking_date, amount.normalize(), currency)].append(pk)
    return out


def _apply(feed: BankFeed, account: BankAccount, fetched: _Fetched) -> _Applied:
    """Sort the provider's changes into new lines, changes to known lines and skips.

    Recognising a movement already imported from a statement file: a posted feed transaction
    not yet stored is the same movement as a file line of this account with the same booking
    date, amount and currency, taken one for one: for each (date, amount, currency) the first N
    such feed transactions (by id) are recognised when the account holds N file lines of it,
    the rest are new. The rule needs no state, so a Yodlee listing that shows the transaction
    again in a later sync recognises it again, and two coffees of the same price on the same
    day in the feed are two lines when the file holds only one.
    """
    applied = _Applied()
    provider = feed.provider
    mine = feed.external_account_id

    def ours(txn_account: str) -> bool:
        # Plaid filters by account already; a row of another account is not ours to store.
        return not txn_account or not mine or txn_account == mine

    removed = [r for r in fetched.removed if ours(r.account_id)]
    removed_ids = {r.transaction_id for r in removed}
    upserts: dict[str, FeedTransaction] = {}
    order: list[str] = []
    dropped: set[str] = set()
    for txn in (*fetched.added, *fetched.modified):
        if not ours(txn.account_id):
            continue
        if txn.transaction_id in removed_ids:
            # Added (or changed) and removed within the changes of this one sync.
            if not txn.pending:
                dropped.add(txn.transaction_id)
            continue
        if txn.pending:
            applied.pending += 1
            continue
        if txn.transaction_id not in upserts:
            order.append(txn.transaction_id)
        upserts[txn.transaction_id] = txn  # the latest version wins
    modified_ids = {t.transaction_id for t in fetched.modified}

    sources = [_source(provider, tid) for tid in order] + [
        _source(provider, r.transaction_id) for r in removed
    ]
    known = {
        line.source: line
        for line in StatementLine.objects.select_for_update(of=("self",)).filter(
            bank_account=account, source__in=sources
        )
    }
    for txn in (upserts[tid] for tid in order):
        if txn.currency != account.currency:
            raise _SyncRefused(
                "currency_mismatch",
                f"Transaction {txn.transaction_id} is in {txn.currency}; bank account "
                f"{account.name} holds {account.currency}. Is the feed linked to the right "
                "account?",
            )

    unknown: list[FeedTransaction] = []
    for tid in order:
        txn = upserts[tid]
        line = known.get(_source(provider, tid))
        if line is None:
            unknown.append(txn)
        elif _update_line(feed, line, txn, applied):
            applied.modified += 1
        elif tid not in modified_ids:
            applied.skipped += 1

    by_key: dict[tuple[dt.date, Any, str], list[FeedTransaction]] = defaultdict(list)
    for txn in unknown:
        by_key[(txn.booking_date, txn.amount.normalize(), txn.currency)].append(txn)
    file_lines = _file_lines_by_key(account, unknown)
    for key, txns in by_key.items():
        available = len(file_lines.get(key, ()))
        for index, txn in enumerate(sorted(txns, key=lambda t: t.transaction_id)):
            if index < available:
                applied.skipped += 1
            else:
                applied.new.append((txn, _fingerprint(txn)))

    for r in removed:
        line = known.get(_source(provider, r.transaction_id))
        if line is None:
            # Never stored (pending, or recognised in a file) or never to be stored.
            applied.removed += r.transaction_id in dropped
            continue
        if line.status == StatementLineStatus.EXCLUDED:
            continue
        if _is_free(line):
            line.status = StatementLineStatus.EXCLUDED
            line.save(update_fields=["status"])
            applied.removed += 1
        else:
            _feed_change(
                feed,
                line,
                r.transaction_id,
                f"{feed.get_provider_display()} removed transaction {r.transaction_id}, which "
                f"is already matched (line {line.pk}, {line.booking_date}, {line.amount} "
                f"{line.currency}). The line was left as it is; check the match.",
            )
            applied.exceptions += 1
    # Stable order of the new lines: by date, then id.
    applied.new.sort(key=lambda pair: (pair[0].booking_date, pair[0].transaction_id))
    return applied


def _update_line(
    feed: BankFeed, line: StatementLine, txn: FeedTransaction, applied: _Applied
) -> bool:
    """Bring a stored line up to date with the provider's version. Texts always follow the
    provider; amount and date only while the line is free. A matched line whose amount or
    date changed is left as it is and raises a FEED_CHANGE exception. True when changed."""
    texts = {
        "description": txn.description,
        "counterparty_name": txn.counterparty_name[:200],
        "raw": txn.raw,
    }
    figures = {"booking_date": txn.booking_date, "amount": txn.amount}
    figures_changed = line.booking_date != txn.booking_date or line.amount != txn.amount
    changed = [name for name, value in texts.items() if getattr(line, name) != value]
    if figures_changed:
        if not _is_free(line):
            _feed_change(
                feed,
                line,
                txn.transaction_id,
                f"{feed.get_provider_display()} changed transaction {txn.transaction_id} to "
                f"{txn.booking_date}, {txn.amount} {txn.currency}; its line {line.pk} is "
                f"already matched as {line.booking_date}, {line.amount} {line.currency} and "
                "was left as it is. Check the match.",
            )
            applied.exceptions += 1
            return False
        for name, value in figures.items():
            setattr(line, name, value)
        line.fingerprint = _fingerprint(txn)
        changed += ["booking_date", "amount", "fingerprint"]
    if not changed:
        return False
    for name in changed:
        if name in texts:
            setattr(line, name, texts[name])
    line.save(update_fields=changed)
    return True


def _store_lines(
    feed: BankFeed, account: BankAccount, sync: FeedSync, new: list[tuple[FeedTransaction, str]]
) -> Statement | None:
    if not new:
        return None
    taken = set(
        StatementLine.objects.filter(
            bank_account=account, fingerprint__in=[fp for _, fp in new]
        ).values_list("fingerprint", flat=True)
    )
    new = [(t, fp) for t, fp in new if fp not in taken]
    if not new:
        return None
    digest = hashlib.sha256(f"{feed.provider}:{feed.pk}:{sync.pk}".encode()).hexdigest()
    statement = Statement.objects.create(
        bank_account=account,
        format=StatementFormatChoice.FEED,
        statement_id=f"{feed.provider}-sync-{sync.pk}",
        account_identifier=feed.external_account_id[:100],
        currency=account.currency,
        opening_date=min(t.booking_date for t, _ in new),
        closing_date=max(t.booking_date for t, _ in new),
        control=StatementControl.NONE,
        file_name=f"{feed.provider} sync {sync.pk}",
        file_sha256=digest,
        fingerprint=digest,
        line_count=len(new),
        imported_by=sync.actor,
    )
    lines = []
    for index, (txn, fp) in enumerate(new, start=1):
        parsed = txn.to_parsed_line()
        lines.append(
            StatementLine(
                statement=statement,
                bank_account=account,
                position=index,
                booking_date=parsed.booking_date,
                value_date=txn.authorized_date,
                amount=parsed.amount,
                currency=parsed.currency,
                description=parsed.description,
                counterparty_name=parsed.counterparty_name[:200],
                bank_reference=parsed.bank_reference[:64],
                transaction_code=txn.category[:32],
                source=parsed.source[:100],
                raw=parsed.raw,
                fingerprint=fp,
            )
        )
    # Lines carry no history of their own (the statement, FeedSync and audit cover them).
    StatementLine.objects.bulk_create(lines)
    return statement


# ---------------------------------------------------------------- sync


class _CursorMoved(Exception):
    """Another sync of the same feed committed while this one was fetching."""


def _sync_details(sync: FeedSync) -> dict[str, Any]:
    return {
        "result": sync.result,
        "error_code": sync.error_code,
        "added": sync.added,
        "modified": sync.modified,
        "removed": sync.removed,
        "skipped": sync.skipped,
        "pending": sync.pending,
        "statement": sync.statement_id,
    }


def _record_failure(
    feed_id: int, actor: Any, started_at: dt.datetime, code: str, message: str
) -> FeedSync:
    with transaction.atomic():
        feed = BankFeed.objects.select_for_update().get(pk=feed_id)
        now = timezone.now()
        sync = FeedSync.objects.create(
            feed=feed,
            started_at=started_at,
            finished_at=now,
            result=FeedSyncResult.FAILED,
            error_code=code[:40],
            error=message,
            cursor_before=feed.cursor,
            cursor_after=feed.cursor,
            actor=acting_user(actor),
        )
        feed.consecutive_failures += 1
        feed.last_error = message
        feed.last_synced_at = now
        if feed.status != FeedStatus.DISABLED:
            feed.status = FeedStatus.ERROR
        feed.save(update_fields=["consecutive_failures", "last_error", "last_synced_at", "status"])
        audit_record(
            action=AuditAction.FEED_SYNC,
            actor=actor,
            subject=sync,
            bank_account_id=feed.bank_account_id,
            reason=message,
            details=_sync_details(sync),
        )
    return sync


def _commit(
    feed_id: int, actor: Any, started_at: dt.datetime, cursor_before: str, fetched: _Fetched
) -> FeedSync:
    with transaction.atomic():
        # The account first, as a statement import locks it: one writer of its lines at a time,
        # so the recognition of file lines below holds.
        feed = BankFeed.objects.get(pk=feed_id)
        account = BankAccount.objects.select_for_update().get(pk=feed.bank_account_id)
        feed = BankFeed.objects.select_for_update().get(pk=feed_id)
        if feed.provider == FeedProvider.PLAID and feed.cursor != cursor_before:
            raise _CursorMoved
        applied = _apply(feed, account, fetched)
        now = timezone.now()
        sync = FeedSync.objects.create(
            feed=feed,
            started_at=started_at,
            result=FeedSyncResult.OK,
            cursor_before=cursor_before,
            cursor_after=fetched.cursor_after,
            actor=acting_user(actor),
        )
        statement = _store_lines(feed, account, sync, applied.new)
        sync.added = statement.line_count if statement else 0
        sync.modified = applied.modified
        sync.removed = applied.removed
        sync.skipped = applied.skipped + len(applied.new) - sync.added
        sync.pending = applied.pending
        sync.statement = statement
        sync.finished_at = now
        sync.save()
        feed.cursor = fetched.cursor_after
        if fetched.synced_through is not None:
            feed.synced_through = fetched.synced_through
        if feed.status == FeedStatus.ERROR:
            feed.status = FeedStatus.ACTIVE
        feed.consecutive_failures = 0
        feed.last_error = ""
        feed.last_synced_at = now
        feed.last_success_at = now
        feed.save(
            update_fields=[
                "cursor", "synced_through", "status", "consecutive_failures", "last_error",
                "last_synced_at", "last_success_at",
            ]
        )  # fmt: skip
        audit_record(
            action=AuditAction.FEED_SYNC,
            actor=actor,
            subject=sync,
            bank_account_id=feed.bank_account_id,
            details={**_sync_details(sync), "exceptions": applied.exceptions},
        )
        if sync.added or sync.modified:
            # New or changed lines: a reconciliation run, queued after commit.
            reconciliation_run_start(
                actor=actor, bank_account_id=account.pk, authorized_by_caller=True
            )
    return sync


def feed_sync(*, feed_id: int, actor: Any = None) -> FeedSync:
    """Sync one feed and return its ``FeedSync`` (failed ones included: a provider failure is
    recorded, not raised). ``actor`` None is the schedule.

    Plaid resumes from the stored cursor; Yodlee lists from ``synced_through`` minus
    ``YODLEE_LOOKBACK_DAYS`` to today. Only posted transactions become lines; pending ones are
    counted and come back once posted (Plaid: as a new transaction naming the pending one).
    A stored line follows the provider's changes while it is unmatched; a matched line that
    the provider changes in amount or date, or removes, is left as it is and raises a
    FEED_CHANGE exception. Running the same sync again adds nothing.
    """
    permission_check(actor, SYNC_PERMISSION, "syncing bank feeds", system_allowed=True)
    feed = BankFeed.objects.filter(pk=feed_id).first()
    if feed is None:
        raise NotFound(f"No bank feed {feed_id}.")
    if feed.status == FeedStatus.DISABLED:
        raise Conflict(f"Bank feed {feed_id} is disabled; enable it first.", code="feed_disabled")
    started_at = timezone.now()
    for attempt in range(1, CONCURRENT_ATTEMPTS + 1):
        cursor_before = feed.cursor
        try:
            if feed.provider == FeedProvider.PLAID:
                fetched = _fetch_plaid(feed)
            else:
                fetched = _fetch_yodlee(feed, timezone.localdate())
            return _commit(feed.pk, actor, started_at, cursor_before, fetched)
        except (FeedError, _SyncRefused) as exc:
            logger.warning("Bank feed %s sync failed: %s %s", feed.pk, exc.code, exc.message)
            return _record_failure(feed.pk, actor, started_at, exc.code, exc.message)
        except _CursorMoved:
            if attempt == CONCURRENT_ATTEMPTS:
                break
            feed = BankFeed.objects.get(pk=feed_id)
    return _record_failure(
        feed.pk,
        actor,
        started_at,
        "concurrent_sync",
        "Other syncs of this feed kept moving its cursor; try again.",
    )
