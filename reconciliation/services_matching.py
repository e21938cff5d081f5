"""Matching writes: load candidates in bulk, run the engine (``reconciliation.matching``),
store its proposals, apply the confident ones, and the people's decisions (accept, reject,
match by hand, undo) with what they teach the engine.

Applying a match to invoices records a payment through billing (which posts Dr cash / Cr AR);
a match to an existing payment or a payment run only links (already posted); a user rule
posts Dr/Cr between the bank's cash account and the rule's account. A statement line is in at
most one live (proposed or applied) match: a partial unique constraint on ``MatchLine``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.enums import InvoiceStatus, PaymentMethodType, PaymentStatus
from billing.models import Invoice, Payment
from billing.services.payment_reversal import payment_reverse
from billing.services.payments import (
    AllocationInput,
    BatchPaymentInput,
    payment_record,
    payments_record_batch,
)
from core.exceptions import DomainError, NotFound
from core.ledger.models import Account
from core.ledger.services import (
    EntrySpec,
    LineSpec,
    journal_post,
    journal_post_batch,
    journal_reverse,
)
from core.money import format_amount
from payables.enums import PaymentRunStatus
from payables.models import Bill, PaymentRun, PaymentRunItem
from reconciliation import matching
from reconciliation.actors import acting_user, permission_check
from reconciliation.audit import audit_record, audit_record_many
from reconciliation.enums import (
    AliasKind,
    AuditAction,
    MatchStatus,
    MatchTargetKind,
    ReconciliationRunStatus,
    StatementLineStatus,
)
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import (
    BankAccount,
    CounterpartyAlias,
    Match,
    MatchLine,
    MatchRule,
    MatchTarget,
    ReconciliationRun,
    StatementLine,
)
from reconciliation.services_close import ensure_not_signed_off, signed_off_through
from reconciliation.services_payouts import open_payouts_qs, payout_match_apply, payout_match_undo

ZERO = Decimal(0)
logger = logging.getLogger(__name__)
# Automatic matches applied per transaction by ``reconcile``.
APPLY_CHUNK = 1000
DECIDE = "reconciliation.decide_match"
START = "reconciliation.start_reconciliation"
# Existing payments older than this before the period are not candidates any more.
PAYMENT_LOOKBACK_DAYS = 90
RUN_LOOKBACK_DAYS = 60
LIVE = (MatchStatus.PROPOSED, MatchStatus.APPLIED)
_TARGET_FIELD = {
    MatchTargetKind.INVOICE: "invoice_id",
    MatchTargetKind.PAYMENT: "payment_id",
    MatchTargetKind.PAYMENT_RUN: "payment_run_id",
    MatchTargetKind.PAYMENT_RUN_ITEM: "payment_run_item_id",
    MatchTargetKind.ACCOUNT: "account_id",
    MatchTargetKind.PAYOUT: "payout_id",
}


# Targets already posted: applying them only links.
_LINK_KINDS = frozenset(
    {MatchTargetKind.PAYMENT, MatchTargetKind.PAYMENT_RUN, MatchTargetKind.PAYMENT_RUN_ITEM}
)


def auto_match_threshold() -> Decimal:
    return Decimal(str(settings.RECONCILIATION_AUTO_MATCH_THRESHOLD))


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    auto_matched: int
    suggested: int
    unmatched: int
    failed_to_apply: int


@dataclass(frozen=True, slots=True)
class Candidates:
    lines: list[matching.BankLine]
    invoices: list[matching.OpenInvoice]
    payments: list[matching.OpenPayment]
    runs: list[matching.OpenRun]
    rules: list[matching.Rule]
    aliases: list[matching.Alias]
    payouts: list[matching.OpenPayout] = field(default_factory=list)


# --- loading ------------------------------------------------------------------------------


def _lines_qs(account: BankAccount, period_start: date | None, period_end: date | None) -> Any:
    qs = StatementLine.objects.filter(
        bank_account=account, status=StatementLineStatus.UNMATCHED
    ).exclude(match_lines__is_live=True)
    if period_start:
        qs = qs.filter(booking_date__gte=period_start)
    if period_end:
        qs = qs.filter(booking_date__lte=period_end)
    return qs


def candidates_load(
    *, account: BankAccount, period_start: date | None = None, period_end: date | None = None
) -> Candidates:
    """Everything the engine needs, in a handful of queries (``values_list``, no models)."""
    currency = account.currency
    lines = [
        matching.BankLine(*row)
        for row in _lines_qs(account, period_start, period_end)
        .order_by("booking_date", "pk")
        .values_list(
            "pk",
            "amount",
            "currency",
            "booking_date",
            "description",
            "counterparty_name",
            "counterparty_account",
            "bank_reference",
            "end_to_end_id",
        )
    ]
    invoices = [
        matching.OpenInvoice(pk, number or "", cid, cname, cur, due, due_date or issue)
        for pk, number, cid, cname, cur, due, due_date, issue in Invoice.objects.filter(
            status=InvoiceStatus.OPEN, currency=currency
        )
        .annotate(due=F("total") - F("amount_paid") - F("amount_credited"))
        .filter(due__gt=0)
        .values_list(
            "pk",
            "number",
            "customer_id",
            "customer__name",
            "currency",
            "due",
            "due_date",
            "issue_date",
        )
    ]
    linked_payments = MatchTarget.objects.filter(
        kind=MatchTargetKind.PAYMENT, match__status__in=LIVE
    ).values("payment_id")
    recorded_by_matches = Match.objects.filter(payment__isnull=False).values("payment_id")
    payments_qs = (
        Payment.objects.filter(status=PaymentStatus.SUCCEEDED, currency=currency)
        .exclude(pk__in=linked_payments)
        .exclude(pk__in=recorded_by_matches)
    )
    if period_start:
        payments_qs = payments_qs.filter(
            received_date__gte=period_start - timedelta(days=PAYMENT_LOOKBACK_DAYS)
        )
    payments = [
        matching.OpenPayment(*row)
        for row in payments_qs.values_list(
            "pk",
            "reference",
            "customer_id",
            "customer__name",
            "currency",
            "amount",
            "received_date",
        )
    ]
    linked_runs = MatchTarget.objects.filter(
        kind=MatchTargetKind.PAYMENT_RUN, match__status__in=LIVE
    ).values("payment_run_id")
    linked_items = set(
        MatchTarget.objects.filter(
            kind=MatchTargetKind.PAYMENT_RUN_ITEM, match__status__in=LIVE
        ).values_list("payment_run_item_id", flat=True)
    )
    runs_qs = PaymentRun.objects.filter(
        currency=currency, status__in=(PaymentRunStatus.EXPORTED, PaymentRunStatus.PAID)
    ).exclude(pk__in=linked_runs)
    if period_start:
        runs_qs = runs_qs.filter(payment_date__gte=period_start - timedelta(days=RUN_LOOKBACK_DAYS))
    run_rows = list(runs_qs.values_list("pk", "number", "currency", "total", "payment_date"))
    items_by_run: dict[int, list[matching.RunItem]] = {pk: [] for pk, *_ in run_rows}
    for pk, run_id, e2e, amount, vendor_id, vendor_name in PaymentRunItem.objects.filter(
        run_id__in=list(items_by_run)
    ).values_list("pk", "run_id", "end_to_end_id", "amount", "vendor_id", "vendor__name"):
        if pk not in linked_items:
            items_by_run[run_id].append(matching.RunItem(pk, e2e, amount, vendor_id, vendor_name))
    runs = [
        matching.OpenRun(pk, number, cur, total, pdate, tuple(items_by_run[pk]))
        for pk, number, cur, total, pdate in run_rows
    ]
    rules = [
        matching.Rule(
            id=r.pk,
            priority=r.priority,
            account_id=r.account_id,
            name=r.name,
            text_contains=r.text_contains,
            counterparty_name_equals=r.counterparty_name_equals,
            counterparty_account_equals=r.counterparty_account_equals,
            amount_min=r.amount_min,
            amount_max=r.amount_max,
            sign=r.sign,
        )
        for r in MatchRule.objects.filter(is_active=True).filter(
            Q(bank_account__isnull=True) | Q(bank_account=account)
        )
    ]
    aliases = [
        matching.Alias(kind, key, customer_id, vendor_id, username or "someone", taught_at.date())
        for kind, key, customer_id, vendor_id, username, taught_at in (
            CounterpartyAlias.objects.values_list(
                "kind", "key", "customer_id", "vendor_id", "taught_by__username", "taught_at"
            )
        )
    ]
    # Card-processor payouts waiting for their deposit (services_payouts).
    payouts = [
        matching.OpenPayout(*row)
        for row in open_payouts_qs(account).values_list(
            "pk", "external_id", "currency", "amount", "arrival_date", "provider"
        )
    ]
    return Candidates(lines, invoices, payments, runs, rules, aliases, payouts)


# --- writing proposals ---------------------------------------------------------------------


def _rejected_pairs(line_ids: list[int]) -> set[tuple[int, str, int]]:
    """(line, target kind, target id) people rejected before: never proposed again."""
    rows = MatchLine.objects.filter(
        line_id__in=line_ids, match__status=MatchStatus.REJECTED
    ).values_list(
        "line_id",
        "match__targets__kind",
        "match__targets__invoice_id",
        "match__targets__payment_id",
        "match__targets__payment_run_id",
        "match__targets__payment_run_item_id",
        "match__targets__account_id",
        "match__targets__payout_id",
    )
    return {(row[0], row[1], next(x for x in row[2:] if x is not None)) for row in rows if row[1]}


def proposals_store(
    *,
    account: BankAccount,
    proposals: Sequence[matching.Proposal],
    run: ReconciliationRun | None = None,
    actor: Any = None,
) -> list[Match]:
    """Store proposals as matches in bulk (history rows included) and mark their lines
    suggested. Lines already in a live match make the unique constraint refuse the batch."""
    rejected = _rejected_pairs([i for p in proposals for i in p.line_ids]) if proposals else set()
    kept = [
        p
        for p in proposals
        if not any((i, t.kind, t.id) in rejected for i in p.line_ids for t in p.targets)
    ]
    now = timezone.now()
    matches = [
        Match(
            bank_account=account,
            run=run,
            status=MatchStatus.PROPOSED,
            confidence=p.confidence,
            rule=p.rule,
            match_rule_id=p.rule_id,
            reason=p.reason,
            amount=p.amount,
            currency=p.currency,
            created_at=now,
            created_by=acting_user(actor),
        )
        for p in kept
    ]
    Match.objects.bulk_create(matches, batch_size=2000)
    Match.history.bulk_history_create(matches, batch_size=2000, default_date=now)
    match_lines: list[MatchLine] = []
    targets: list[MatchTarget] = []
    amounts = (
        dict(
            StatementLine.objects.filter(pk__in=[i for p in kept for i in p.line_ids]).values_list(
                "pk", "amount"
            )
        )
        if any(len(p.line_ids) > 1 for p in kept)
        else {}
    )
    for match, p in zip(matches, kept, strict=True):
        for line_id in p.line_ids:
            amount = amounts.get(line_id, p.amount)
            match_lines.append(MatchLine(match=match, line_id=line_id, amount=amount))
        for t in p.targets:
            targets.append(
                MatchTarget(
                    match=match, kind=t.kind, amount=t.amount, **{_TARGET_FIELD[t.kind]: t.id}
                )
            )
    MatchLine.objects.bulk_create(match_lines, batch_size=5000)
    MatchTarget.objects.bulk_create(targets, batch_size=5000)
    line_ids = [ml.line_id for ml in match_lines]
    for start in range(0, len(line_ids), 10_000):
        StatementLine.objects.filter(pk__in=line_ids[start : start + 10_000]).update(
            status=StatementLineStatus.SUGGESTED
        )
    return matches


def reconcile(
    *,
    bank_account_id: int,
    period_start: date | None = None,
    period_end: date | None = None,
    run: ReconciliationRun | None = None,
    actor: Any = None,
) -> ReconcileResult:
    """Match the account's unmatched lines (of the period): store every proposal, apply those
    at or above the threshold (in chunks of ``APPLY_CHUNK``, each as ``match_apply`` would;
    a refused one stays a suggestion). Running it again matches no line twice."""
    with transaction.atomic():
        # One run per account at a time: concurrent runs would propose the same lines.
        account = BankAccount.objects.select_for_update().get(pk=bank_account_id)
        found = candidates_load(account=account, period_start=period_start, period_end=period_end)
        proposals = matching.match_lines(
            found.lines,
            invoices=found.invoices,
            payments=found.payments,
            runs=found.runs,
            rules=found.rules,
            aliases=found.aliases,
            payouts=found.payouts,
        )
        matches = proposals_store(account=account, proposals=proposals, run=run, actor=actor)
    threshold = auto_match_threshold()
    automatic = [m.pk for m in matches if m.confidence >= threshold]
    applied = failed = 0
    for start in range(0, len(automatic), APPLY_CHUNK):
        done, refused = _apply_automatic(automatic[start : start + APPLY_CHUNK])
        applied += done
        failed += refused
    unmatched = _lines_qs(account, period_start, period_end).count()
    return ReconcileResult(
        auto_matched=applied,
        suggested=len(matches) - applied,
        unmatched=unmatched,
        failed_to_apply=failed,
    )


# --- applying ------------------------------------------------------------------------------


def _apply_one_by_one(match_ids: Sequence[int]) -> tuple[int, int]:
    applied = failed = 0
    for match_id in match_ids:
        try:
            match_apply(match_id=match_id, actor=None)
        except DomainError:
            # A refusal from billing or the ledger (period locked...): it waits for a person.
            failed += 1
        else:
            applied += 1
    return applied, failed


def _apply_automatic(match_ids: Sequence[int]) -> tuple[int, int]:
    """Apply a chunk of automatic matches as the system, each as ``match_apply`` would:
    (applied, refused). The common kinds go in bulk in one transaction; payouts and anything
    unusual go through ``match_apply``, and so does the whole chunk when its transaction
    fails (a refused match then waits for a person, as before). The bulk writes need
    PostgreSQL (COPY); the embedded quick start applies one by one."""
    if connection.vendor != "postgresql":
        return _apply_one_by_one(match_ids)
    try:
        with transaction.atomic():
            applied, failed, rest = _apply_chunk(match_ids)
    except (DomainError, DatabaseError):
        logger.warning(
            "Applying %s matches in bulk failed; applying them one by one.",
            len(match_ids),
            exc_info=True,
        )
        applied, failed, rest = 0, 0, list(match_ids)
    done, refused = _apply_one_by_one(rest)
    return applied + done, failed + refused


@dataclass(slots=True)
class _Pending:
    """A match of a chunk on its way to being applied."""

    match: Match
    lines: list[StatementLine]
    targets: list[MatchTarget]
    # In the match's order (what the audit event lists).
    line_ids: list[int] = field(default_factory=list)
    payment: Payment | None = None
    entries: list[int] = field(default_factory=list)


def _apply_chunk(match_ids: Sequence[int]) -> tuple[int, int, list[int]]:
    """Apply what can be applied in bulk: invoices through ``payments_record_batch``, rule
    accounts through ``journal_post_batch``, links by updates. Returns (applied, refused,
    the ids left to ``match_apply``); a refused match stays proposed."""
    matches = list(Match.objects.select_for_update().filter(pk__in=match_ids).order_by("pk"))
    refused = len(match_ids) - len(matches)
    lines_of: dict[int, list[int]] = {m.pk: [] for m in matches}
    for match_id, line_id in (
        MatchLine.objects.filter(match_id__in=list(lines_of))
        .order_by("pk")
        .values_list("match_id", "line_id")
    ):
        lines_of[match_id].append(line_id)
    lines = {
        x.pk: x
        for x in StatementLine.objects.select_for_update()
        .filter(pk__in=[i for ids in lines_of.values() for i in ids])
        .order_by("pk")
    }
    targets_of: dict[int, list[MatchTarget]] = {m.pk: [] for m in matches}
    for target in MatchTarget.objects.filter(match_id__in=list(lines_of)).order_by("pk"):
        targets_of[target.match_id].append(target)
    signed_off: dict[int, date | None] = {}
    rest: list[int] = []
    to_pay: list[_Pending] = []
    to_post: list[_Pending] = []
    to_link: list[_Pending] = []
    for match in matches:
        pending = _Pending(
            match,
            sorted((lines[i] for i in lines_of[match.pk]), key=lambda x: x.pk),
            targets_of[match.pk],
            line_ids=lines_of[match.pk],
        )
        kinds = {t.kind for t in pending.targets}
        account_id = match.bank_account_id
        if account_id not in signed_off:
            signed_off[account_id] = signed_off_through(account_id)
        through = signed_off[account_id]
        if not pending.lines or not kinds:
            rest.append(match.pk)
        elif match.status != MatchStatus.PROPOSED or (
            through is not None and min(x.booking_date for x in pending.lines) <= through
        ):
            # What ``match_apply`` refuses: not proposed any more, or a signed-off period.
            refused += 1
        elif kinds == {MatchTargetKind.INVOICE}:
            to_pay.append(pending)
        elif kinds == {MatchTargetKind.ACCOUNT}:
            to_post.append(pending)
        elif kinds <= _LINK_KINDS:
            to_link.append(pending)
        else:
            rest.append(match.pk)
    paid, refused_payments = _pay_invoices(to_pay)
    posted, refused_postings = _post_accounts(to_post)
    done = [*paid, *posted, *to_link]
    _mark_applied(sorted(done, key=lambda p: p.match.pk))
    return len(done), refused + refused_payments + refused_postings, rest


def _pay_invoices(pending: list[_Pending]) -> tuple[list[_Pending], int]:
    """A payment per match through billing's batch, as ``_apply_invoices`` records each."""
    if not pending:
        return [], 0
    customers = dict(
        Invoice.objects.filter(
            pk__in={t.invoice_id for p in pending for t in p.targets}
        ).values_list("pk", "customer_id")
    )
    items: list[BatchPaymentInput] = []
    asked: list[_Pending] = []
    refused = 0
    for p in pending:
        total = sum((x.amount for x in p.lines), ZERO)
        owners = {customers[t.invoice_id] for t in p.targets}
        if total <= 0 or len(owners) != 1:
            # ``_apply_invoices`` refuses money out and invoices of several customers.
            refused += 1
            continue
        first = p.lines[0]
        reference = first.bank_reference or first.end_to_end_id or f"bank line {first.pk}"
        items.append(
            BatchPaymentInput(
                customer_id=owners.pop(),
                amount=total,
                currency=p.match.currency,
                method=_method(p.lines),
                received_date=max(x.booking_date for x in p.lines),
                reference=reference[:200],
                allocations=[AllocationInput(t.invoice_id, t.amount) for t in p.targets],
            )
        )
        asked.append(p)
    batch = payments_record_batch(actor=None, items=items)
    paid = []
    for p, payment in zip(asked, batch.payments, strict=True):
        if payment is None:
            refused += 1
            continue
        p.payment = payment
        p.match.payment = payment
        if payment.ledger_entry_id:
            p.entries.append(payment.ledger_entry_id)
        paid.append(p)
    return paid, refused


