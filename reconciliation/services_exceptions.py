"""The reconciliation exceptions queue: raising an exception (once per problem) and clearing
it when the problem goes away; the daily detection; a person's assign, resolve and reopen;
and the exception report (CSV and PDF) shared by the API and the admin.

Other parts (payouts, feeds, matching) report through ``exception_raise`` and
``exception_clear``.

Detection rules (``exceptions_detect``), each a handful of set-based queries:

- unmatched line: a line still unmatched or only suggested more than
  ``RECONCILIATION_UNMATCHED_DAYS`` calendar days after its booking date; cleared when the
  line is matched or excluded;
- amount difference: a proposed or applied match whose lines' total (in absolute value)
  differs from its targets' total, or a proposed match of the "reference, other amount" rule
  whose line differs from what its invoices have due; cleared when the difference is gone
  (the match was rejected, undone, or the figures agree);
- suspected duplicate: lines of one bank account, not excluded, with the same amount,
  booking date, and normalised counterparty name and description (letters and digits, upper
  case; at least one of the two not empty); each later line is paired with the earliest of
  its group; cleared when either line is excluded;
- sequence gap: per bank account, end-of-day statements (not interim reports, notifications
  or feed syncs) with a closing date, in closing-date order; a statement is reported when
  its opening balance differs from the previous closing balance, when its statement number
  (the number before an optional "/page") is neither the previous one nor the next (a
  restart at 1 in a new year is fine), or when its opening date is later than the first
  business day (Monday to Friday; no holiday calendar) after the previous closing date;
- payout mismatch: a payout in status "exception" without an exception yet (the payouts
  import raises and clears these itself; detection only fills a missing one); cleared when
  the payout is no longer in status "exception".

An exception a person resolved stays resolved on the next detection unless its figures
(amount, difference) changed; one the system cleared opens again when its problem is back.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Abs, Cast, Coalesce, Concat, Lag, Trim, Upper
from django.template.loader import render_to_string
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from core.events.services import EventInput, events_emit
from core.exceptions import Conflict, DomainError, NotFound
from core.money import minor_unit_exponent, round_money
from core.spreadsheet import dict_csv_writer
from reconciliation.actors import permission_check
from reconciliation.audit import audit_record
from reconciliation.enums import (
    AuditAction,
    ExceptionKind,
    ExceptionStatus,
    MatchStatus,
    MatchTargetKind,
    PayoutStatus,
    StatementFormatChoice,
    StatementLineStatus,
)
from reconciliation.exceptions import ReconciliationError
from reconciliation.matching import C_REFERENCE_OTHER_AMOUNT
from reconciliation.models import (
    Match,
    MatchLine,
    MatchTarget,
    Payout,
    PayoutItem,
    ReconciliationException,
    Statement,
    StatementLine,
)
from reconciliation.selectors import exception_list

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


def exception_raise(
    *,
    kind: ExceptionKind | str,
    key: str,
    message: str,
    bank_account_id: int | None = None,
    statement_id: int | None = None,
    line_id: int | None = None,
    other_line_id: int | None = None,
    payout_id: int | None = None,
    match_id: int | None = None,
    amount: Decimal | None = None,
    difference: Decimal | None = None,
    currency: str = "",
) -> ReconciliationException:
    """Record a problem once: ``key`` names it ("payout_mismatch:po_123"). Raising it again
    while open refreshes the message and figures; a resolved one stays resolved (a person
    decided about it), unless its figures changed, when it opens again."""
    fields: dict[str, Any] = {
        "kind": kind,
        "message": message,
        "bank_account_id": bank_account_id,
        "statement_id": statement_id,
        "line_id": line_id,
        "other_line_id": other_line_id,
        "payout_id": payout_id,
        "match_id": match_id,
        "amount": amount,
        "difference": difference,
        "currency": currency,
    }
    existing = ReconciliationException.objects.select_for_update().filter(key=key).first()
    if existing is None:
        created = ReconciliationException.objects.create(key=key, **fields)
        events_emit([_opened_event(created)])
        return created
    changed = existing.amount != amount or existing.difference != difference
    if existing.status == ExceptionStatus.RESOLVED and not changed:
        return existing
    for name, value in fields.items():
        setattr(existing, name, value)
    if existing.status == ExceptionStatus.RESOLVED:
        events_emit([_opened_event(existing)])
        existing.status = ExceptionStatus.OPEN
        existing.resolved_at = None
        existing.resolved_by = None
        existing.resolution_note = ""
        existing.detected_at = timezone.now()
    existing.save()
    return existing


def exception_clear(*, key: str, note: str, actor: Any = None) -> ReconciliationException | None:
    """The problem went away (the line was matched, the payout adds up): an open exception
    is resolved with ``note``; None when there was none open."""
    existing = (
        ReconciliationException.objects.select_for_update()
        .filter(key=key, status=ExceptionStatus.OPEN)
        .first()
    )
    if existing is None:
        return None
    existing.status = ExceptionStatus.RESOLVED
    existing.resolved_at = timezone.now()
    existing.resolved_by = actor if getattr(actor, "pk", None) else None
    existing.resolution_note = note
    existing.save()
    return existing


RESOLVE = "reconciliation.resolve_exception"
DETECTED_KINDS = (
    ExceptionKind.UNMATCHED_LINE,
    ExceptionKind.AMOUNT_DIFFERENCE,
    ExceptionKind.SUSPECTED_DUPLICATE,
    ExceptionKind.SEQUENCE_GAP,
    ExceptionKind.PAYOUT_MISMATCH,
)
# End-of-day statements follow one another; interim reports (MT942, camt.052), notifications
# (camt.054) and feed syncs have no sequence of balances to check.
SEQUENCED_FORMATS = (
    StatementFormatChoice.MT940,
    StatementFormatChoice.CAMT053,
    StatementFormatChoice.OFX,
    StatementFormatChoice.BAI2,
    StatementFormatChoice.CSV,
)
_CHUNK = 1000
# One detection at a time (a redelivered task waits for the running one): a PostgreSQL
# transaction-level advisory lock with this id.
_DETECT_LOCK_ID = 7_310_202_601
_FIELDS = (
    "kind",
    "message",
    "bank_account_id",
    "statement_id",
    "line_id",
    "other_line_id",
    "payout_id",
    "match_id",
    "amount",
    "difference",
    "currency",
)
_LIVE_MATCH = (MatchStatus.PROPOSED, MatchStatus.APPLIED)
_AMOUNT: DecimalField[Decimal, Decimal] = DecimalField(max_digits=19, decimal_places=4)


@dataclass(frozen=True, slots=True)
class _Problem:
    kind: str
    key: str
    message: str
    bank_account_id: int | None = None
    statement_id: int | None = None
    line_id: int | None = None
    other_line_id: int | None = None
    payout_id: int | None = None
    match_id: int | None = None
    amount: Decimal | None = None
    difference: Decimal | None = None
    currency: str = ""

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


@dataclass(slots=True)
class DetectResult:
    """Per kind: exceptions opened (new, or open again), cleared, and open after the run."""

    opened: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    open: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"opened": self.opened, "cleared": self.cleared, "open": self.open}


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fmt(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return ""
    try:
        return f"{round_money(amount, currency):,} {currency}"
    except DomainError:  # an unknown currency code: the stored figure
        return f"{amount} {currency}".strip()


def _scoped(qs: QuerySet[Any], bank_account_id: int | None, name: str = "bank_account_id") -> Any:
    return qs if bank_account_id is None else qs.filter(**{name: bank_account_id})


def _keyed(prefix: str, outer: str) -> Any:
    """``"<prefix><outer id>"``, the key of the exception about the outer row."""
    return Concat(Value(prefix), Cast(OuterRef(outer), output_field=CharField()))


# --- recording --------------------------------------------------------------------------------


def _refresh(existing: ReconciliationException, problem: _Problem) -> bool:
    """Bring an existing exception up to date with its problem; True when it opened again.
    Written only when something changed (no history row per day for nothing)."""
    values = problem.fields()
    changed = any(getattr(existing, name) != value for name, value in values.items())
    if existing.status == ExceptionStatus.OPEN:
        if changed:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
        return False
    figures_changed = existing.amount != problem.amount or existing.difference != problem.difference
    # A person's decision stands while the figures it was about stand; a clearing by the
    # system (no one resolved it) does not when the problem is back.
    if existing.resolved_by_id is not None and not figures_changed:
        return False
    for name, value in values.items():
        setattr(existing, name, value)
    existing.status = ExceptionStatus.OPEN
    existing.resolved_at = None
    existing.resolved_by = None
    existing.resolution_note = ""
    existing.detected_at = timezone.now()
    existing.save()
    return True


def _record(problems: Sequence[_Problem]) -> int:
    """Raise many problems at once, with ``exception_raise``'s rules (see ``_refresh``):
    existing ones are read by key in chunks, new ones created in bulk with their history."""
    opened = 0
    for chunk in _chunks(problems):
        existing = {
            e.key: e
            for e in ReconciliationException.objects.select_for_update().filter(
                key__in=[p.key for p in chunk]
            )
        }
        new = []
        reopened = []
        for problem in chunk:
            current = existing.get(problem.key)
            if current is None:
                new.append(ReconciliationException(key=problem.key, **problem.fields()))
            elif _refresh(current, problem):
                reopened.append(current)
        if new:
            new = bulk_create_with_history(new, ReconciliationException, batch_size=500)
        opened += len(new) + len(reopened)
        events_emit([_opened_event(e) for e in [*new, *reopened]])
    return opened


def _opened_event(exc: ReconciliationException) -> EventInput:
    """``reconciliation.exception_opened``: found, or back after it was resolved."""
    return EventInput(
        type="reconciliation.exception_opened",
        object_type="reconciliation_exception",
        object_id=exc.key,
        data={
            "id": exc.pk,
            "key": exc.key,
            "kind": exc.kind,
            "bank_account": exc.bank_account_id,
            "amount": exc.amount,
            "difference": exc.difference,
            "currency": exc.currency,
            "message": exc.message,
        },
    )


def _clear_each(qs: QuerySet[ReconciliationException], note: Any) -> int:
    """Clear the open exceptions of ``qs``; ``note(exception)`` says why."""
    cleared = 0
    for exc in qs.filter(status=ExceptionStatus.OPEN).order_by("pk"):
        if exception_clear(key=exc.key, note=note(exc)) is not None:
            cleared += 1
    return cleared


def _of_kind(kind: str, bank_account_id: int | None) -> QuerySet[ReconciliationException]:
    qs: QuerySet[ReconciliationException] = _scoped(
        ReconciliationException.objects.filter(kind=kind), bank_account_id
    )
    return qs


# --- detection --------------------------------------------------------------------------------


def _detect_unmatched_lines(bank_account_id: int | None, today: date) -> tuple[int, int]:
    days = int(settings.RECONCILIATION_UNMATCHED_DAYS)
    kind = ExceptionKind.UNMATCHED_LINE
    waiting = (StatementLineStatus.UNMATCHED, StatementLineStatus.SUGGESTED)
    # Lines already reported (open, or decided by a person) are left out in the query.
    reported = ReconciliationException.objects.filter(key=_keyed(f"{kind}:", "pk")).filter(
        Q(status=ExceptionStatus.OPEN) | Q(resolved_by__isnull=False)
    )
    rows = (
        _scoped(StatementLine.objects.all(), bank_account_id)
        .filter(status__in=waiting, booking_date__lt=today - timedelta(days=days))
        .exclude(Exists(reported))
        .order_by("pk")
        .values_list(
            "pk",
            "bank_account_id",
            "statement_id",
            "booking_date",
            "amount",
            "currency",
            "counterparty_name",
            "description",
        )
    )
    problems = [
        _Problem(
            kind=kind,
            key=f"{kind}:{pk}",
            message=(
                f"Bank line {pk} of {booked} ({_fmt(amount, currency)}"
                f"{', ' + (name or text)[:80] if (name or text) else ''}) is not matched "
                f"more than {days} days after its booking date."
            ),
            bank_account_id=account_id,
            statement_id=statement_id,
            line_id=pk,
            amount=amount,
            currency=currency,
        )
        for pk, account_id, statement_id, booked, amount, currency, name, text in rows.iterator(
            chunk_size=2000
        )
    ]
    opened = _record(problems)
    cleared = _clear_each(
        _of_kind(kind, bank_account_id).filter(
            line__status__in=(StatementLineStatus.MATCHED, StatementLineStatus.EXCLUDED)
        ),
        lambda exc: f"The line was {exc.line.status} (found by the daily detection).",
    )
    return opened, cleared


class _MatchDifference(TypedDict):
    """The annotations of ``_match_differences``."""

    lines_total: Decimal
    targets_total: Decimal
    due_total: Decimal | None
    first_line: int | None
    difference: Decimal


def _match_differences(
    bank_account_id: int | None,
) -> QuerySet[WithAnnotations[Match, _MatchDifference]]:
    def total(model: Any, expression: Any, **filters: Any) -> Subquery:
        return Subquery(
            model.objects.filter(match=OuterRef("pk"), **filters)
            .order_by()
            .values("match")
            .annotate(t=Sum(expression, output_field=_AMOUNT))
            .values("t")[:1],
            output_field=_AMOUNT,
        )

    due = F("invoice__total") - F("invoice__amount_paid") - F("invoice__amount_credited")
    other_amount = Q(rule="reference_other_amount") | Q(
        rule="reference", confidence=C_REFERENCE_OTHER_AMOUNT
    )
    zero = Value(Decimal(0), output_field=_AMOUNT)
    qs: QuerySet[WithAnnotations[Match, _MatchDifference]] = (
        _scoped(Match.objects.filter(status__in=_LIVE_MATCH), bank_account_id)
        .annotate(
            lines_total=Abs(Coalesce(total(MatchLine, "amount"), zero)),
            targets_total=Coalesce(total(MatchTarget, "amount"), zero),
            due_total=total(MatchTarget, due, kind=MatchTargetKind.INVOICE),
            first_line=Subquery(
                MatchLine.objects.filter(match=OuterRef("pk"))
                .order_by("line_id")
                .values("line_id")[:1]
            ),
        )
        .annotate(
            difference=Case(
                When(
                    ~Q(lines_total=F("targets_total")), then=F("lines_total") - F("targets_total")
                ),
                When(
                    other_amount & Q(status=MatchStatus.PROPOSED, due_total__isnull=False),
                    then=F("lines_total") - F("due_total"),
                ),
                default=None,
                output_field=_AMOUNT,
            )
        )
        .filter(difference__isnull=False)
        .exclude(difference=0)
    )
    return qs


def _detect_amount_differences(bank_account_id: int | None) -> tuple[int, int]:
    kind = ExceptionKind.AMOUNT_DIFFERENCE
    problems = []
    found = set()
    for match in _match_differences(bank_account_id).order_by("pk").iterator(chunk_size=2000):
        key = f"{kind}:match:{match.pk}"
        found.add(match.pk)
        against = (
            "its targets"
            if match.lines_total != match.targets_total
            else "what its invoices have due"
        )
        problems.append(
            _Problem(
                kind=kind,
                key=key,
                message=(
                    f"Match {match.pk} ({match.status}, rule {match.rule}): its bank lines "
                    f"total {_fmt(match.lines_total, match.currency)}, "
                    f"{_fmt(abs(match.difference), match.currency)} "
                    f"{'more' if match.difference > 0 else 'less'} than {against}."
                ),
                bank_account_id=match.bank_account_id,
                line_id=match.first_line,
                match_id=match.pk,
                amount=match.lines_total,
                difference=match.difference,
                currency=match.currency,
            )
        )
    opened = _record(problems)
    gone = _of_kind(kind, bank_account_id).filter(match__isnull=False).exclude(match_id__in=found)
    cleared = _clear_each(
        gone.select_related("match"),
        lambda exc: (
            f"The match was {exc.match.status}."
            if exc.match.status not in _LIVE_MATCH
            else "The lines and targets agree now."
        ),
    )
    return opened, cleared


def _normalised(name: str) -> Any:
    """Upper case, letters and digits only (PostgreSQL); upper case and trimmed elsewhere."""
    if connection.vendor == "postgresql":
        return Func(
            Upper(name),
            Value("[^A-Z0-9]+"),
            Value(""),
            Value("g"),
            function="REGEXP_REPLACE",
            output_field=CharField(),
        )
    return Upper(Trim(name))


def _detect_duplicates(bank_account_id: int | None) -> tuple[int, int]:
    kind = ExceptionKind.SUSPECTED_DUPLICATE
    group = [
        F("bank_account_id"),
        F("amount"),
        F("booking_date"),
        F("norm_name"),
        F("norm_text"),
    ]
    rows = (
        _scoped(StatementLine.objects.all(), bank_account_id)
        .exclude(status=StatementLineStatus.EXCLUDED)
        .annotate(norm_name=_normalised("counterparty_name"), norm_text=_normalised("description"))
        .exclude(norm_name="", norm_text="")
        .annotate(
            group_size=Window(Count("pk"), partition_by=group),
        )
        .filter(group_size__gt=1)
        .order_by("bank_account_id", "amount", "booking_date", "norm_name", "norm_text", "pk")
        .values_list(
            "pk",
            "bank_account_id",
            "statement_id",
            "amount",
            "currency",
            "booking_date",
            "counterparty_name",
            "description",
            "norm_name",
            "norm_text",
        )
    )
    problems = []
    first: tuple[Any, ...] | None = None
    for row in rows.iterator(chunk_size=2000):
        pk, account_id, statement_id, amount, currency, booked, name, text, n1, n2 = row
        signature = (account_id, amount, booked, n1, n2)
        if first is None or first[0] != signature:
            first = (signature, pk)
            continue
        earliest = first[1]
        problems.append(
            _Problem(
                kind=kind,
                key=f"{kind}:{earliest}:{pk}",
                message=(
                    f"Bank lines {earliest} and {pk} have the same amount "
                    f"({_fmt(amount, currency)}), booking date ({booked}) and text "
                    f"({(name or text)[:80]})."
                ),
                bank_account_id=account_id,
                statement_id=statement_id,
                line_id=earliest,
                other_line_id=pk,
                amount=amount,
                currency=currency,
            )
        )
    opened = _record(problems)
    excluded = StatementLineStatus.EXCLUDED
    cleared = _clear_each(
        _of_kind(kind, bank_account_id)
        .filter(Q(line__status=excluded) | Q(other_line__status=excluded))
        .select_related("line"),
        lambda exc: (
            f"Line {exc.line_id if exc.line.status == excluded else exc.other_line_id} "
            "was excluded."
        ),
    )
    return opened, cleared


def _statement_number(sequence: str) -> int | None:
    """The statement number of "5", "00005" or "5/1" (number/page); None when not numeric."""
    found = re.fullmatch(r"\s*(\d{1,9})(?:/\d{1,5})?\s*", sequence or "")
    return int(found.group(1)) if found else None


def _next_business_day(day: date) -> date:
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def _gap_reasons(row: Mapping[str, Any]) -> list[str]:
    reasons = []
    opening, previous_closing = row["opening_balance"], row["prev_closing_balance"]
    if opening is not None and previous_closing is not None and opening != previous_closing:
        reasons.append(
            f"its opening balance {_fmt(opening, row['currency'])} differs from the previous "
            f"closing balance {_fmt(previous_closing, row['currency'])}"
        )
    number, previous = _statement_number(row["sequence"]), _statement_number(row["prev_sequence"])
    if number is not None and previous is not None and number not in (previous, previous + 1):
        restart = number == 1 and row["closing_date"].year != row["prev_closing_date"].year
        if not restart:
            reasons.append(f"its number {row['sequence']} does not follow {row['prev_sequence']}")
    opened, closed = row["opening_date"], row["prev_closing_date"]
    if opened is not None and opened > _next_business_day(closed):
        reasons.append(
            f"the days from {closed + timedelta(days=1)} to {opened - timedelta(days=1)} "
            "are in no statement"
        )
    return reasons


def _detect_sequence_gaps(bank_account_id: int | None) -> tuple[int, int]:
    kind = ExceptionKind.SEQUENCE_GAP
    window: dict[str, Any] = {
        "partition_by": [F("bank_account_id")],
        "order_by": [F("closing_date"), F("pk")],
    }
    rows = (
        _scoped(
            Statement.objects.filter(format__in=SEQUENCED_FORMATS, closing_date__isnull=False),
            bank_account_id,
        )
        .annotate(
            prev_id=Window(Lag("pk"), **window),
            prev_sequence=Window(Lag("sequence"), **window),
            prev_closing_balance=Window(Lag("closing_balance"), **window),
            prev_closing_date=Window(Lag("closing_date"), **window),
        )
        .filter(prev_id__isnull=False)
        .order_by("bank_account_id", "closing_date", "pk")
        .values(
            "pk",
            "bank_account_id",
            "statement_id",
            "currency",
            "sequence",
            "opening_balance",
            "opening_date",
            "closing_date",
            "prev_id",
            "prev_sequence",
            "prev_closing_balance",
            "prev_closing_date",
        )
    )
    problems = []
    for row in rows.iterator(chunk_size=2000):
        reasons = _gap_reasons(row)
        if not reasons:
            continue
        difference = None
        if row["opening_balance"] is not None and row["prev_closing_balance"] is not None:
            difference = row["opening_balance"] - row["prev_closing_balance"]
        name = row["statement_id"] or row["pk"]
        problems.append(
            _Problem(
                kind=kind,
                key=f"{kind}:{row['pk']}",
                message=(
                    f"Statement {name} (closing {row['closing_date']}) after statement "
                    f"{row['prev_id']} (closing {row['prev_closing_date']}): "
                    + "; ".join(reasons)
                    + "."
                ),
                bank_account_id=row["bank_account_id"],
                statement_id=row["pk"],
                amount=row["opening_balance"],
                difference=difference or None,
                currency=row["currency"],
            )
        )
    opened = _record(problems)
    found = {p.statement_id for p in problems}
    cleared = _clear_each(
        _of_kind(kind, bank_account_id)
        .filter(statement__isnull=False)
        .exclude(statement_id__in=found),
        lambda exc: "The statements follow one another now (the missing one was imported).",
    )
    return opened, cleared


def _detect_payouts(bank_account_id: int | None) -> tuple[int, int]:
    kind = ExceptionKind.PAYOUT_MISMATCH
    reported = ReconciliationException.objects.filter(
        key=Concat(Value(f"{kind}:"), OuterRef("external_id"), output_field=CharField())
    )
    net = Subquery(
        PayoutItem.objects.filter(payout=OuterRef("pk"), currency=OuterRef("currency"))
        .order_by()
        .values("payout")
        .annotate(t=Sum("net"))
        .values("t")[:1],
        output_field=_AMOUNT,
    )
    payouts = (
        _scoped(Payout.objects.filter(status=PayoutStatus.EXCEPTION), bank_account_id)
        .exclude(Exists(reported))
        .annotate(net=net)
        .order_by("pk")
    )
    problems = [
        _Problem(
            kind=kind,
            key=f"{kind}:{p.external_id}",
            message=p.problem
            or f"Payout {p.external_id} of {_fmt(p.amount, p.currency)} does not add up.",
            bank_account_id=p.bank_account_id,
            line_id=p.statement_line_id,
            payout_id=p.pk,
            amount=p.amount,
            difference=None if p.net is None else p.net - p.amount,
            currency=p.currency,
        )
        for p in payouts
    ]
    opened = _record(problems)
    cleared = _clear_each(
        _of_kind(kind, bank_account_id)
        .filter(payout__isnull=False)
        .exclude(payout__status=PayoutStatus.EXCEPTION)
        .select_related("payout"),
        lambda exc: f"The payout is {exc.payout.get_status_display().lower()} now.",
    )
    return opened, cleared


def exceptions_detect(
    *, bank_account_id: int | None = None, today: date | None = None
) -> DetectResult:
    """Find today's problems (see the module docstring for the rules) and record each once;
    clear those that went away. Safe to run again: one run at a time, nothing is raised
    twice, and unchanged exceptions are not written."""
    today = today or timezone.localdate()
    result = DetectResult()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DETECT_LOCK_ID])
        steps: tuple[tuple[str, Callable[[], tuple[int, int]]], ...] = (
            (ExceptionKind.UNMATCHED_LINE, lambda: _detect_unmatched_lines(bank_account_id, today)),
            (ExceptionKind.AMOUNT_DIFFERENCE, lambda: _detect_amount_differences(bank_account_id)),
            (ExceptionKind.SUSPECTED_DUPLICATE, lambda: _detect_duplicates(bank_account_id)),
            (ExceptionKind.SEQUENCE_GAP, lambda: _detect_sequence_gaps(bank_account_id)),
            (ExceptionKind.PAYOUT_MISMATCH, lambda: _detect_payouts(bank_account_id)),
        )
        for kind, step in steps:
            result.opened[kind], result.cleared[kind] = step()
        counts = dict(
            _scoped(
                ReconciliationException.objects.filter(
                    status=ExceptionStatus.OPEN, kind__in=DETECTED_KINDS
                ),
                bank_account_id,
            )
            .order_by()
            .values_list("kind")
            .annotate(n=Count("pk"))
        )
        result.open = {str(kind): counts.get(kind, 0) for kind in DETECTED_KINDS}
    result.opened = {str(k): v for k, v in result.opened.items()}
    result.cleared = {str(k): v for k, v in result.cleared.items()}
    return result


# --- people's decisions -------------------------------------------------------------------------


def _locked(exception_id: int) -> ReconciliationException:
    exc = ReconciliationException.objects.select_for_update().filter(pk=exception_id).first()
    if exc is None:
        raise NotFound(f"No reconciliation exception {exception_id}.")
    return exc


def _audit(
    exc: ReconciliationException, action: AuditAction, actor: Any, reason: str, **details: Any
) -> None:
    audit_record(
        action=action,
        actor=actor,
        subject=exc,
        bank_account_id=exc.bank_account_id,
        reason=reason,
        details={"kind": exc.kind, "key": exc.key, **details},
    )


def exception_assign(
    *, exception_id: int, assignee_id: int | None, actor: Any
) -> ReconciliationException:
    """Give an open exception to someone who may resolve exceptions (None: to no one)."""
    permission_check(actor, RESOLVE, "working the exceptions queue", system_allowed=False)
    with transaction.atomic():
        exc = _locked(exception_id)
        if exc.status != ExceptionStatus.OPEN:
            raise Conflict(
                f"Exception {exc.pk} is resolved; reopen it before assigning it.",
                code="exception_not_open",
            )
        assignee = None
        if assignee_id is not None:
            assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first()
            if assignee is None:
                raise ReconciliationError(
                    f"No active user {assignee_id}.", code="assignee_not_found", field="assignee"
                )
            if not assignee.has_perm(RESOLVE):
                raise ReconciliationError(
                    f"{assignee.get_username()} may not resolve reconciliation exceptions.",
                    code="assignee_not_allowed",
                    field="assignee",
                )
        if exc.assignee_id == assignee_id:
            return exc
        previous = exc.assignee_id
        exc.assignee = assignee
        exc.assigned_at = timezone.now() if assignee is not None else None
        exc.save(update_fields=["assignee", "assigned_at"])
        _audit(
            exc,
            AuditAction.EXCEPTION_ASSIGNED,
            actor,
            "",
            assignee=assignee_id,
            assignee_username=assignee.get_username() if assignee is not None else "",
            previous_assignee=previous,
        )
    return exc


def exception_resolve(*, exception_id: int, note: str, actor: Any) -> ReconciliationException:
    """A person closes an open exception, saying how (the note is required and kept)."""
    permission_check(actor, RESOLVE, "resolving reconciliation exceptions", system_allowed=False)
    note = (note or "").strip()
    if not note:
        raise ReconciliationError(
            "Say how the exception was resolved.", code="note_required", field="note"
        )
    with transaction.atomic():
        exc = _locked(exception_id)
        if exc.status != ExceptionStatus.OPEN:
            raise Conflict(f"Exception {exc.pk} is resolved already.", code="exception_not_open")
        exc.status = ExceptionStatus.RESOLVED
        exc.resolved_at = timezone.now()
        exc.resolved_by = actor
        exc.resolution_note = note
        exc.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        _audit(exc, AuditAction.EXCEPTION_RESOLVED, actor, note)
    return exc


def exception_reopen(*, exception_id: int, reason: str, actor: Any) -> ReconciliationException:
    """Put a resolved exception back in the queue, saying why; the earlier resolution stays
    in its history and in the audit trail."""
    permission_check(actor, RESOLVE, "reopening reconciliation exceptions", system_allowed=False)
    reason = (reason or "").strip()
    if not reason:
        raise ReconciliationError("Say why.", code="reason_required", field="reason")
    with transaction.atomic():
        exc = _locked(exception_id)
        if exc.status != ExceptionStatus.RESOLVED:
            raise Conflict(f"Exception {exc.pk} is open already.", code="exception_not_resolved")
        previous = {
            "previous_note": exc.resolution_note,
            "previous_resolved_by": exc.resolved_by_id,
            "previous_resolved_at": exc.resolved_at.isoformat() if exc.resolved_at else None,
        }
        exc.status = ExceptionStatus.OPEN
        exc.resolved_at = None
        exc.resolved_by = None
        exc.resolution_note = ""
        exc.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        _audit(exc, AuditAction.EXCEPTION_REOPENED, actor, reason, **previous)
    return exc


# --- reading and the report ---------------------------------------------------------------------


REPORT_COLUMNS = (
    "id",
    "kind",
    "status",
    "bank_account",
    "detected_at",
    "age_days",
    "amount",
    "difference",
    "currency",
    "statement",
    "line",
    "other_line",
    "match",
    "payout",
    "message",
    "assignee",
    "assigned_at",
    "resolved_at",
    "resolved_by",
    "resolution_note",
)


def amount_text(amount: Decimal | None, currency: str) -> str:
    """The amount at its currency's minor unit, unless that would hide part of it."""
    if amount is None:
        return ""
    try:
        places = minor_unit_exponent(currency)
    except DomainError:  # an unknown currency code: the stored figure
        return str(amount)
    rounded = round_money(amount, currency)
    return f"{rounded:.{places}f}" if rounded == amount else str(amount.normalize())


