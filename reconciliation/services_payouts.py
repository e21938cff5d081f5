"""Card-processor settlements: Stripe payouts imported with their balance transactions, and a
payout reconciled against the one bank deposit that pays it out. PayPal and Coinbase Commerce
settlements are imported as payouts too (``services_settlements``) and reconciled here alike.

How a payout posts, and why the processor clearing account comes back to zero. Billing books
each card payment Dr processor clearing / Cr AR at its gross amount (``billing.postings``),
each refund of it Dr AR / Cr processor clearing (``billing.services.refunds``), and a lost
chargeback (receivables) as such a refund plus its fee, Dr processor fees / Cr processor
clearing. Stripe pays out charges less refunds, disputes and every fee it kept. Reconciling
the deposit posts ONE entry, dated the bank line's booking date:

    Dr bank ledger account      payout amount (the net deposit)
    Dr processor fees           the fees of the payout, less dispute fees
    Cr processor clearing       payout amount + those fees
                                (= charges + refunds + disputes + other - dispute fees)

Charges, refunds (negative) and standalone fee items settle what billing put in clearing, so
for the payout's payments clearing is back to exactly zero. Dispute items stay in clearing at
their net (amount and fee): receivables books a lost chargeback's amount and fee against
clearing itself when Stripe closes it, and expensing the fee here too would count it twice.
A won dispute's reversal comes back in a later payout and clears the same way. Amounts are
in the payout's currency; for a currency other than the functional one, the functional values
are at the deposit date's rate (the difference to billing's rates stays in clearing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Payment
from core.exceptions import NotFound
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.services import LineSpec, journal_post
from reconciliation import services_exceptions
from reconciliation.actors import acting_user, permission_check
from reconciliation.audit import audit_record
from reconciliation.enums import (
    AuditAction,
    ExceptionKind,
    MatchStatus,
    MatchTargetKind,
    PayoutStatus,
    StatementLineStatus,
)
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import BankAccount, Match, MatchTarget, Payout, PayoutItem, StatementLine
from reconciliation.payouts import stripe_payouts as client

ZERO = Decimal(0)
IMPORT = "reconciliation.add_payout"
DECIDE = "reconciliation.decide_match"
# Without ``since``, an import looks this far back for arrivals (and ahead for payouts in
# transit): a run every hour sees each payout many times, which is harmless.
IMPORT_LOOKBACK_DAYS = 14
IMPORT_LOOKAHEAD_DAYS = 7
# A payout Stripe reports as failed or canceled never reaches the bank.
NOT_PAID = frozenset({"failed", "canceled"})
# Categories whose money billing recorded as a payment (or a refund of one).
PAYMENT_CATEGORIES = frozenset({"charge", *client.REFUND_CATEGORIES})


class PayoutRefused(ReconciliationError):
    """The bank line cannot be this payout's deposit (another amount or currency)."""

    code = "payout_refused"


class PayoutConflict(ReconciliationError):
    """The payout or the line is not in a state to be reconciled (HTTP 409)."""

    code = "payout_conflict"
    status_code = 409


@dataclass(frozen=True, slots=True)
class PayoutImportResult:
    fetched: int
    created: int
    updated: int
    unchanged: int
    exceptions: int


def mismatch_key(payout: Payout) -> str:
    return f"payout_mismatch:{payout.external_id}"


# How each processor is named to people (Payout.provider -> name).
PROCESSOR_LABELS = {
    "stripe": "Stripe",
    "paypal": "PayPal",
    "coinbase_commerce": "Coinbase Commerce",
}


def payout_label(payout: Payout) -> str:
    """ "Stripe payout", "PayPal settlement", "Coinbase Commerce settlement"."""
    name = PROCESSOR_LABELS.get(payout.provider, payout.provider)
    return f"{name} payout" if payout.provider == "stripe" else f"{name} settlement"


def stripe_config() -> client.StripeConfig:
    """The Stripe key and API base of the settings; refused when no key is configured."""
    key = settings.STRIPE_SECRET_KEY
    if not key:
        raise ReconciliationError(
            "Stripe is not configured (STRIPE_SECRET_KEY is empty).",
            code="processor_not_configured",
        )
    return client.StripeConfig(
        api_key=key,
        api_base=settings.STRIPE_API_BASE,
        timeout_seconds=float(getattr(settings, "STRIPE_TIMEOUT_SECONDS", 30.0)),
        max_network_retries=max(int(getattr(settings, "STRIPE_MAX_NETWORK_RETRIES", 0)), 2),
    )


# --- import --------------------------------------------------------------------------------