def _post_accounts(pending: list[_Pending]) -> tuple[list[_Pending], int]:
    """The entries ``_apply_account`` posts (one per line), in one ledger batch; a match
    the ledger refuses is left out and the others posted."""
    if not pending:
        return [], 0
    cash = dict(
        BankAccount.objects.filter(pk__in={p.match.bank_account_id for p in pending}).values_list(
            "pk", "ledger_account_id"
        )
    )
    todo = list(pending)
    refused = 0
    while todo:
        specs: list[EntrySpec] = []
        owner: list[_Pending] = []
        for p in todo:
            bank = cash[p.match.bank_account_id]
            other = p.targets[0].account_id
            for line in p.lines:
                size = abs(line.amount)
                money_in = line.amount > 0
                specs.append(
                    EntrySpec(
                        lines=[
                            LineSpec(bank if money_in else other, line.currency, debit=size),
                            LineSpec(other if money_in else bank, line.currency, credit=size),
                        ],
                        entry_date=line.booking_date,
                        description=f"Bank line {line.pk}: {p.match.reason}"[:500],
                        source=f"reconciliation.match:{p.match.pk}",
                        idempotency_key=f"reconciliation.match:{p.match.pk}:line:{line.pk}",
                    )
                )
                owner.append(p)
        try:
            entries = journal_post_batch(entries=specs, actor=None)
        except DomainError as exc:
            index = exc.details.get("batch_index")
            if index is None:
                raise
            todo = [p for p in todo if p is not owner[index]]
            refused += 1
            continue
        for p, entry in zip(owner, entries, strict=True):
            p.entries.append(entry.pk)
        break
    return todo, refused