def exception_age_days(exc: ReconciliationException, today: date | None = None) -> int:
    return ((today or timezone.localdate()) - timezone.localdate(exc.detected_at)).days


def exceptions_report_rows(
    filters: Mapping[str, Any], *, today: date | None = None
) -> list[dict[str, str]]:
    """The report's rows (``REPORT_COLUMNS``, as text) for ``exception_list`` filters; the
    CSV and the PDF both come from these."""
    today = today or timezone.localdate()

    def when(value: Any) -> str:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""

    def user(value: Any) -> str:
        return value.get_username() if value is not None else ""

    rows = []
    for exc in exception_list(**filters).iterator(chunk_size=2000):
        rows.append(
            {
                "id": str(exc.pk),
                "kind": exc.get_kind_display(),
                "status": exc.get_status_display(),
                "bank_account": str(exc.bank_account) if exc.bank_account_id else "",
                "detected_at": when(exc.detected_at),
                "age_days": str(exception_age_days(exc, today)),
                "amount": amount_text(exc.amount, exc.currency),
                "difference": amount_text(exc.difference, exc.currency),
                "currency": exc.currency,
                "statement": str(exc.statement_id or ""),
                "line": str(exc.line_id or ""),
                "other_line": str(exc.other_line_id or ""),
                "match": str(exc.match_id or ""),
                "payout": str(exc.payout_id or ""),
                "message": exc.message,
                "assignee": user(exc.assignee),
                "assigned_at": when(exc.assigned_at),
                "resolved_at": when(exc.resolved_at),
                "resolved_by": user(exc.resolved_by),
                "resolution_note": exc.resolution_note,
            }
        )
    return rows


def exceptions_report_csv(filters: Mapping[str, Any], *, today: date | None = None) -> bytes:
    out = io.StringIO()
    writer = dict_csv_writer(out, fieldnames=list(REPORT_COLUMNS))
    writer.writeheader()
    writer.writerows(exceptions_report_rows(filters, today=today))
    return out.getvalue().encode("utf-8")


def exceptions_report_pdf(
    filters: Mapping[str, Any], *, today: date | None = None, title_filters: str = ""
) -> bytes:
    """The report as a PDF (WeasyPrint, landscape), with counts per kind and status."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    rows = exceptions_report_rows(filters, today=today)
    counts = Counter((row["kind"], row["status"]) for row in rows)
    html = render_to_string(
        "reconciliation/exceptions_report.html",
        {
            "rows": rows,
            "counts": sorted(counts.items()),
            "generated_at": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            "filters": title_filters,
        },
    )
    document = HTML(
        string=html,
        base_url=str(settings.BASE_DIR),
        url_fetcher=URLFetcher(allowed_protocols=("data",)),
    )
    pdf: bytes = document.write_pdf()
    return pdf
