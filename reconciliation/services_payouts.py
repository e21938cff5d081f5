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

Currency conversions (PayPal): a payment taken in EUR and converted by the processor into the
USD it pays out settles its EUR in EUR and the USD it became in USD, the two joined through
the processor conversion account, so each currency's clearing comes back to zero:

    Dr bank ledger account      USD deposit
    Dr processor fees           USD fees;  EUR fees (at the deposit date's rate)
    Cr processor clearing       USD settled;  EUR settled, at the functional value billing
                                booked each payment (refund) at
    Cr processor conversion     USD the EUR became  } the same functional value: the
    Dr processor conversion     EUR converted       } USD's at the deposit date
    Dr/Cr realized FX gain/loss what is left in the functional currency (billing's rate
                                against the processor's), a functional-only line in EUR

Both legs of each conversion are on the conversion account, which holds per currency what was
converted and is worth zero in the functional currency. A refund the processor funded by
converting USD back into EUR posts the other way round. A USD conversion leg whose EUR side is
not in the payout (a EUR balance kept and converted in part) goes to the conversion account
alone, at the deposit date's rate.
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

from billing.models import Payment, Refund
from core.exceptions import NotFound
from core.fx import fx_rate_get
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.services import LineSpec, journal_post
from core.money import round_storage
from core.system_settings import system_settings
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
from reconciliation.exceptions import ProcessorNotConfigured, ReconciliationError
from reconciliation.models import BankAccount, Match, MatchTarget, Payout, PayoutItem, StatementLine
from reconciliation.payouts import stripe_payouts as client
from reconciliation.payouts.settlements import CHARGE, CONVERSION, FEE, REFUND

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
        raise ProcessorNotConfigured(
            "Stripe is not configured (STRIPE_SECRET_KEY is empty).",
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
    """(fees to expense, processor clearing settled) in the payout's currency; see the module
    docstring. The bank gets ``payout.amount``; ``amount + fees == settled + converted``,
    where ``converted`` (its conversion legs in its currency) goes to the conversion account."""
    own = [i for i in payout.items.all() if i.currency == payout.currency]
    dispute_fees = sum((i.fee for i in own if i.category in client.DISPUTE_CATEGORIES), ZERO)
    converted = sum((i.amount for i in own if i.category == CONVERSION), ZERO)
    fees = payout.fees - dispute_fees
    return fees, payout.amount + fees - converted


@dataclass(frozen=True, slots=True)
class _Part:
    """What one item moves on an account: an amount (a debit positive) and its value in the
    functional currency (same sign)."""

    amount: Decimal
    functional: Decimal


def _spec(
    account: Account, currency: str, amount: Decimal, functional: Decimal, memo: str
) -> LineSpec:
    if amount > 0:
        return LineSpec(account, currency, debit=amount, functional=functional, memo=memo)
    return LineSpec(account, currency, credit=-amount, functional=functional, memo=memo)


def _lines(account: Account, currency: str, parts: list[_Part], memo: str = "") -> list[LineSpec]:
    """The parts as one line, or as a debit and a credit line when their functional total
    would fall on the other side than their amount (parts booked at rates far apart)."""
    amount = sum((p.amount for p in parts), ZERO)
    functional = sum((p.functional for p in parts), ZERO)
    if amount and (functional == 0 or (functional > 0) == (amount > 0)):
        return [_spec(account, currency, amount, abs(functional), memo)]
    out = []
    for group in ([p for p in parts if p.amount > 0], [p for p in parts if p.amount < 0]):
        if group:
            out.append(
                _spec(
                    account,
                    currency,
                    sum((p.amount for p in group), ZERO),
                    abs(sum((p.functional for p in group), ZERO)),
                    memo,
                )
            )
    return out


def _payout_accounts(items: list[PayoutItem]) -> dict[str, Account]:
    """The ledger accounts a payout's entry posts to by role; refused when one is missing."""
    wanted = [AccountRole.PROCESSOR_FEES, AccountRole.PROCESSOR_CLEARING]
    if any(i.category == CONVERSION for i in items):
        wanted.append(AccountRole.PROCESSOR_CONVERSION)
    if len({i.currency for i in items}) > 1:
        wanted.append(AccountRole.FX_GAIN_LOSS)
    roles = {a.role: a for a in Account.objects.filter(role__in=wanted) if a.role}
    missing = [AccountRole(r).label.lower() for r in wanted if r not in roles]
    if missing:
        raise PayoutRefused(
            f"The chart of accounts has no {' or '.join(missing)} account.",
            code="no_processor_accounts",
        )
    return roles


def _booked_in_clearing(items: list[PayoutItem], clearing: Account) -> dict[int, Decimal]:
    """By item pk, the functional value billing gave what a linked charge put into processor
    clearing (or a linked refund took out): its payment's (refund's) own clearing line."""
    entry_of: dict[int, int] = {}
    for item in items:
        document: Payment | Refund | None = None
        if item.category == CHARGE:
            document = item.payment
        elif item.category == REFUND:
            document = item.refund
        if document is not None and document.ledger_entry_id is not None:
            entry_of[item.pk] = document.ledger_entry_id
    booked: dict[tuple[int, str, Decimal], Decimal] = {}
    for entry_id, currency, debit, credit, f_debit, f_credit in JournalLine.objects.filter(
        entry_id__in=set(entry_of.values()), account=clearing
    ).values_list(
        "entry_id", "currency", "debit", "credit", "functional_debit", "functional_credit"
    ):
        booked[(entry_id, currency, debit - credit)] = f_debit - f_credit
    found = {}
    for item in items:
        if item.pk in entry_of:
            value = booked.get((entry_of[item.pk], item.currency, item.amount))
            if value is not None:
                found[item.pk] = value
    return found


def payout_lines(
    *, payout: Payout, items: list[PayoutItem], bank_account: Account, entry_date: dt.date
) -> list[LineSpec]:
    """The lines of the payout's entry (see the module docstring): Dr bank, Dr processor
    fees / Cr processor clearing in its currency; with transactions the processor converted
    from other currencies, those currencies' fees and clearing too, both legs of each
    conversion on the conversion account at the same functional value, and per converted
    currency the difference between billing's rates and the processor's to realized FX."""
    accounts = _payout_accounts(items)
    fees_account = accounts[AccountRole.PROCESSOR_FEES]
    clearing = accounts[AccountRole.PROCESSOR_CLEARING]
    currency = payout.currency
    fees, settled = settlement_amounts(payout)
    own_converted = sum(
        (i.amount for i in items if i.category == CONVERSION and i.currency == currency), ZERO
    )
    foreign = sorted({i.currency for i in items} - {currency})
    if not foreign:
        # Converted by the ledger at the entry date's rate, as ever.
        specs = [
            _signed(bank_account, currency, payout.amount),
            _signed(fees_account, currency, fees),
            _signed(clearing, currency, -settled),
        ]
        if own_converted:
            specs.append(
                _signed(accounts[AccountRole.PROCESSOR_CONVERSION], currency, -own_converted)
            )
        return [s for s in specs if s is not None]

    conversion = accounts[AccountRole.PROCESSOR_CONVERSION]
    fx = accounts[AccountRole.FX_GAIN_LOSS]
    functional_currency = system_settings().functional_currency
    rates: dict[str, Decimal] = {}

    def value(cur: str, amount: Decimal) -> Decimal:
        if cur not in rates:
            rates[cur] = fx_rate_get(base=cur, quote=functional_currency, on_date=entry_date)
        return round_storage(amount * rates[cur])

    by_id = {i.balance_transaction_id: i for i in items}
    raw = payout.raw if isinstance(payout.raw, dict) else {}
    found = raw.get("conversions")
    pairs: dict[str, Any] = found if isinstance(found, dict) else {}
    partner_of: dict[str, PayoutItem] = {}
    for item in items:
        other = by_id.get(str(pairs.get(item.balance_transaction_id, "")))
        if item.category == CONVERSION and other is not None and other.currency != item.currency:
            partner_of[item.balance_transaction_id] = other
    # Each conversion's two legs, grouped by the other currency and direction (into the
    # payout's currency, or out of it): one line each side, the same functional value.
    legs: dict[tuple[str, bool], tuple[list[PayoutItem], list[PayoutItem]]] = {}
    unpaired = ZERO
    for item in items:
        if item.category != CONVERSION or item.currency != currency:
            continue
        other = partner_of.get(item.balance_transaction_id)
        if other is None:
            unpaired += item.amount
            continue
        mine, theirs = legs.setdefault((other.currency, item.amount > 0), ([], []))
        mine.append(item)
        theirs.append(other)

    lines: list[LineSpec] = []

    def post(specs: list[LineSpec]) -> Decimal:
        """Add the lines; their functional total (debits positive)."""
        lines.extend(specs)
        return sum(((s.functional or ZERO) * (1 if s.is_debit else -1) for s in specs), ZERO)

    def memo(key: tuple[str, bool]) -> str:
        other, into_payout = key
        return (
            f"{other} converted into {currency}"
            if into_payout
            else (f"{currency} converted into {other}")
        )

    def fx_line(cur: str, left: Decimal) -> None:
        # ``left``: the functional the currency's lines leave unbalanced (debits positive).
        if left:
            lines.append(
                LineSpec.functional_only(
                    fx,
                    cur,
                    debit=-left if left < 0 else ZERO,
                    credit=left if left > 0 else ZERO,
                    memo="Realized FX gain/loss",
                )
            )

    left = post(
        [
            *_lines(bank_account, currency, [_Part(payout.amount, value(currency, payout.amount))]),
            *_lines(fees_account, currency, [_Part(fees, value(currency, fees))]),
            *_lines(clearing, currency, [_Part(-settled, value(currency, -settled))]),
            *_lines(conversion, currency, [_Part(-unpaired, value(currency, -unpaired))]),
        ],
    )
    leg_value: dict[tuple[str, bool], Decimal] = {}
    for key, (mine, _theirs) in sorted(legs.items()):
        amount = sum((i.amount for i in mine), ZERO)
        leg_value[key] = value(currency, amount)
        left += post(_lines(conversion, currency, [_Part(-amount, -leg_value[key])], memo(key)))
    fx_line(currency, left)

    booked = _booked_in_clearing([i for i in items if i.currency != currency], clearing)
    for cur in foreign:
        mine_items = [i for i in items if i.currency == cur]
        dispute_fees = sum(
            (i.fee for i in mine_items if i.category in client.DISPUTE_CATEGORIES), ZERO
        )
        cur_fees = (
            sum((i.fee for i in mine_items), ZERO)
            - sum((i.amount for i in mine_items if i.category == FEE), ZERO)
            - dispute_fees
        )
        settles = []
        for i in mine_items:
            if i.category in (FEE, CONVERSION):
                continue
            part = i.net if i.category in client.DISPUTE_CATEGORIES else i.amount
            settles.append(_Part(-part, -booked.get(i.pk, value(cur, part))))
        cur_left = post(
            [
                *_lines(fees_account, cur, [_Part(cur_fees, value(cur, cur_fees))]),
                *_lines(clearing, cur, settles),
            ]
        )
        paired: set[int] = set()
        for key in sorted(k for k in legs if k[0] == cur):
            amount = sum((i.amount for i in legs[key][1]), ZERO)
            paired.update(i.pk for i in legs[key][1])
            cur_left += post(_lines(conversion, cur, [_Part(-amount, leg_value[key])], memo(key)))
        # A leg whose other one is not in the payout (it does not add up, then) at the day's rate.
        alone = sum(
            (i.amount for i in mine_items if i.category == CONVERSION and i.pk not in paired),
            ZERO,
        )
        cur_left += post(_lines(conversion, cur, [_Part(-alone, value(cur, -alone))]))
        fx_line(cur, cur_left)
    return lines


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
    items = list(payout.items.select_related("payment", "refund").order_by("pk"))
    specs = payout_lines(
        payout=payout, items=items, bank_account=bank.ledger_account, entry_date=line.booking_date
    )
    fees, settled = settlement_amounts(payout)
    currency = payout.currency
    converted = sorted({i.currency for i in items} - {currency})
    entry = journal_post(
        lines=specs,
        entry_date=line.booking_date,
        description=(
            f"{payout_label(payout)} {payout.external_id}: deposit {payout.amount} {currency}, "
            f"fees {fees} {currency}"
            + (f", converted from {', '.join(converted)}" if converted else "")
            + f" (bank line {line.pk})"
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