def _mark_applied(done: list[_Pending]) -> None:
    """What ``match_apply`` writes once a match is carried out: the match applied (and its
    history row), its entries linked, its lines matched, an audit event."""
    if not done:
        return
    now = timezone.now()
    matches = [p.match for p in done]
    for match in matches:
        match.status = MatchStatus.APPLIED
        match.applied_at = now
        match.applied_by = None
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Match._meta.db_table} AS t SET status = %s, applied_at = %s, "  # noqa: S608  # nosec B608  # the model's own table; values bound
            "applied_by_id = NULL, payment_id = v.payment_id "
            "FROM UNNEST(%s::bigint[], %s::bigint[]) AS v(id, payment_id) WHERE t.id = v.id",
            [
                MatchStatus.APPLIED,
                now,
                [m.pk for m in matches],
                [m.payment_id for m in matches],
            ],
        )
    Match.history.bulk_history_create(matches, batch_size=2000, update=True, default_date=now)
    Through = Match.journal_entries.through
    Through.objects.bulk_create(
        [Through(match_id=p.match.pk, journalentry_id=e) for p in done for e in p.entries],
        batch_size=5000,
    )
    line_ids = [x.pk for p in done for x in p.lines]
    for start in range(0, len(line_ids), 10_000):
        StatementLine.objects.filter(pk__in=line_ids[start : start + 10_000]).update(
            status=StatementLineStatus.MATCHED
        )
    audit_record_many(
        action=AuditAction.MATCH_APPLIED,
        actor=None,
        events=[
            (
                p.match,
                p.match.bank_account_id,
                {
                    "rule": p.match.rule,
                    "confidence": str(p.match.confidence),
                    "amount": str(p.match.amount),
                    "currency": p.match.currency,
                    "lines": p.line_ids,
                    "automatic": True,
                    "payment": p.match.payment_id,
                },
                p.match.reason,
            )
            for p in done
        ],
    )


