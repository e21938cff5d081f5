"""Stripe payouts and the balance transactions they pay out, through the stripe SDK.

A Stripe payout is one bank deposit that settles many charges net of their fees, less refunds,
disputes and other adjustments. ``BalanceTransaction.list(payout=po_...)`` itemises an
automatic payout (Stripe cannot itemise a manual one); the list includes the payout's own
balance transaction (type ``payout``, amount minus the payout), which is kept apart here.

Stripe amounts are integers in the currency's minor unit as Stripe defines it, which is ISO
4217's (``core.money.minor_unit_exponent``) except ISK, two-decimal in Stripe's API, and MGA,
zero-decimal in Stripe's API (https://docs.stripe.com/currencies#special-cases).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import stripe

from core.money import minor_unit_exponent
from reconciliation.feeds.errors import FeedError, FeedErrorCode

PROVIDER = "stripe"
# Where Stripe's API disagrees with ISO 4217 on a currency's decimals.
STRIPE_EXPONENT_OVERRIDES = {"ISK": 2, "MGA": 0}
REFUND_CATEGORIES = frozenset({"refund", "refund_failure", "partial_capture_reversal"})
DISPUTE_CATEGORIES = frozenset({"dispute", "dispute_reversal"})
FEE_CATEGORIES = frozenset({"fee"})


@dataclass(frozen=True)
class StripeConfig:
    """The caller's Stripe key and API base (a local fake in tests). The SDK retries
    connection errors, 429 and 5xx itself, ``max_network_retries`` times with backoff."""

    api_key: str
    api_base: str | None = None
    timeout_seconds: float = 30.0
    max_network_retries: int = 2


def stripe_exponent(currency: str) -> int:
    code = currency.upper()
    if code in STRIPE_EXPONENT_OVERRIDES:
        return STRIPE_EXPONENT_OVERRIDES[code]
    return minor_unit_exponent(code)


def amount_from_minor(minor: Any, currency: str, *, where: str = "amount") -> Decimal:
    """Stripe's integer minor units as an exact Decimal: (1912, "usd") -> 19.12,
    (1999, "jpy") -> 1999. Anything but an integer is refused, never rounded."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise FeedError(
            f"Stripe {where} is {minor!r}, not an integer number of minor units of "
            f"{currency.upper()}.",
            code=FeedErrorCode.BAD_RESPONSE,
            provider=PROVIDER,
        )
    return Decimal(minor).scaleb(-stripe_exponent(currency))


@dataclass(frozen=True)
class FeeDetail:
    amount: Decimal
    currency: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class PayoutItem:
    """One balance transaction of a payout. ``amount`` is gross, ``fee`` what Stripe kept
    (positive), ``net = amount - fee`` what it adds to the payout; all signed, in the
    payout's currency."""

    id: str
    type: str
    reporting_category: str
    amount: Decimal
    fee: Decimal
    net: Decimal
    currency: str
    source_id: str = ""
    description: str = ""
    created_at: dt.datetime | None = None
    # The charge behind the item (the charge itself, a refund's or a dispute's charge).
    charge_id: str = ""
    customer: str = ""
    payment_intent: str = ""
    invoice: str = ""
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    fee_details: tuple[FeeDetail, ...] = ()

    @property
    def category(self) -> str:
        return self.reporting_category or self.type


@dataclass(frozen=True)
class Payout:
    id: str
    arrival_date: dt.date
    amount: Decimal
    currency: str
    status: str
    automatic: bool = True
    created_at: dt.datetime | None = None
    balance_transaction_id: str = ""
    failure_code: str = ""
    description: str = ""
    items: tuple[PayoutItem, ...] = ()
    # The payout's own balance transaction (type "payout"), when Stripe listed it.
    payout_transaction: PayoutItem | None = None


@dataclass(frozen=True)
class PayoutTotals:
    """``charges + refunds + disputes + other - fees == net``: fees (positive) are the fees
    withheld on items plus standalone fee items (e.g. Radar, billing)."""

    currency: str
    gross: Decimal
    charges: Decimal
    refunds: Decimal
    disputes: Decimal
    other: Decimal
    fees: Decimal
    net: Decimal
    count: int


@dataclass(frozen=True)
class PayoutProblem:
    """Why a payout does not reconcile; ``difference = actual - expected`` when both apply."""

    code: str
    message: str
    item_id: str = ""
    expected: Decimal | None = None
    actual: Decimal | None = None

    @property
    def difference(self) -> Decimal | None:
        if self.expected is None or self.actual is None:
            return None
        return self.actual - self.expected


# --- pure conversion --------------------------------------------------------------------


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj or {})


def _id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    return None