def payouts_import(
    *, actor: Any, since: dt.date | None = None, config: client.StripeConfig | None = None
) -> PayoutImportResult:
    """Fetch the payouts arriving since ``since`` (IMPORT_LOOKBACK_DAYS by default) with their
    balance transactions and store them once each. A payout seen before changes only its
    processor status (and, while it is an exception, its links to payments recorded since).
    A provider failure raises FeedError (502) with nothing written. ``actor`` None: the
    scheduled task."""
    permission_check(actor, IMPORT, "importing payouts", system_allowed=True)
    config = config or stripe_config()
    today = timezone.localdate()
    arrival_from = since or today - dt.timedelta(days=IMPORT_LOOKBACK_DAYS)
    arrival_to = max(today + dt.timedelta(days=IMPORT_LOOKAHEAD_DAYS), arrival_from)
    # The provider is called outside any transaction.
    fetched = client.stripe_payouts_list(
        config=config, arrival_from=arrival_from, arrival_to=arrival_to
    )
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    exceptions = 0
    for data in fetched:
        outcome, payout = _payout_store(data, actor)
        counts[outcome] += 1
        if outcome == "created" and payout.status == PayoutStatus.EXCEPTION:
            exceptions += 1
    result = PayoutImportResult(fetched=len(fetched), exceptions=exceptions, **counts)
    audit_record(
        action=AuditAction.PAYOUT_IMPORTED,
        actor=actor,
        subject=f"{client.PROVIDER}:payouts",
        reason="payouts import",
        details={
            "arrival_from": arrival_from.isoformat(),
            "arrival_to": arrival_to.isoformat(),
            "fetched": result.fetched,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "exceptions": result.exceptions,
        },
    )
    return result


def _bank_account_for(currency: str) -> BankAccount | None:
    """The one active bank account in the currency; None when there is none or several (the
    bank line it is reconciled with says which)."""
    accounts = list(BankAccount.objects.filter(currency=currency, is_active=True)[:2])
    return accounts[0] if len(accounts) == 1 else None


def _payments_by_charge(items: list[client.PayoutItem]) -> dict[str, int]:
    """Billing's payments by the processor ids the items name (charge, or payment intent
    when billing recorded the intent's id)."""
    keys = {k for i in items for k in (i.charge_id, i.payment_intent) if k}
    if not keys:
        return {}
    return {
        charge_id: pk
        for charge_id, pk in Payment.objects.filter(processor_charge_id__in=keys).values_list(
            "processor_charge_id", "pk"
        )
        if charge_id is not None  # always: the filter is on the id
    }


def _payment_for(item: client.PayoutItem, payments: dict[str, int]) -> int | None:
    return payments.get(item.charge_id) or payments.get(item.payment_intent)


def _unknown_payment_problems(
    items: list[client.PayoutItem], payments: dict[str, int]
) -> list[client.PayoutProblem]:
    problems = []
    for item in items:
        if item.category in PAYMENT_CATEGORIES and _payment_for(item, payments) is None:
            what = item.charge_id or item.source_id or "an unnamed charge"
            problems.append(
                client.PayoutProblem(
                    "unknown_payment",
                    f"{item.id} ({item.category} {item.amount} {item.currency}) is for {what}, "
                    "which matches no payment recorded in billing.",
                    item_id=item.id,
                )
            )
    return problems


def _raw(data: client.Payout) -> dict[str, Any]:
    return {
        "id": data.id,
        "status": data.status,
        "automatic": data.automatic,
        "description": data.description,
        "failure_code": data.failure_code,
        "balance_transaction": data.balance_transaction_id,
        "created": data.created_at.isoformat() if data.created_at else None,
        "arrival_date": data.arrival_date.isoformat(),
        "amount": str(data.amount),
        "currency": data.currency,
        "items": [i.id for i in data.items],
    }


def _payout_store(data: client.Payout, actor: Any) -> tuple[str, Payout]:
    try:
        with transaction.atomic():
            existing = (
                Payout.objects.select_for_update()
                .filter(provider=client.PROVIDER, external_id=data.id)
                .first()
            )
            if existing is not None:
                return _payout_refresh(existing, data, actor)
            return "created", _payout_create(data, actor)
    except IntegrityError:
        # A concurrent import stored it first.
        payout = Payout.objects.get(provider=client.PROVIDER, external_id=data.id)
        return "unchanged", payout