def _method(lines: list[StatementLine]) -> str:
    text = " ".join(f"{x.description} {x.transaction_code}" for x in lines).upper()
    if any(word in text for word in ("ACH", "CCD", "PPD", "SEPA", "DIRECT CREDIT")):
        return PaymentMethodType.ACH
    return PaymentMethodType.WIRE_TRANSFER


def _audit_match(match: Match, action: AuditAction, actor: Any, reason: str = "") -> None:
    line_ids = list(match.lines.values_list("line_id", flat=True))
    audit_record(
        action=action,
        actor=actor,
        subject=match,
        bank_account_id=match.bank_account_id,
        reason=reason or match.reason,
        details={
            "rule": match.rule,
            "confidence": str(match.confidence),
            "amount": str(match.amount),
            "currency": match.currency,
            "lines": line_ids,
            "automatic": actor is None,
            "payment": match.payment_id,
        },
    )


def match_apply(
    *, match_id: int, actor: Any, audit_action: AuditAction = AuditAction.MATCH_APPLIED
) -> Match:
    """Carry a proposed match out (see the module docstring); all or nothing. The caller
    checks permissions (``match_accept``); the engine applies as the system (actor None).
    The audit trail records it (``audit_action``) in the same transaction."""
    with transaction.atomic():
        match = Match.objects.select_for_update().get(pk=match_id)
        if match.status != MatchStatus.PROPOSED:
            raise ReconciliationError(
                f"Match {match.pk} is {match.status}; only a proposed match can be applied.",
                code="match_not_proposed",
            )
        lines = list(
            StatementLine.objects.select_for_update()
            .filter(match_lines__match=match)
            .order_by("pk")
        )
        ensure_not_signed_off(
            bank_account_id=match.bank_account_id,
            dates=[x.booking_date for x in lines],
            what="applying a match",
        )
        targets = list(match.targets.all())
        kinds = {t.kind for t in targets}
        total = sum((x.amount for x in lines), ZERO)
        if kinds == {MatchTargetKind.INVOICE}:
            _apply_invoices(match, lines, targets, total, actor)
        elif kinds == {MatchTargetKind.ACCOUNT}:
            _apply_account(match, lines, targets[0].account_id, actor)
        elif kinds == {MatchTargetKind.PAYOUT}:
            # A card-processor payout: the settlement entry (services_payouts).
            payout_match_apply(match=match, lines=lines, targets=targets, actor=actor)
        # Existing payments and payment runs are posted already: linking is all.
        match.status = MatchStatus.APPLIED
        match.applied_at = timezone.now()
        match.applied_by = acting_user(actor)
        match.save(update_fields=["status", "applied_at", "applied_by", "payment"])
        StatementLine.objects.filter(pk__in=[x.pk for x in lines]).update(
            status=StatementLineStatus.MATCHED
        )
        _audit_match(match, audit_action, actor)
    return match