def item_from(obj: Mapping[str, Any] | Any) -> PayoutItem:
    """A PayoutItem from a BalanceTransaction (SDK object or API JSON), its ``source``
    expanded or not."""
    data = _as_dict(obj)
    txn_id = str(data.get("id") or "")
    currency = str(data.get("currency") or "").upper()
    where = f"balance transaction {txn_id}"
    source = data.get("source")
    source_data: Mapping[str, Any] = source if isinstance(source, Mapping) else {}
    source_object = str(source_data.get("object") or "")
    if source_object == "charge":
        charge_id = _id_of(source_data)
    else:
        charge_id = _id_of(source_data.get("charge"))
    metadata = source_data.get("metadata") or {}
    fee_details = tuple(
        FeeDetail(
            amount=amount_from_minor(
                d.get("amount"), str(d.get("currency") or currency), where=f"{where} fee_details"
            ),
            currency=str(d.get("currency") or currency).upper(),
            type=str(d.get("type") or ""),
            description=str(d.get("description") or ""),
        )
        for d in data.get("fee_details") or []
    )
    return PayoutItem(
        id=txn_id,
        type=str(data.get("type") or ""),
        reporting_category=str(data.get("reporting_category") or ""),
        amount=amount_from_minor(data.get("amount"), currency, where=f"{where} amount"),
        fee=amount_from_minor(data.get("fee", 0), currency, where=f"{where} fee"),
        net=amount_from_minor(data.get("net"), currency, where=f"{where} net"),
        currency=currency,
        source_id=_id_of(source),
        description=str(data.get("description") or ""),
        created_at=_timestamp(data.get("created")),
        charge_id=charge_id,
        customer=_id_of(source_data.get("customer")),
        payment_intent=_id_of(source_data.get("payment_intent")),
        invoice=_id_of(source_data.get("invoice")),
        metadata={str(k): str(v) for k, v in metadata.items()},
        fee_details=fee_details,
    )


def payout_from(obj: Mapping[str, Any] | Any, transactions: Iterable[Any] = ()) -> Payout:
    """A Payout from a Stripe Payout object and the balance transactions listed for it."""
    data = _as_dict(obj)
    payout_id = str(data.get("id") or "")
    currency = str(data.get("currency") or "").upper()
    arrival = _timestamp(data.get("arrival_date"))
    if not payout_id or not currency or arrival is None:
        raise FeedError(
            f"Stripe payout {payout_id or '?'} has no id, currency or arrival_date.",
            code=FeedErrorCode.BAD_RESPONSE,
            provider=PROVIDER,
        )
    items: list[PayoutItem] = []
    own: PayoutItem | None = None
    for txn in transactions:
        item = item_from(txn)
        if item.type == "payout" and item.source_id == payout_id:
            own = item
        else:
            items.append(item)
    return Payout(
        id=payout_id,
        arrival_date=arrival.date(),
        amount=amount_from_minor(data.get("amount"), currency, where=f"payout {payout_id}"),
        currency=currency,
        status=str(data.get("status") or ""),
        automatic=bool(data.get("automatic", True)),
        created_at=_timestamp(data.get("created")),
        balance_transaction_id=_id_of(data.get("balance_transaction")),
        failure_code=str(data.get("failure_code") or ""),
        description=str(data.get("description") or ""),
        items=tuple(items),
        payout_transaction=own,
    )


def payout_totals(payout: Payout) -> PayoutTotals:
    zero = Decimal(0).scaleb(-stripe_exponent(payout.currency))
    charges = refunds = disputes = other = fees = net = gross = zero
    for item in payout.items:
        gross += item.amount
        net += item.net
        fees += item.fee
        category = item.category
        if category == "charge":
            charges += item.amount
        elif category in REFUND_CATEGORIES:
            refunds += item.amount
        elif category in DISPUTE_CATEGORIES:
            disputes += item.amount
        elif category in FEE_CATEGORIES or item.type == "stripe_fee":
            fees -= item.amount
        else:
            other += item.amount
    return PayoutTotals(
        currency=payout.currency,
        gross=gross,
        charges=charges,
        refunds=refunds,
        disputes=disputes,
        other=other,
        fees=fees,
        net=net,
        count=len(payout.items),
    )