def _payout_create(data: client.Payout, actor: Any) -> Payout:
    totals = client.payout_totals(data)
    items = list(data.items)
    payments = _payments_by_charge(items)
    problems = client.payout_check(data) + _unknown_payment_problems(items, payments)
    payout = Payout.objects.create(
        provider=client.PROVIDER,
        external_id=data.id,
        bank_account=_bank_account_for(data.currency),
        amount=data.amount,
        currency=data.currency,
        arrival_date=data.arrival_date,
        provider_status=data.status[:20],
        automatic=data.automatic,
        charges=totals.charges,
        refunds=totals.refunds,
        disputes=totals.disputes,
        fees=totals.fees,
        other=totals.other,
        status=PayoutStatus.EXCEPTION if problems else PayoutStatus.IMPORTED,
        problem=_problem_text(problems),
        imported_by=acting_user(actor),
        raw=_raw(data),
    )
    PayoutItem.objects.bulk_create(
        [
            PayoutItem(
                payout=payout,
                balance_transaction_id=item.id,
                category=item.category[:40],
                source_id=item.source_id[:100],
                charge_id=item.charge_id[:100],
                amount=item.amount,
                fee=item.fee,
                net=item.net,
                currency=item.currency,
                description=item.description[:300],
                payment_id=_payment_for(item, payments),
            )
            for item in items
        ]
    )
    if problems:
        _raise_mismatch(payout, problems)
    audit_record(
        action=AuditAction.PAYOUT_IMPORTED,
        actor=actor,
        subject=payout,
        bank_account_id=payout.bank_account_id,
        reason="does not add up" if problems else "imported",
        details={
            "external_id": payout.external_id,
            "amount": str(payout.amount),
            "currency": payout.currency,
            "fees": str(payout.fees),
            "items": len(items),
            "status": payout.status,
            "problems": [p.code for p in problems],
        },
    )
    return payout


def _problem_text(problems: list[client.PayoutProblem]) -> str:
    return "\n".join(p.message for p in problems)


def _raise_mismatch(payout: Payout, problems: list[client.PayoutProblem]) -> None:
    difference = next((p.difference for p in problems if p.difference is not None), None)
    services_exceptions.exception_raise(
        kind=ExceptionKind.PAYOUT_MISMATCH,
        key=mismatch_key(payout),
        message=f"Stripe payout {payout.external_id}: {_problem_text(problems)}"[:4000],
        bank_account_id=payout.bank_account_id,
        payout_id=payout.pk,
        amount=payout.amount,
        difference=difference,
        currency=payout.currency,
    )


def _payout_refresh(payout: Payout, data: client.Payout, actor: Any) -> tuple[str, Payout]:
    """A payout seen before: its processor status follows Stripe's; an exception whose only
    problem was payments billing had not recorded yet is imported once they are."""
    return payout_refresh(
        payout,
        status=data.status,
        relink=lambda: _relink(payout, data),
        relinked="its payments are recorded now: imported",
        actor=actor,
    )


def payout_refresh(
    payout: Payout, *, status: str, relink: Callable[[], bool], relinked: str, actor: Any
) -> tuple[str, Payout]:
    """A payout (or settlement) imported before, met again: its processor status follows the
    processor's, and an exception is imported once ``relink`` finds it links and adds up now.
    Audited when something changed; "unchanged" or "updated"."""
    changed: list[str] = []
    if payout.provider_status != status[:20]:
        before = payout.provider_status
        payout.provider_status = status[:20]
        payout.save(update_fields=["provider_status"])
        changed.append(f"status {before} -> {payout.provider_status}")
    if payout.status == PayoutStatus.EXCEPTION and relink():
        changed.append(relinked)
    if not changed:
        return "unchanged", payout
    audit_record(
        action=AuditAction.PAYOUT_IMPORTED,
        actor=actor,
        subject=payout,
        bank_account_id=payout.bank_account_id,
        reason="; ".join(changed),
        details={"external_id": payout.external_id, "provider_status": payout.provider_status},
    )
    return "updated", payout


def _relink(payout: Payout, data: client.Payout) -> bool:
    items = list(data.items)
    stored = {i.balance_transaction_id for i in payout.items.all()}
    if stored != {i.id for i in items}:
        return False
    payments = _payments_by_charge(items)
    problems = client.payout_check(data) + _unknown_payment_problems(items, payments)
    if problems:
        return False
    for item in payout.items.filter(payment__isnull=True):
        found = payments.get(item.charge_id)
        if found is not None:
            item.payment_id = found
            item.save(update_fields=["payment"])
    payout.status = PayoutStatus.IMPORTED
    payout.problem = ""
    payout.save(update_fields=["status", "problem"])
    services_exceptions.exception_clear(key=mismatch_key(payout), note="The payout adds up now.")
    return True