def _apply_invoices(
    match: Match, lines: list[StatementLine], targets: list[MatchTarget], total: Decimal, actor: Any
) -> None:
    if total <= 0:
        raise ReconciliationError("Money out cannot pay invoices.", code="wrong_direction")
    invoices = {i.pk: i for i in Invoice.objects.filter(pk__in=[t.invoice_id for t in targets])}
    customers = {i.customer_id for i in invoices.values()}
    if len(customers) != 1:
        raise ReconciliationError(
            "The invoices of one match belong to one customer.", code="several_customers"
        )
    first = lines[0]
    reference = first.bank_reference or first.end_to_end_id or f"bank line {first.pk}"
    # The decision was checked here (decide_match); billing attributes the payment to the
    # person when they may record payments themselves, else to the system, and the match
    # keeps who applied it either way.
    payment = payment_record(
        actor=actor if actor is not None and actor.has_perm("billing.record_payment") else None,
        customer_id=customers.pop(),
        amount=total,
        currency=match.currency,
        method=_method(lines),
        received_date=max(x.booking_date for x in lines),
        reference=reference[:200],
        allocations=[AllocationInput(t.invoice_id, t.amount) for t in targets],
    )
    match.payment = payment
    if payment.ledger_entry_id:
        match.journal_entries.add(payment.ledger_entry_id)


