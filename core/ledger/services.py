"""The one way to write the ledger: ``journal_post`` (and its batch form), ``journal_reverse``,
``period_lock_set``.

Every rule is checked here first so the caller gets a clear error with a stable code; on
PostgreSQL the database enforces balance and immutability again (migrations 0002), so even a
write that bypasses this module cannot commit an unbalanced or edited entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.exceptions import Conflict, DomainError, PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.digest import entry_digest
from core.ledger.exceptions import (
    AlreadyReversed,
    DocumentEntry,
    InactiveAccount,
    InvalidLine,
    PeriodLocked,
    UnbalancedEntry,
)
from core.ledger.models import Account, JournalEntry, JournalLine, PeriodLock
from core.ledger.ownership import document_of
from core.ledger.selectors import account_lock_dates, period_lock_date
from core.money import (
    STORAGE_QUANTUM,
    allocate,
    minor_unit_exponent,
    round_storage,
)

ZERO = Decimal(0)
MAX_AMOUNT = Decimal("1e15")


@dataclass(frozen=True, slots=True)
class LineSpec:
    """One line to post: an account, a currency and either a debit or a credit.

    ``functional`` fixes the line's value in the functional currency (e.g. AR carried at the
    invoice's rate); when None it is converted at the rate of the entry date.
    """

    account: Account | int
    currency: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    functional: Decimal | None = None
    memo: str = ""
    # "debit" or "credit" for a functional-only line (zero in its own currency).
    side: str = ""

    @classmethod
    def functional_only(
        cls,
        account: Account | int,
        currency: str,
        *,
        debit: Decimal = ZERO,
        credit: Decimal = ZERO,
        memo: str = "",
    ) -> LineSpec:
        """A line that moves value only in the functional currency: realized FX gain or loss
        when money settles at another rate than it was booked. Zero in ``currency``."""
        if (debit > 0) == (credit > 0):
            raise InvalidLine("A functional-only line needs exactly one positive side.")
        return cls(
            account,
            currency,
            functional=debit or credit,
            side="debit" if debit > 0 else "credit",
            memo=memo,
        )

    @property
    def is_debit(self) -> bool:
        return self.debit > 0 or self.side == "debit"


@dataclass(frozen=True, slots=True)
class EntrySpec:
    lines: Sequence[LineSpec]
    entry_date: date
    description: str = ""
    source: str = ""
    idempotency_key: str | None = None
    reversal_of_id: int | None = None


@dataclass(slots=True)
class _Prepared:
    spec: EntrySpec
    # (account_id, currency, debit, credit, functional_debit, functional_credit, memo)
    lines: list[tuple[int, str, Decimal, Decimal, Decimal, Decimal, str]]
    digest: str


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


def _account_id(account: Account | int) -> int:
    return account.pk if isinstance(account, Account) else int(account)


def _check_amount(value: Any, where: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidLine(f"{where}: {value!r} is not a finite Decimal amount.")
    if value < 0:
        raise InvalidLine(f"{where}: {value} is negative; use the other side instead.")
    if value != value.quantize(STORAGE_QUANTUM) or value >= MAX_AMOUNT:
        raise InvalidLine(f"{where}: {value} has more than 4 decimal places or is too large.")
    return value


class _Context:
    """Look-ups shared by the entries of one posting call: accounts, lock date, FX rates.

    ``checked_by_database``: accounts and the lock date are not read here; the caller posts
    with ``ledger_post_entry(checked => true)``, which applies the same rules as it inserts.
    """

    def __init__(self, account_ids: Iterable[int], *, checked_by_database: bool = False) -> None:
        self.accounts: dict[int, Account] | None
        self.account_locks: dict[tuple[int, str], date] = {}
        if checked_by_database:
            self.accounts = None
            self.lock_date = None
        else:
            ids = set(account_ids)
            self.accounts = {a.pk: a for a in Account.objects.filter(pk__in=ids)}
            self.lock_date = period_lock_date()
            self.account_locks = account_lock_dates(ids)
        self.functional = settings.SYSTEM_SETTINGS.functional_currency
        self._rates: dict[tuple[str, date], Decimal] = {}

    def rate(self, currency: str, on_date: date) -> Decimal:
        key = (currency, on_date)
        if key not in self._rates:
            self._rates[key] = fx_rate_get(base=currency, quote=self.functional, on_date=on_date)
        return self._rates[key]


def _prepare(spec: EntrySpec, ctx: _Context) -> _Prepared:
    if len(spec.lines) < 2:
        raise UnbalancedEntry("A journal entry needs at least two lines.")
    if ctx.lock_date and spec.entry_date <= ctx.lock_date:
        raise PeriodLocked(
            f"The books are closed through {ctx.lock_date.isoformat()}; an entry dated "
            f"{spec.entry_date.isoformat()} cannot be posted. Post it in the open period.",
            lock_date=ctx.lock_date.isoformat(),
        )
    per_currency: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for n, line in enumerate(spec.lines, start=1):
        where = f"line {n}"
        minor_unit_exponent(line.currency)
        debit = _check_amount(line.debit, f"{where} debit")
        credit = _check_amount(line.credit, f"{where} credit")
        functional_only = debit == credit == 0 and line.side in ("debit", "credit")
        if (debit > 0) == (credit > 0) and not functional_only:
            raise InvalidLine(f"{where}: exactly one of debit and credit must be positive.")
        if functional_only and not line.functional:
            raise InvalidLine(
                f"{where}: a functional-only line needs a positive functional amount."
            )
        if ctx.accounts is not None:
            account = ctx.accounts.get(_account_id(line.account))
            if account is None:
                raise InvalidLine(f"{where}: account {line.account!r} does not exist.")
            if not account.is_active:
                raise InactiveAccount(
                    f"{where}: account {account} is inactive.", account=account.code
                )
            account_lock = max(
                ctx.account_locks.get((account.pk, ""), date.min),
                ctx.account_locks.get((account.pk, line.currency), date.min),
            )
            if spec.entry_date <= account_lock:
                raise PeriodLocked(
                    f"{where}: account {account} is closed through "
                    f"{account_lock.isoformat()} (its reconciliation is signed off); an entry "
                    f"dated {spec.entry_date.isoformat()} cannot post to it. Post it in the "
                    "open period.",
                    lock_date=account_lock.isoformat(),
                    account=account.code,
                )
            if account.currency and account.currency != line.currency:
                raise InvalidLine(
                    f"{where}: account {account} only takes {account.currency}, "
                    f"not {line.currency}."
                )
        if line.functional is not None:
            _check_amount(line.functional, f"{where} functional amount")
        per_currency[line.currency][0] += debit
        per_currency[line.currency][1] += credit
    for currency, (debits, credits) in per_currency.items():
        if debits != credits:
            raise UnbalancedEntry(
                f"The entry does not balance in {currency}: debits {debits} and credits "
                f"{credits} differ by {debits - credits}.",
                currency=currency,
            )

    functional_amounts = _functional_amounts(spec, ctx)
    for n, functional in enumerate(functional_amounts, start=1):
        if functional >= MAX_AMOUNT:
            raise InvalidLine(
                f"line {n}: its value in {ctx.functional} ({functional}) is too large for "
                "the ledger.",
                code="amount_too_large",
                field=f"lines[{n - 1}]",
            )
    lines = []
    f_debits = f_credits = ZERO
    for line, functional in zip(spec.lines, functional_amounts, strict=True):
        fd, fc = (functional, ZERO) if line.is_debit else (ZERO, functional)
        f_debits += fd
        f_credits += fc
        lines.append(
            (_account_id(line.account), line.currency, line.debit, line.credit, fd, fc, line.memo)
        )
    if f_debits != f_credits:
        raise UnbalancedEntry(
            f"The entry does not balance in the functional currency {ctx.functional}: debits "
            f"{f_debits} and credits {f_credits} differ by {f_debits - f_credits}.",
            currency=ctx.functional,
        )
    digest = entry_digest(
        entry_date=spec.entry_date,
        functional_currency=ctx.functional,
        source=spec.source,
        idempotency_key=spec.idempotency_key,
        reversal_of_id=spec.reversal_of_id,
        lines=[line[:6] for line in lines],
    )
    return _Prepared(spec=spec, lines=lines, digest=digest)


def _functional_amounts(spec: EntrySpec, ctx: _Context) -> list[Decimal]:
    """Each line's functional value: given, equal (functional currency), or converted.

    Converted lines of one currency are allocated from the converted totals by largest
    remainder, so a balanced currency stays balanced in the functional currency to the
    last of the 4 stored places.
    """
    result: list[Decimal | None] = [
        line.functional
        if line.functional is not None
        else (line.debit or line.credit)
        if line.currency == ctx.functional
        else None
        for line in spec.lines
    ]
    todo: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for i, line in enumerate(spec.lines):
        if result[i] is None:
            todo[(line.currency, line.debit > 0)].append(i)
    for (currency, _is_debit), indexes in todo.items():
        rate = ctx.rate(currency, spec.entry_date)
        amounts = [spec.lines[i].debit or spec.lines[i].credit for i in indexes]
        total = round_storage(sum(amounts, ZERO) * rate)
        for i, part in zip(indexes, allocate(total, amounts, unit=STORAGE_QUANTUM), strict=True):
            result[i] = part
    return [r if r is not None else ZERO for r in result]


# Entry and lines in one round trip and without a savepoint, through the PL/pgSQL function
# of migration 0003 (its plans are cached per session). With ``checked`` it also applies the
# checks that need the database (each line's account exists, is active and takes the line's
# currency; the entry date is after the lock date in force) in the inserting transaction.
_POST_ENTRY_SQL = (
    "SELECT ledger_post_entry(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    "%s::bigint[], %s::varchar[], %s::numeric[], %s::numeric[], %s::numeric[], "
    "%s::numeric[], %s::varchar[])"
)


def journal_post(
    *,
    lines: Sequence[LineSpec],
    entry_date: date,
    description: str = "",
    source: str = "",
    idempotency_key: str | None = None,
    actor: Any = None,
    reversal_of_id: int | None = None,
) -> JournalEntry:
    """Post one balanced entry, or raise a LedgerError and write nothing.

    With an ``idempotency_key``, a retry of the same entry returns the entry first posted;
    the same key with other content raises IdempotencyKeyReused.
    """
    spec = EntrySpec(
        lines=lines,
        entry_date=entry_date,
        description=description,
        source=source,
        idempotency_key=idempotency_key,
        reversal_of_id=reversal_of_id,
    )
    if connection.vendor == "postgresql":
        # One round trip when all is well: the checks that need the database run in the
        # inserting call. Anything else (a refusal, a retry) takes the path below,
        # which reads first and reports what is wrong.
        ctx = _Context((), checked_by_database=True)
        try:
            prepared = _prepare(spec, ctx)
        except DomainError:
            # Reported below, with the checks that come before it in ``_prepare``.
            entry = None
        else:
            entry = _insert_entry(prepared, ctx.functional, actor, checked=True)
        if entry is not None:
            return entry
    ctx = _Context(_account_id(line.account) for line in lines)
    prepared = _prepare(spec, ctx)
    if idempotency_key:
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, prepared)
    if connection.vendor == "postgresql":
        entry = _insert_entry(prepared, ctx.functional, actor, checked=False)
        if entry is not None:
            return entry
        # The key was taken by a posting that committed since the look-up above.
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise IntegrityError(f"Journal entry with key {idempotency_key!r} was not inserted.")
        return _replay(existing, prepared)
    with transaction.atomic():
        entry = _new_entry(prepared, ctx.functional, actor)
        if idempotency_key:
            try:
                with transaction.atomic():
                    entry.save(force_insert=True)
            except IntegrityError:
                existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
                if existing is None:
                    raise
                return _replay(existing, prepared)
        else:
            entry.save(force_insert=True)
        JournalLine.objects.bulk_create(_line_objects(entry.pk, prepared))
    return entry


def _new_entry(p: _Prepared, functional: str, actor: Any) -> JournalEntry:
    return JournalEntry(
        entry_date=p.spec.entry_date,
        description=p.spec.description[:500],
        source=p.spec.source,
        idempotency_key=p.spec.idempotency_key,
        reversal_of_id=p.spec.reversal_of_id,
        functional_currency=functional,
        created_by=actor if getattr(actor, "pk", None) else None,
        digest=p.digest,
    )


def _insert_entry(
    p: _Prepared, functional: str, actor: Any, *, checked: bool
) -> JournalEntry | None:
    """Insert the entry and its lines (PostgreSQL); None when the database checks fail
    (``checked``) or the idempotency key is already taken."""
    entry = _new_entry(p, functional, actor)
    account_ids, currencies, debits, credits, f_debits, f_credits, memos = zip(
        *p.lines, strict=True
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _POST_ENTRY_SQL,
            [
                checked,
                entry.entry_date,
                entry.description,
                entry.source,
                entry.idempotency_key,
                entry.reversal_of_id,
                functional,
                entry.created_by_id,
                entry.created_at,
                entry.digest,
                list(account_ids),
                list(currencies),
                list(debits),
                list(credits),
                list(f_debits),
                list(f_credits),
                [memo[:300] for memo in memos],
            ],
        )
        (entry_id,) = cursor.fetchone()
    if entry_id is None:
        return None
    entry.pk = entry_id
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


def _replay(existing: JournalEntry, prepared: _Prepared) -> JournalEntry:
    if existing.digest != prepared.digest:
        raise IdempotencyKeyReused(
            f"Idempotency key {existing.idempotency_key!r} was used for another entry "
            f"(JE-{existing.pk}).",
            entry=existing.pk,
        )
    return existing


def _line_objects(entry_id: int, prepared: _Prepared) -> list[JournalLine]:
    return [
        JournalLine(
            entry_id=entry_id,
            account_id=account_id,
            currency=currency,
            debit=debit,
            credit=credit,
            functional_debit=fd,
            functional_credit=fc,
            memo=memo[:300],
        )
        for account_id, currency, debit, credit, fd, fc, memo in prepared.lines
    ]


def journal_post_batch(*, entries: Sequence[EntrySpec], actor: Any = None) -> list[JournalEntry]:
    """Post many balanced entries in one transaction: all or none.

    The path the billing run uses. Every entry is checked as ``journal_post`` checks it (a
    refusal names the entry: "Batch entry 3 (key 'invoice:42'): ...");
    entries whose idempotency key is already posted (or repeated within the batch) are
    returned as first posted instead of being posted again. On PostgreSQL rows go in through
    COPY; the database trigger still checks every entry at commit.
    """
    if not entries:
        return []
    ctx = _Context(_account_id(line.account) for spec in entries for line in spec.lines)
    prepared = []
    for index, spec in enumerate(entries):
        try:
            prepared.append(_prepare(spec, ctx))
        except DomainError as exc:
            raise _naming_entry(exc, index, spec) from None
    keys = [p.spec.idempotency_key for p in prepared if p.spec.idempotency_key]
    existing = _existing_entries(keys) if keys else {}
    # For each prepared entry: the entry already posted, or its index in ``new``.
    plan: list[JournalEntry | int] = []
    new: list[_Prepared] = []
    seen: dict[str, int] = {}
    for p in prepared:
        key = p.spec.idempotency_key
        if key and key in existing:
            plan.append(_replay(existing[key], p))
        elif key and key in seen:
            if new[seen[key]].digest != p.digest:
                raise IdempotencyKeyReused(f"Idempotency key {key!r} is repeated in the batch.")
            plan.append(seen[key])
        else:
            if key:
                seen[key] = len(new)
            plan.append(len(new))
            new.append(p)
    created_by_id = actor.pk if getattr(actor, "pk", None) else None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            created = _copy_entries(new, ctx.functional, created_by_id)
        else:
            created = _bulk_entries(new, ctx.functional, created_by_id)
    return [created[item] if isinstance(item, int) else item for item in plan]


def _naming_entry(exc: DomainError, index: int, spec: EntrySpec) -> DomainError:
    """The refusal of one entry of a batch, its message prefixed with which entry it was."""
    name = f"key {spec.idempotency_key!r}" if spec.idempotency_key else f"source {spec.source!r}"
    exc.message = f"Batch entry {index + 1} ({name}): {exc.message}"
    exc.args = (exc.message,)
    exc.details.setdefault("batch_index", index)
    return exc


def _existing_entries(keys: list[str]) -> dict[str, JournalEntry]:
    """The entries already posted under any of ``keys``, by key."""
    if connection.vendor == "postgresql":
        # One array parameter: an IN list of a thousand keys costs more to send and plan
        # than the look-up itself, and the usual answer is "none".
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT idempotency_key FROM ledger_journalentry "
                "WHERE idempotency_key = ANY(%s::varchar[])",
                [keys],
            )
            keys = [row[0] for row in cursor.fetchall()]
        if not keys:
            return {}
    return {
        e.idempotency_key: e
        for e in JournalEntry.objects.filter(idempotency_key__in=keys)
        if e.idempotency_key is not None  # always: the filter is on the key
    }


def _entry_object(p: _Prepared, functional: str, created_by_id: int | None) -> JournalEntry:
    return JournalEntry(
        entry_date=p.spec.entry_date,
        description=p.spec.description[:500],
        source=p.spec.source,
        idempotency_key=p.spec.idempotency_key,
        reversal_of_id=p.spec.reversal_of_id,
        functional_currency=functional,
        created_by_id=created_by_id,
        digest=p.digest,
    )


def _bulk_entries(
    new: list[_Prepared], functional: str, created_by_id: int | None
) -> list[JournalEntry]:
    entries = JournalEntry.objects.bulk_create(
        [_entry_object(p, functional, created_by_id) for p in new]
    )
    JournalLine.objects.bulk_create(
        [line for e, p in zip(entries, new, strict=True) for line in _line_objects(e.pk, p)]
    )
    return entries


# The COPY column order, which is also the order of JournalEntry's concrete fields
# (what Model.from_db takes).
_ENTRY_COLUMNS = (
    "id",
    "entry_date",
    "description",
    "source",
    "idempotency_key",
    "reversal_of_id",
    "functional_currency",
    "created_by_id",
    "created_at",
    "digest",
)
_COPY_ENTRIES = f"COPY ledger_journalentry ({', '.join(_ENTRY_COLUMNS)}) FROM STDIN"
_COPY_LINES = (
    "COPY ledger_journalline (entry_id, account_id, currency, debit, credit, "
    "functional_debit, functional_credit, memo) FROM STDIN"
)


def _copy_entries(
    new: list[_Prepared], functional: str, created_by_id: int | None
) -> list[JournalEntry]:
    if not new:
        return []
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('ledger_journalentry', 'id')) "
            "FROM generate_series(1, %s)",
            [len(new)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        rows = [
            (
                entry_id,
                p.spec.entry_date,
                p.spec.description[:500],
                p.spec.source,
                p.spec.idempotency_key,
                p.spec.reversal_of_id,
                functional,
                created_by_id,
                now,
                p.digest,
            )
            for entry_id, p in zip(ids, new, strict=True)
        ]
        # Text COPY: psycopg formats Decimal as text faster than as binary numeric.
        with cursor.copy(_COPY_ENTRIES) as copy:
            for row in rows:
                copy.write_row(row)
        with cursor.copy(_COPY_LINES) as copy:
            for entry_id, p in zip(ids, new, strict=True):
                for account_id, currency, debit, credit, fd, fc, memo in p.lines:
                    copy.write_row(
                        (entry_id, account_id, currency, debit, credit, fd, fc, memo[:300])
                    )
    return [JournalEntry.from_db(connection.alias, _ENTRY_COLUMNS, row) for row in rows]


ACCOUNT_EDITABLE = ("name", "description", "is_active")


def account_save(*, account: Account, actor: Any) -> Account:
    """Create an account, or save the fields that may change after creation.

    Code, type, role and currency are fixed once an account exists (postings and the
    domains depend on them); only name, description and the active flag change.
    """
    adding = account._state.adding
    perm = "ledger.add_account" if adding else "ledger.change_account"
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError("You may not change the chart of accounts.")
    if account.currency:
        minor_unit_exponent(account.currency)
    with transaction.atomic():
        if adding:
            account.save(force_insert=True)
        else:
            account.save(update_fields=ACCOUNT_EDITABLE)
    return account


def journal_reverse(
    *,
    entry_id: int,
    actor: Any,
    reason: str,
    entry_date: date | None = None,
    authorized_by_caller: bool = False,
) -> JournalEntry:
    """Post the mirror image of an entry (debits become credits at the same functional
    values), dated ``entry_date`` (today by default). An entry is reversed at most once.

    An entry whose source is a document is refused (``document_entry``, naming the
    document's route) unless its domain service reverses it with ``authorized_by_caller``."""
    if not authorized_by_caller and (
        actor is None or not actor.has_perm("ledger.reverse_journalentry")
    ):
        # Domain services that reverse their own postings (an invoice void) check their own
        # permission and say so with ``authorized_by_caller``.
        raise PermissionDeniedError("You may not reverse journal entries.")
    if not authorized_by_caller:
        # An entry a document posted is undone by the document's own operation (an invoice
        # void), which sets the document right too; the domain services pass
        # ``authorized_by_caller``.
        source = JournalEntry.objects.filter(pk=entry_id).values_list("source", flat=True).first()
        document = document_of(source) if source is not None else None
        if document is not None:
            raise DocumentEntry(
                document.describe(entry_id),
                entry=f"JE-{entry_id}",
                document=document.source,
            )
    if not reason.strip():
        raise DomainError("A reversal needs a reason.", code="reason_required", field="reason")
    with transaction.atomic():
        original = (
            JournalEntry.objects.select_for_update(of=("self",))
            .prefetch_related("lines")
            .get(pk=entry_id)
        )
        if original.reversal_of_id is not None:
            raise DomainError(
                f"JE-{original.pk} is itself a reversal; post the original entry again instead.",
                code="reversal_of_reversal",
            )
        if JournalEntry.objects.filter(reversal_of_id=original.pk).exists():
            raise AlreadyReversed(f"JE-{original.pk} has already been reversed.")
        lines = [
            LineSpec(
                account=line.account_id,
                currency=line.currency,
                debit=line.credit,
                credit=line.debit,
                functional=line.functional_credit or line.functional_debit,
                memo=line.memo,
                side=""
                if line.debit or line.credit
                else ("debit" if line.functional_credit else "credit"),
            )
            for line in original.lines.all()
        ]
        return journal_post(
            lines=lines,
            entry_date=entry_date or timezone.localdate(),
            description=f"Reversal of JE-{original.pk}: {reason}",
            source=original.source,
            idempotency_key=f"reversal:{original.pk}",
            actor=actor,
            reversal_of_id=original.pk,
        )


def period_lock_set(*, lock_date: date, reason: str, actor: Any) -> PeriodLock:
    """Close the books through ``lock_date`` (or reopen them to an earlier date)."""
    if actor is None or not actor.has_perm("ledger.add_periodlock"):
        raise PermissionDeniedError("You may not close or reopen accounting periods.")
    if not reason.strip():
        raise DomainError("Closing or reopening a period needs a reason.", code="reason_required")
    return PeriodLock.objects.create(lock_date=lock_date, reason=reason, created_by=actor)


def account_lock_set(
    *, account: Account, lock_date: date, reason: str, actor: Any, currency: str = ""
) -> PeriodLock:
    """Close one account (in one ``currency``, or all) through ``lock_date``, or reopen it
    to an earlier date: postings to it dated on or before are refused for everyone, as for
    the whole books.

    The caller checks who may (a bank reconciliation's sign-off checks its own permission).
    """
    if not reason.strip():
        raise DomainError("Closing or reopening a period needs a reason.", code="reason_required")
    return PeriodLock.objects.create(
        account=account,
        currency=currency,
        lock_date=lock_date,
        reason=reason[:300],
        created_by=actor if getattr(actor, "pk", None) else None,
    )
