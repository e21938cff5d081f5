"""PayPal and Coinbase Commerce settlements, imported once as payouts (``Payout`` rows with
``provider`` "paypal" or "coinbase_commerce") and reconciled exactly as Stripe payouts are.

Each settlement is stored with its transactions, each linked to the payment billing recorded
under the processor's id (PayPal: the capture id; Coinbase: the charge code) and a refund to
billing's refund (by the processor's refund id). It is checked to add up to the penny: gross
+ refunds + disputes + holds + conversions - fees == the deposit; one that does not, or that
names a payment or refund billing has not recorded, or a transaction of an unknown type, is an
exception carrying the difference (``services_exceptions``). The deposit is then proposed by
the matching engine, or reconciled by hand (``services_payouts.payout_reconcile``), which posts
ONE entry: Dr bank (deposit) + Dr processor fees / Cr processor clearing; see
``services_payouts`` for why clearing returns to zero for the settlement's payments.

Imported once: a settlement already stored (same provider and id) keeps its figures; only its
processor status follows, and an exception waiting for billing to record a payment is
re-linked once it has. An import is all or nothing: a malformed or partial report, or an
export restating a stored settlement with other figures, changes nothing.

Settings (read with getattr): PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET, PAYPAL_API_BASE,
PAYPAL_TIMEOUT_SECONDS and PAYPAL_SETTLEMENT_LOOKBACK_DAYS; COINBASE_COMMERCE_API_KEY,
COINBASE_COMMERCE_API_BASE and COINBASE_COMMERCE_TIMEOUT_SECONDS.

Conversions: a PayPal settlement also holds the transactions of another currency PayPal
converted into its own (a EUR payment, its fee and the EUR leg of the conversion; see
``payouts.paypal_settlements``), linked to billing like the rest; that currency's items must
net to zero. Applying it settles each currency's clearing in its own currency, the conversion's
two legs joined on the processor conversion account (``services_payouts``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import Payment, Refund
from reconciliation import services_exceptions
from reconciliation.actors import acting_user, permission_check
from reconciliation.audit import audit_record
from reconciliation.enums import AuditAction, ExceptionKind, PayoutStatus
from reconciliation.exceptions import ProcessorNotConfigured, ReconciliationError
from reconciliation.models import BankAccount, Payout, PayoutItem
from reconciliation.payouts import coinbase_settlements as coinbase
from reconciliation.payouts import paypal_settlements as paypal
from reconciliation.payouts.settlements import (
    CHARGE,
    DISPUTE,
    REFUND,
    PayoutProblem,
    ReportError,
    Settlement,
    SettlementItem,
    settlement_check,
    settlement_totals,
)
from reconciliation.services_payouts import (
    IMPORT,
    PROCESSOR_LABELS,
    PayoutImportResult,
    mismatch_key,
    payout_refresh,
)

# Without ``since``: withdrawals of the last two weeks, and the month before them read to find
# where the first one began.
IMPORT_LOOKBACK_DAYS = 14
DEFAULT_SETTLEMENT_LOOKBACK_DAYS = 31
# Categories whose items must be billing's payments (and refunds).
LINKED = frozenset({CHARGE, REFUND, DISPUTE})


class SettlementRefused(ReconciliationError):
    """The settlement report or export is malformed or partial: nothing was imported."""

    code = "settlement_refused"


class SettlementConflict(ReconciliationError):
    """The export restates a settlement imported before with other figures (HTTP 409)."""

    code = "settlement_conflict"
    status_code = 409


def paypal_config() -> paypal.PayPalConfig:
    """The PayPal REST credentials of the settings (those billing uses); refused if unset."""
    client_id = getattr(settings, "PAYPAL_CLIENT_ID", "") or ""
    secret = getattr(settings, "PAYPAL_CLIENT_SECRET", "") or ""
    if not client_id or not secret:
        raise ProcessorNotConfigured(
            "PayPal is not configured (PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET are not set).",
        )
    return paypal.PayPalConfig(
        client_id=client_id,
        client_secret=secret,
        api_base=(getattr(settings, "PAYPAL_API_BASE", "") or paypal.DEFAULT_API_BASE).rstrip("/"),
        timeout_seconds=float(getattr(settings, "PAYPAL_TIMEOUT_SECONDS", 30.0)),
    )


def coinbase_config() -> coinbase.CoinbaseConfig:
    """The Coinbase Commerce API key of the settings (billing's); refused if unset."""
    api_key = getattr(settings, "COINBASE_COMMERCE_API_KEY", "") or ""
    if not api_key:
        raise ProcessorNotConfigured(
            "Coinbase Commerce is not configured (COINBASE_COMMERCE_API_KEY is not set).",
        )
    base = getattr(settings, "COINBASE_COMMERCE_API_BASE", "") or coinbase.DEFAULT_API_BASE
    return coinbase.CoinbaseConfig(
        api_key=api_key,
        api_base=base.rstrip("/"),
        timeout_seconds=float(getattr(settings, "COINBASE_COMMERCE_TIMEOUT_SECONDS", 30.0)),
    )


# --- import --------------------------------------------------------------------------------


def paypal_settlements_import(
    *,
    actor: Any,
    since: dt.date | None = None,
    until: dt.date | None = None,
    config: paypal.PayPalConfig | None = None,
) -> PayoutImportResult:
    """Read PayPal's transaction report and store each withdrawal made from ``since`` (two
    weeks back by default) to ``until`` (today) as a settlement, once. PayPal failing or a
    malformed report raises FeedError (502) with nothing written. ``actor`` None: the task."""
    permission_check(actor, IMPORT, "importing settlements", system_allowed=True)
    config = config or paypal_config()
    today = timezone.localdate()
    arrival_to = until or today
    arrival_from = since or arrival_to - dt.timedelta(days=IMPORT_LOOKBACK_DAYS)
    if arrival_from > arrival_to:
        raise SettlementRefused("since is after until.", field="since")
    lookback = int(
        getattr(settings, "PAYPAL_SETTLEMENT_LOOKBACK_DAYS", DEFAULT_SETTLEMENT_LOOKBACK_DAYS)
    )
    # The provider is called outside any transaction.
    fetched = paypal.paypal_settlements_list(
        config=config, arrival_from=arrival_from, arrival_to=arrival_to, lookback_days=lookback
    )
    return _import(
        paypal.PROVIDER,
        fetched,
        actor,
        {"arrival_from": arrival_from.isoformat(), "arrival_to": arrival_to.isoformat()},
        restated_is_conflict=False,
    )


def coinbase_settlement_import(
    *, actor: Any, data: bytes, config: coinbase.CoinbaseConfig | None = None
) -> PayoutImportResult:
    """Import one Coinbase Commerce settlement export (see ``payouts.coinbase_settlements``
    for its shape), its charges read from Coinbase. A malformed export or a charge Coinbase
    does not know is refused (400), Coinbase failing is a FeedError (502), an export restating
    a stored settlement with other figures a conflict (409): each with nothing written. The
    same export again changes nothing."""
    permission_check(actor, IMPORT, "importing settlements", system_allowed=False)
    config = config or coinbase_config()
    try:
        settlement = coinbase.coinbase_settlement_read(data=data, config=config)
    except ReportError as exc:
        raise SettlementRefused(f"The Coinbase Commerce export is refused: {exc}") from None
    return _import(coinbase.PROVIDER, [settlement], actor, {}, restated_is_conflict=True)


def _import(
    provider: str,
    fetched: Sequence[Settlement],
    actor: Any,
    details: dict[str, Any],
    *,
    restated_is_conflict: bool,
) -> PayoutImportResult:
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    exceptions = 0
    # All or nothing: one settlement that cannot be stored leaves none stored.
    with transaction.atomic():
        for data in fetched:
            outcome, payout = _store(data, actor, restated_is_conflict=restated_is_conflict)
            counts[outcome] += 1
            if outcome == "created" and payout.status == PayoutStatus.EXCEPTION:
                exceptions += 1
        result = PayoutImportResult(fetched=len(fetched), exceptions=exceptions, **counts)
        audit_record(
            action=AuditAction.PAYOUT_IMPORTED,
            actor=actor,
            subject=f"{provider}:settlements",
            reason=f"{PROCESSOR_LABELS[provider]} settlements import",
            details={
                **details,
                "settlements": [s.id for s in fetched],
                "fetched": result.fetched,
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "exceptions": result.exceptions,
            },
        )
    return result


def _bank_account_for(currency: str) -> BankAccount | None:
    accounts = list(BankAccount.objects.filter(currency=currency, is_active=True)[:2])
    return accounts[0] if len(accounts) == 1 else None


def _links(
    provider: str, items: Sequence[SettlementItem]
) -> tuple[dict[str, Payment], dict[str, Refund]]:
    """Billing's payments of this processor by charge id, and its refunds by refund id."""
    charge_ids = {i.charge_id for i in items if i.charge_id}
    refund_ids = {i.refund_id for i in items if i.refund_id}
    payments = {
        p.processor_charge_id: p
        for p in Payment.objects.filter(processor=provider, processor_charge_id__in=charge_ids)
        if p.processor_charge_id
    }
    refunds = {
        r.processor_refund_id: r
        for r in Refund.objects.filter(processor_refund_id__in=refund_ids)
        if r.processor_refund_id
    }
    return payments, refunds


def _link_problems(
    data: Settlement, payments: dict[str, Payment], refunds: dict[str, Refund]
) -> list[PayoutProblem]:
    """Every linked item billing does not know, or knows at another amount: clearing would not
    come back to zero."""
    label = PROCESSOR_LABELS[data.provider]
    problems: list[PayoutProblem] = []
    for item in data.items:
        if item.category not in LINKED:
            continue
        payment = payments.get(item.charge_id)
        if payment is None:
            problems.append(
                PayoutProblem(
                    "unknown_payment",
                    f"{item.id} ({item.category} {item.amount} {item.currency}) is for "
                    f"{label} payment {item.charge_id or '(unnamed)'}, which matches no "
                    "payment recorded in billing.",
                    item_id=item.id,
                )
            )
            continue
        if item.category == CHARGE and (
            payment.currency != item.currency or payment.amount.amount != item.amount
        ):
            problems.append(
                PayoutProblem(
                    "payment_amount_differs",
                    f"{item.id}: {label} took {item.amount} {item.currency}, billing recorded "
                    f"payment {payment.pk} at {payment.amount.amount} {payment.currency}.",
                    item_id=item.id,
                    expected=payment.amount.amount,
                    actual=item.amount,
                )
            )
        if item.category != REFUND:
            continue
        refund = refunds.get(item.refund_id)
        if refund is None:
            problems.append(
                PayoutProblem(
                    "unrecorded_refund",
                    f"{item.id}: refund {item.refund_id} of {-item.amount} {item.currency} is "
                    "not recorded in billing.",
                    item_id=item.id,
                )
            )
        elif refund.payment_id != payment.pk or refund.amount.amount != -item.amount:
            problems.append(
                PayoutProblem(
                    "refund_differs",
                    f"{item.id}: billing's refund {refund.pk} is {refund.amount.amount} "
                    f"{refund.currency} of payment {refund.payment_id}, {label} refunded "
                    f"{-item.amount} {item.currency} of {item.charge_id}.",
                    item_id=item.id,
                    expected=refund.amount.amount,
                    actual=-item.amount,
                )
            )
    return problems


def _problems(
    data: Settlement,
) -> tuple[list[PayoutProblem], dict[str, Payment], dict[str, Refund]]:
    payments, refunds = _links(data.provider, data.items)
    return settlement_check(data) + _link_problems(data, payments, refunds), payments, refunds


def _store(data: Settlement, actor: Any, *, restated_is_conflict: bool) -> tuple[str, Payout]:
    existing = (
        Payout.objects.select_for_update()
        .filter(provider=data.provider, external_id=data.id)
        .first()
    )
    if existing is None:
        return "created", _create(data, actor)
    if restated_is_conflict and _figures_differ(existing, data):
        raise SettlementConflict(
            f"{PROCESSOR_LABELS[data.provider]} settlement {data.id} was imported before with "
            "other figures; nothing was changed.",
            code="settlement_restated",
        )
    return _refresh(existing, data, actor)


def _figures_differ(payout: Payout, data: Settlement) -> bool:
    stored = sorted(
        (i.balance_transaction_id, i.amount, i.fee, i.net)
        for i in payout.items.all().order_by("pk")
    )
    given = sorted((i.id, i.amount, i.fee, i.net) for i in data.items)
    return (payout.amount, payout.currency) != (data.amount, data.currency) or stored != given


def _create(data: Settlement, actor: Any) -> Payout:
    totals = settlement_totals(data)
    problems, payments, refunds = _problems(data)
    payout = Payout.objects.create(
        provider=data.provider,
        external_id=data.id[:100],
        bank_account=_bank_account_for(data.currency),
        amount=data.amount,
        currency=data.currency,
        arrival_date=data.arrival_date,
        provider_status=data.status[:20],
        automatic=True,
        charges=totals.charges,
        refunds=totals.refunds,
        disputes=totals.disputes,
        fees=totals.fees,
        other=totals.other,
        holds=totals.holds,
        conversions=totals.conversions,
        status=PayoutStatus.EXCEPTION if problems else PayoutStatus.IMPORTED,
        problem="\n".join(p.message for p in problems),
        imported_by=acting_user(actor),
        raw=dict(data.raw),
    )
    PayoutItem.objects.bulk_create(
        [
            PayoutItem(
                payout=payout,
                balance_transaction_id=item.id[:100],
                category=item.category[:40],
                source_id=item.source_id[:100],
                charge_id=item.charge_id[:100],
                amount=item.amount,
                fee=item.fee,
                net=item.net,
                currency=item.currency,
                description=item.description[:300],
                payment=payments.get(item.charge_id) if item.charge_id else None,
                refund=refunds.get(item.refund_id) if item.refund_id else None,
            )
            for item in data.items
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
            "provider": payout.provider,
            "external_id": payout.external_id,
            "amount": str(payout.amount),
            "currency": payout.currency,
            "fees": str(payout.fees),
            "items": len(data.items),
            "status": payout.status,
            "problems": [p.code for p in problems],
        },
    )
    return payout


def _raise_mismatch(payout: Payout, problems: list[PayoutProblem]) -> None:
    difference = next((p.difference for p in problems if p.difference is not None), None)
    text = "\n".join(p.message for p in problems)
    services_exceptions.exception_raise(
        kind=ExceptionKind.PAYOUT_MISMATCH,
        key=mismatch_key(payout),
        message=f"{PROCESSOR_LABELS[payout.provider]} settlement {payout.external_id}: {text}"[
            :4000
        ],
        bank_account_id=payout.bank_account_id,
        payout_id=payout.pk,
        amount=payout.amount,
        difference=difference,
        currency=payout.currency,
    )


def _refresh(payout: Payout, data: Settlement, actor: Any) -> tuple[str, Payout]:
    return payout_refresh(
        payout,
        status=data.status,
        relink=lambda: _relink(payout, data),
        relinked="its payments and refunds are recorded now: imported",
        actor=actor,
    )


def _relink(payout: Payout, data: Settlement) -> bool:
    """An exception whose items are the same and now all add up and link: imported."""
    if _figures_differ(payout, data):
        return False
    problems, payments, refunds = _problems(data)
    if problems:
        return False
    for item in payout.items.all():
        payment = payments.get(item.charge_id) if item.charge_id else None
        refund = refunds.get(item.balance_transaction_id) if item.category == REFUND else None
        if (payment and item.payment_id != payment.pk) or (refund and item.refund_id != refund.pk):
            item.payment = payment
            item.refund = refund
            item.save(update_fields=["payment", "refund"])
    payout.status = PayoutStatus.IMPORTED
    payout.problem = ""
    payout.save(update_fields=["status", "problem"])
    services_exceptions.exception_clear(
        key=mismatch_key(payout), note="The settlement adds up now."
    )
    return True