def _apply_account(match: Match, lines: list[StatementLine], account_id: int, actor: Any) -> None:
    cash = match.bank_account.ledger_account_id
    other = Account.objects.get(pk=account_id)
    for line in lines:
        size = abs(line.amount)
        money_in = line.amount > 0
        entry = journal_post(
            lines=[
                LineSpec(cash if money_in else other, line.currency, debit=size),
                LineSpec(other if money_in else cash, line.currency, credit=size),
            ],
            entry_date=line.booking_date,
            description=f"Bank line {line.pk}: {match.reason}"[:500],
            source=f"reconciliation.match:{match.pk}",
            idempotency_key=f"reconciliation.match:{match.pk}:line:{line.pk}",
            actor=acting_user(actor),
        )
        match.journal_entries.add(entry)


# --- people's decisions --------------------------------------------------------------------


def _get_match(match_id: int) -> Match:
    match = Match.objects.filter(pk=match_id).first()
    if match is None:
        raise NotFound(f"No match {match_id}.")
    return match


def alias_learn(*, match: Match, actor: Any) -> list[CounterpartyAlias]:
    """Remember the counterparty (account and name) of the match's lines for the customer or
    vendor it was matched to; one more confirmation when already known."""
    customer_id = vendor_id = None
    for t in match.targets.select_related("invoice", "payment", "payment_run_item"):
        if t.invoice_id:
            customer_id = t.invoice.customer_id
        elif t.payment_id:
            customer_id = t.payment.customer_id
        elif t.payment_run_item_id:
            vendor_id = t.payment_run_item.vendor_id
    if customer_id is None and vendor_id is None:
        return []
    keys: set[tuple[str, str]] = set()
    for name, number in match.lines.values_list(
        "line__counterparty_name", "line__counterparty_account"
    ):
        if matching.normalize_account(number):
            keys.add((AliasKind.ACCOUNT, matching.normalize_account(number)))
        if matching.normalize_name(name):
            keys.add((AliasKind.NAME, matching.normalize_name(name)[:200]))
    learned = []
    now = timezone.now()
    for kind, key in sorted(keys):
        alias = CounterpartyAlias.objects.select_for_update().filter(kind=kind, key=key).first()
        if alias is None:
            alias = CounterpartyAlias(kind=kind, key=key, confirmations=0)
        if (alias.customer_id, alias.vendor_id) != (customer_id, vendor_id):
            alias.customer_id, alias.vendor_id, alias.confirmations = customer_id, vendor_id, 0
        alias.confirmations += 1
        alias.taught_by = acting_user(actor)
        alias.taught_at = now
        alias.save()
        learned.append(alias)
    return learned


def match_accept(*, match_id: int, actor: Any) -> Match:
    """A person confirms a suggestion: it is applied, and the engine learns the counterparty."""
    permission_check(actor, DECIDE, "deciding on matches", system_allowed=False)
    _get_match(match_id)
    with transaction.atomic():
        match = match_apply(match_id=match_id, actor=actor)
        alias_learn(match=match, actor=actor)
    return match


def match_reject(*, match_id: int, actor: Any, reason: str = "") -> Match:
    """A person turns a suggestion down: its lines are unmatched again, and the engine never
    proposes the same line and target again."""
    permission_check(actor, DECIDE, "deciding on matches", system_allowed=False)
    _get_match(match_id)
    with transaction.atomic():
        match = Match.objects.select_for_update().get(pk=match_id)
        if match.status != MatchStatus.PROPOSED:
            raise ReconciliationError(
                f"Match {match.pk} is {match.status}; only a proposed match can be rejected.",
                code="match_not_proposed",
            )
        match.status = MatchStatus.REJECTED
        match.rejected_at = timezone.now()
        match.rejected_by = acting_user(actor)
        match.undo_reason = reason
        match.save(update_fields=["status", "rejected_at", "rejected_by", "undo_reason"])
        _audit_match(match, AuditAction.MATCH_REJECTED, actor, reason or "rejected")
        line_ids = list(match.lines.values_list("line_id", flat=True))
        match.lines.update(is_live=False)
        StatementLine.objects.filter(pk__in=line_ids).update(status=StatementLineStatus.UNMATCHED)
    return match