# --- reconcile -----------------------------------------------------------------------------


def payout_reconcile(*, payout_id: int, line_id: int, actor: Any) -> Payout:
    """A person reconciles a payout with its bank deposit: a match of the line to the payout
    is made (or the engine's proposal of exactly that accepted) and applied, which posts the
    settlement (``payout_match_apply``). All or nothing; undone like any match."""
    from reconciliation.services_matching import match_apply, proposals_store

    permission_check(actor, DECIDE, "reconciling payouts", system_allowed=False)
    with transaction.atomic():
        payout = Payout.objects.select_for_update().filter(pk=payout_id).first()
        if payout is None:
            raise NotFound(f"No payout {payout_id}.")
        line = (
            StatementLine.objects.select_for_update()
            .select_related("bank_account")
            .filter(pk=line_id)
            .first()
        )
        if line is None:
            raise NotFound(f"No bank line {line_id}.")
        _check_pair(payout, line)
        proposed = (
            Match.objects.filter(
                status=MatchStatus.PROPOSED,
                lines__line=line,
                lines__is_live=True,
                targets__payout=payout,
            )
            .values_list("pk", flat=True)
            .first()
        )
        if proposed is None:
            if line.status != StatementLineStatus.UNMATCHED:
                raise PayoutConflict(
                    f"Bank line {line.pk} is {line.status} already; reject or undo that first.",
                    code="line_not_unmatched",
                )
            from reconciliation import matching

            proposal = matching.Proposal(
                (line.pk,),
                (matching.Target(MatchTargetKind.PAYOUT, payout.pk, abs(line.amount)),),
                Decimal(1),
                "manual",
                f"payout {payout.external_id} reconciled by hand by "
                f"{getattr(actor, 'username', 'someone')}",
                line.amount,
                line.currency,
            )
            (match,) = proposals_store(account=line.bank_account, proposals=[proposal], actor=actor)
            proposed = match.pk
        match_apply(match_id=proposed, actor=actor, audit_action=AuditAction.MATCH_MANUAL)
        payout.refresh_from_db()
    return payout


def _check_pair(payout: Payout, line: StatementLine) -> None:
    if payout.status == PayoutStatus.RECONCILED:
        raise PayoutConflict(
            f"Payout {payout.external_id} is reconciled already (bank line "
            f"{payout.statement_line_id}).",
            code="payout_reconciled",
        )
    if payout.status == PayoutStatus.EXCEPTION:
        raise PayoutConflict(
            f"Payout {payout.external_id} does not add up: {payout.problem}",
            code="payout_exception",
        )
    if payout.provider_status in NOT_PAID:
        where = PROCESSOR_LABELS.get(payout.provider, payout.provider)
        raise PayoutConflict(
            f"Payout {payout.external_id} is {payout.provider_status} at {where}: no deposit.",
            code="payout_not_paid",
        )
    if line.currency != payout.currency:
        raise PayoutRefused(
            f"The bank line is in {line.currency}, payout {payout.external_id} in "
            f"{payout.currency}.",
            code="payout_currency_differs",
        )
    if line.amount != payout.amount:
        raise PayoutRefused(
            f"The bank line is {line.amount} {line.currency}; payout {payout.external_id} is "
            f"{payout.amount} {payout.currency} (difference {line.amount - payout.amount}).",
            code="payout_amount_differs",
            expected=payout.amount,
            actual=line.amount,
        )


def _signed(account: Account, currency: str, amount: Decimal) -> LineSpec | None:
    if amount > 0:
        return LineSpec(account, currency, debit=amount)
    if amount < 0:
        return LineSpec(account, currency, credit=-amount)
    return None


def settlement_amounts(payout: Payout) -> tuple[Decimal, Decimal]:
    """(fees to expense, processor clearing settled) of the payout; see the module docstring.
    The bank gets ``payout.amount``; ``amount + fees == settled``."""
    dispute_fees = sum(
        (
            i.fee
            for i in payout.items.all()
            if i.category in client.DISPUTE_CATEGORIES and i.currency == payout.currency
        ),
        ZERO,
    )
    fees = payout.fees - dispute_fees
    return fees, payout.amount + fees