def payout_check(payout: Payout) -> list[PayoutProblem]:
    """Everything that keeps the payout from reconciling to the penny; empty when it does.

    The items' nets must add up exactly to the payout amount; each item must be in the
    payout's currency with ``amount - fee == net`` and a fee equal to its fee details; the
    payout's own balance transaction, when listed, must be minus the payout amount.
    """
    problems: list[PayoutProblem] = []
    if payout.status in ("failed", "canceled"):
        reason = f" ({payout.failure_code})" if payout.failure_code else ""
        problems.append(
            PayoutProblem(
                "payout_not_paid", f"Payout {payout.id} is {payout.status}{reason}: no deposit."
            )
        )
    if not payout.items:
        why = (
            "Stripe does not itemise manual payouts"
            if not payout.automatic
            else "no balance transactions were listed for it"
        )
        problems.append(
            PayoutProblem(
                "no_items",
                f"Payout {payout.id} of {payout.amount} {payout.currency} cannot be itemised: "
                f"{why}.",
                expected=payout.amount,
                actual=Decimal(0),
            )
        )
        return problems
    for item in payout.items:
        if item.currency != payout.currency:
            problems.append(
                PayoutProblem(
                    "currency_mismatch",
                    f"{item.id} is in {item.currency}, the payout in {payout.currency}.",
                    item_id=item.id,
                )
            )
            continue
        if item.amount - item.fee != item.net:
            problems.append(
                PayoutProblem(
                    "item_net_mismatch",
                    f"{item.id}: amount {item.amount} - fee {item.fee} is not net {item.net}.",
                    item_id=item.id,
                    expected=item.amount - item.fee,
                    actual=item.net,
                )
            )
        if item.fee_details:
            detailed = sum((d.amount for d in item.fee_details), Decimal(0))
            if detailed != item.fee:
                problems.append(
                    PayoutProblem(
                        "fee_details_mismatch",
                        f"{item.id}: fee {item.fee} but its fee details add up to {detailed}.",
                        item_id=item.id,
                        expected=item.fee,
                        actual=detailed,
                    )
                )
    net = sum((i.net for i in payout.items if i.currency == payout.currency), Decimal(0))
    if net != payout.amount:
        problems.append(
            PayoutProblem(
                "net_mismatch",
                f"Payout {payout.id}: its {len(payout.items)} transactions net to {net} "
                f"{payout.currency}, the payout is {payout.amount} {payout.currency} "
                f"(difference {net - payout.amount}).",
                expected=payout.amount,
                actual=net,
            )
        )
    own = payout.payout_transaction
    if own is not None and own.amount != -payout.amount:
        problems.append(
            PayoutProblem(
                "payout_transaction_mismatch",
                f"Payout {payout.id}: its own balance transaction {own.id} is {own.amount}, "
                f"not {-payout.amount}.",
                item_id=own.id,
                expected=-payout.amount,
                actual=own.amount,
            )
        )
    return problems


# --- the SDK ----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _client(config: StripeConfig) -> Any:
    return stripe.StripeClient(
        config.api_key,
        base_addresses={"api": config.api_base} if config.api_base else None,
        http_client=stripe.RequestsClient(timeout=config.timeout_seconds),
        max_network_retries=config.max_network_retries,
    )


def _error_from(exc: stripe.StripeError) -> FeedError:
    status = exc.http_status or 0
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        code = FeedErrorCode.INVALID_CREDENTIALS
    elif isinstance(exc, stripe.RateLimitError) or status == 429:
        code = FeedErrorCode.RATE_LIMITED
    elif isinstance(exc, stripe.APIConnectionError) or status >= 500 or status == 0:
        code = FeedErrorCode.PROVIDER_UNAVAILABLE
    else:
        code = FeedErrorCode.INVALID_REQUEST
    message = str(exc.user_message or exc) or type(exc).__name__
    return FeedError(
        f"Stripe {exc.code or type(exc).__name__}: {message}",
        code=code,
        provider=PROVIDER,
        provider_code=str(exc.code or ""),
        http_status=status or None,
        request_id=str(exc.request_id or ""),
    )


def _iterate(page_fn: Any, params: dict[str, Any]) -> Iterator[Any]:
    try:
        yield from page_fn(params=params).auto_paging_iter()
    except stripe.StripeError as exc:
        raise _error_from(exc) from None


def stripe_payout_transactions(*, config: StripeConfig, payout_id: str) -> list[Any]:
    """Every balance transaction of an automatic payout, sources expanded, all pages."""
    params = {"payout": payout_id, "limit": 100, "expand": ["data.source"]}
    return list(_iterate(_client(config).v1.balance_transactions.list, params))


def stripe_payout_get(*, config: StripeConfig, payout_id: str) -> Payout:
    """One payout with its items."""
    try:
        obj = _client(config).v1.payouts.retrieve(payout_id)
    except stripe.StripeError as exc:
        raise _error_from(exc) from None
    return _with_items(config, obj)


def _with_items(config: StripeConfig, obj: Any) -> Payout:
    data = _as_dict(obj)
    if data.get("automatic", True) is False:
        return payout_from(data)
    return payout_from(data, stripe_payout_transactions(config=config, payout_id=data["id"]))


def stripe_payouts_list(
    *, config: StripeConfig, arrival_from: dt.date, arrival_to: dt.date, status: str = ""
) -> list[Payout]:
    """Payouts arriving from ``arrival_from`` to ``arrival_to`` (inclusive, UTC dates as
    Stripe's ``arrival_date``), each with its items, oldest arrival first."""
    if arrival_from > arrival_to:
        raise ValueError("arrival_from is after arrival_to")
    start = dt.datetime.combine(arrival_from, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(arrival_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    params: dict[str, Any] = {
        "arrival_date": {"gte": int(start.timestamp()), "lt": int(end.timestamp())},
        "limit": 100,
    }
    if status:
        params["status"] = status
    payouts = [_with_items(config, p) for p in _iterate(_client(config).v1.payouts.list, params)]
    return sorted(payouts, key=lambda p: (p.arrival_date, p.id))