def _bill_targets(bill_ids: Sequence[int], total: Decimal, currency: str) -> list[matching.Target]:
    """Bills are paid by payment runs: money out matched to bills is matched to the run items
    that paid them (exported or confirmed runs, not linked to another line yet), and their
    amounts must add up to what left the bank."""
    if len(set(bill_ids)) != len(bill_ids):
        raise ReconciliationError("Give each bill once.", code="invalid_bills", field="bill_ids")
    if total >= 0:
        raise ReconciliationError(
            "Money in cannot pay bills; match it to invoices, a payment or an account.",
            code="wrong_direction",
        )
    bills = {b.pk: b for b in Bill.objects.filter(pk__in=bill_ids)}
    if len(bills) != len(bill_ids):
        raise NotFound("Some of the bills do not exist.")
    linked = MatchTarget.objects.filter(
        kind=MatchTargetKind.PAYMENT_RUN_ITEM, match__status__in=LIVE
    ).values("payment_run_item_id")
    items = list(
        PaymentRunItem.objects.filter(
            bill_id__in=bill_ids,
            run__status__in=(PaymentRunStatus.EXPORTED, PaymentRunStatus.PAID),
        )
        .exclude(pk__in=linked)
        .order_by("pk")
    )
    paid = {i.bill_id for i in items}
    unpaid = [str(bills[pk]) for pk in bill_ids if pk not in paid]
    if unpaid:
        raise ReconciliationError(
            f"No released payment-run payment waits for bill {', '.join(unpaid)}: a bill is "
            "paid through a payment run, and its bank line matched to that payment.",
            code="bill_not_in_run",
            field="bill_ids",
        )
    if any(i.currency != currency for i in items):
        raise ReconciliationError(
            f"The bills were paid in another currency than the lines' {currency}.",
            code="currency_mismatch",
        )
    out = sum((i.amount.amount for i in items), ZERO)
    if out != -total:
        raise ReconciliationError(
            f"The bills' payments add up to {format_amount(out, currency)}, the lines to "
            f"{format_amount(-total, currency)}.",
            code="amount_differs",
        )
    return [matching.Target(MatchTargetKind.PAYMENT_RUN_ITEM, i.pk, i.amount.amount) for i in items]


def match_manual(
    *,
    actor: Any,
    line_ids: Sequence[int],
    invoice_ids: Sequence[int] = (),
    payment_id: int | None = None,
    account_id: int | None = None,
    bill_ids: Sequence[int] = (),
) -> Match:
    """A person matches lines by hand to invoices (paid in due-date order up to the lines'
    total), an existing payment, bills (the payment-run payments that paid them), or a ledger
    account; applied at once, and learned from."""
    permission_check(actor, DECIDE, "matching bank lines", system_allowed=False)
    if sum(bool(x) for x in (invoice_ids, payment_id, account_id, bill_ids)) != 1:
        raise ReconciliationError(
            "Give invoices, a payment, bills or an account (one of them).",
            code="one_target_kind",
        )
    if not line_ids or len(set(line_ids)) != len(line_ids):
        raise ReconciliationError("Give each line once.", code="invalid_lines", field="line_ids")
    with transaction.atomic():
        lines = list(
            StatementLine.objects.select_for_update().filter(pk__in=line_ids).order_by("pk")
        )
        if len(lines) != len(line_ids):
            raise NotFound("Some of the lines do not exist.")
        accounts = {x.bank_account_id for x in lines}
        currencies = {x.currency for x in lines}
        if len(accounts) != 1 or len(currencies) != 1:
            raise ReconciliationError(
                "The lines belong to one bank account and currency.", code="mixed_lines"
            )
        if any(x.status != StatementLineStatus.UNMATCHED for x in lines):
            raise ReconciliationError(
                "A line is matched or suggested already; reject or undo that first.",
                code="line_not_unmatched",
            )
        total = sum((x.amount for x in lines), ZERO)
        currency = currencies.pop()
        targets: list[matching.Target] = []
        if invoice_ids:
            invoices = sorted(
                Invoice.objects.filter(pk__in=invoice_ids),
                key=lambda i: (i.due_date or date.min, i.pk),
            )
            if len(invoices) != len(set(invoice_ids)):
                raise NotFound("Some of the invoices do not exist.")
            left = total
            for inv in invoices:
                part = min(left, inv.amount_due.amount)
                if part > 0:
                    targets.append(matching.Target(MatchTargetKind.INVOICE, inv.pk, part))
                    left -= part
            if not targets:
                raise ReconciliationError("Nothing is due on these invoices.", code="nothing_due")
        elif payment_id:
            payment = Payment.objects.filter(pk=payment_id).first()
            if payment is None:
                raise NotFound(f"No payment {payment_id}.")
            if payment.amount.amount != total or payment.currency != currency:
                raise ReconciliationError(
                    "The lines add up to another amount than the payment.", code="amount_differs"
                )
            targets.append(matching.Target(MatchTargetKind.PAYMENT, payment.pk, total))
        elif bill_ids:
            targets.extend(_bill_targets(bill_ids, total, currency))
        else:
            if not Account.objects.filter(pk=account_id, is_active=True).exists():
                raise NotFound(f"No active account {account_id}.")
            targets.append(
                matching.Target(MatchTargetKind.ACCOUNT, int(account_id or 0), abs(total))
            )
        proposal = matching.Proposal(
            tuple(x.pk for x in lines),
            tuple(targets),
            Decimal(1),
            "manual",
            f"matched by hand by {getattr(actor, 'username', 'someone')}",
            total,
            currency,
        )
        (match,) = proposals_store(account=lines[0].bank_account, proposals=[proposal], actor=actor)
        match = match_apply(match_id=match.pk, actor=actor, audit_action=AuditAction.MATCH_MANUAL)
        alias_learn(match=match, actor=actor)
    return match