def payout_match_apply(
    *, match: Match, lines: list[StatementLine], targets: list[MatchTarget], actor: Any
) -> JournalEntry:
    """Apply a match of one deposit line to one payout (``match_apply`` calls it, in its
    transaction): post the settlement and mark the payout reconciled. Refused when the line
    does not equal the payout (amount and currency) or the payout cannot be reconciled."""
    if len(lines) != 1 or len(targets) != 1:
        raise PayoutRefused(
            "A payout is reconciled with exactly one bank line.", code="payout_one_line"
        )
    (line,) = lines
    # The payout rule's target always names its payout.
    payout = Payout.objects.select_for_update().get(pk=cast(int, targets[0].payout_id))
    _check_pair(payout, line)
    bank = BankAccount.objects.get(pk=line.bank_account_id)
    roles = {
        a.role: a
        for a in Account.objects.filter(
            role__in=(AccountRole.PROCESSOR_FEES, AccountRole.PROCESSOR_CLEARING)
        )
    }
    if len(roles) != 2:
        raise PayoutRefused(
            "The chart of accounts has no processor fees or processor clearing account.",
            code="no_processor_accounts",
        )
    fees, settled = settlement_amounts(payout)
    currency = payout.currency
    specs = [
        _signed(bank.ledger_account, currency, payout.amount),
        _signed(roles[AccountRole.PROCESSOR_FEES], currency, fees),
        _signed(roles[AccountRole.PROCESSOR_CLEARING], currency, -settled),
    ]
    entry = journal_post(
        lines=[s for s in specs if s is not None],
        entry_date=line.booking_date,
        description=(
            f"{payout_label(payout)} {payout.external_id}: deposit {payout.amount} {currency}, "
            f"fees {fees} {currency} (bank line {line.pk})"
        )[:500],
        source=f"reconciliation.payout:{payout.pk}",
        # Per payout and match: a retry returns the entry, a new match after an undo posts anew.
        idempotency_key=f"reconciliation.payout:{payout.pk}:match:{match.pk}",
        actor=acting_user(actor),
    )
    match.journal_entries.add(entry)
    payout.status = PayoutStatus.RECONCILED
    payout.statement_line = line
    payout.bank_account = bank
    payout.journal_entry = entry
    payout.reconciled_at = timezone.now()
    payout.reconciled_by = acting_user(actor)
    payout.save(
        update_fields=[
            "status",
            "statement_line",
            "bank_account",
            "journal_entry",
            "reconciled_at",
            "reconciled_by",
        ]
    )
    audit_record(
        action=AuditAction.PAYOUT_RECONCILED,
        actor=actor,
        subject=payout,
        bank_account_id=bank.pk,
        reason=match.reason,
        details={
            "external_id": payout.external_id,
            "line": line.pk,
            "match": match.pk,
            "entry": entry.pk,
            "amount": str(payout.amount),
            "fees": str(fees),
            "clearing": str(settled),
            "currency": currency,
            "automatic": actor is None,
        },
    )
    return entry


def payout_match_undo(*, match: Match, actor: Any, reason: str) -> None:
    """The match of a payout was undone (its entry reversed by ``match_undo``): the payout
    waits for its deposit again."""
    payout_ids = [
        t.payout_id for t in match.targets.all() if t.kind == MatchTargetKind.PAYOUT and t.payout_id
    ]
    for payout in Payout.objects.select_for_update().filter(pk__in=payout_ids).order_by("pk"):
        line_id = payout.statement_line_id
        payout.status = PayoutStatus.IMPORTED
        payout.statement_line = None
        payout.journal_entry = None
        payout.reconciled_at = None
        payout.reconciled_by = None
        payout.save(
            update_fields=[
                "status",
                "statement_line",
                "journal_entry",
                "reconciled_at",
                "reconciled_by",
            ]
        )
        audit_record(
            action=AuditAction.MATCH_UNDONE,
            actor=actor,
            subject=payout,
            bank_account_id=payout.bank_account_id,
            reason=reason,
            details={"external_id": payout.external_id, "line": line_id, "match": match.pk},
        )


def open_payouts_qs(account: BankAccount) -> Any:
    """Payouts that may be the account's deposits: imported, paid or on their way, in its
    currency, landing there (or not known where), and in no live match."""
    in_matches = MatchTarget.objects.filter(
        kind=MatchTargetKind.PAYOUT, match__status__in=(MatchStatus.PROPOSED, MatchStatus.APPLIED)
    ).values("payout_id")
    return (
        Payout.objects.filter(status=PayoutStatus.IMPORTED, currency=account.currency)
        .filter(Q(bank_account=account) | Q(bank_account__isnull=True))
        .exclude(provider_status__in=NOT_PAID)
        .exclude(pk__in=in_matches)
    )


# --- reads (the API and admin) ---------------------------------------------------------------