def match_undo(*, match_id: int, actor: Any, reason: str) -> Match:
    """Reverse what an applied match posted and unmatch its lines: the payment it recorded is
    reversed by billing (invoices reopened, credit taken back, reversing entry), rule entries
    by ``journal_reverse``; links (existing payment, payment run) just come apart."""
    permission_check(actor, DECIDE, "undoing matches", system_allowed=False)
    if not reason.strip():
        raise ReconciliationError("Say why.", code="reason_required", field="reason")
    _get_match(match_id)
    with transaction.atomic():
        match = Match.objects.select_for_update().get(pk=match_id)
        if match.status != MatchStatus.APPLIED:
            raise ReconciliationError(
                f"Match {match.pk} is {match.status}; only an applied match can be undone.",
                code="match_not_applied",
            )
        ensure_not_signed_off(
            bank_account_id=match.bank_account_id,
            dates=list(match.lines.values_list("line__booking_date", flat=True)),
            what="undoing a match",
        )
        if match.payment_id:
            payment_reverse(
                actor=actor,
                payment_id=match.payment_id,
                reason=f"match {match.pk} undone: {reason}",
                authorized_by_caller=True,
            )
        else:
            for entry_id in match.journal_entries.values_list("pk", flat=True):
                journal_reverse(
                    entry_id=entry_id,
                    actor=actor,
                    reason=reason,
                    entry_date=timezone.localdate(),
                    authorized_by_caller=True,
                )
        # A payout's settlement entry was reversed above; the payout waits for its deposit.
        payout_match_undo(match=match, actor=actor, reason=reason)
        match.status = MatchStatus.UNDONE
        match.undone_at = timezone.now()
        match.undone_by = acting_user(actor)
        match.undo_reason = reason
        match.save(update_fields=["status", "undone_at", "undone_by", "undo_reason"])
        _audit_match(match, AuditAction.MATCH_UNDONE, actor, reason)
        line_ids = list(match.lines.values_list("line_id", flat=True))
        match.lines.update(is_live=False)
        StatementLine.objects.filter(pk__in=line_ids).update(status=StatementLineStatus.UNMATCHED)
    return match


# --- runs ------------------------------------------------------------------------------------


def reconciliation_run_start(
    *,
    actor: Any,
    bank_account_id: int,
    period_start: date | None = None,
    period_end: date | None = None,
    authorized_by_caller: bool = False,
) -> ReconciliationRun:
    """Queue a run; the task starts after commit. ``authorized_by_caller``: a statement import
    starts one for its importer."""
    if not authorized_by_caller:
        permission_check(actor, START, "starting reconciliation runs", system_allowed=False)
    if period_start and period_end and period_start > period_end:
        raise ReconciliationError(
            "period_start is after period_end.", code="invalid_period", field="period_start"
        )
    if not BankAccount.objects.filter(pk=bank_account_id).exists():
        raise NotFound(f"No bank account {bank_account_id}.")
    with transaction.atomic():
        run = ReconciliationRun.objects.create(
            bank_account_id=bank_account_id,
            period_start=period_start,
            period_end=period_end,
            requested_by=acting_user(actor),
        )
        run_id = str(run.pk)
        transaction.on_commit(lambda: _queue_run(run_id), robust=True)
    return run


def _queue_run(run_id: str) -> None:
    from reconciliation.tasks import reconcile_run_task

    reconcile_run_task.delay(run_id=run_id)


def reconciliation_run_execute(*, run_id: int) -> ReconciliationRun:
    """Do a queued run. Idempotent: a run that is done is left alone (a redelivered task
    does nothing new); a failure is recorded on the run (status failed, the error) and
    raised so the task's bounded retries apply."""
    with transaction.atomic():
        run = ReconciliationRun.objects.select_for_update().get(pk=run_id)
        if run.status == ReconciliationRunStatus.DONE:
            return run
        run.status = ReconciliationRunStatus.RUNNING
        run.started_at = timezone.now()
        run.attempts += 1
        run.error = ""
        run.save(update_fields=["status", "started_at", "attempts", "error"])
    try:
        with transaction.atomic():
            run = ReconciliationRun.objects.select_for_update().get(pk=run_id)
            if run.status == ReconciliationRunStatus.DONE:
                return run  # a concurrent delivery finished it meanwhile
            result = reconcile(
                bank_account_id=run.bank_account_id,
                period_start=run.period_start,
                period_end=run.period_end,
                run=run,
            )
            run.status = ReconciliationRunStatus.DONE
            run.auto_matched = result.auto_matched
            run.suggested = result.suggested
            run.unmatched = result.unmatched
            run.finished_at = timezone.now()
            run.save(
                update_fields=["status", "auto_matched", "suggested", "unmatched", "finished_at"]
            )
    except Exception as exc:
        ReconciliationRun.objects.filter(pk=run_id).exclude(
            status=ReconciliationRunStatus.DONE
        ).update(
            status=ReconciliationRunStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    return run
