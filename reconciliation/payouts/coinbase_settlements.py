"""Coinbase Commerce settlements: the merchant's settlement export, its charges read back
from the Commerce API.

Coinbase Commerce documents no settlement or payout report API (its REST API has charges,
checkouts and events: https://docs.cdp.coinbase.com/commerce/). So a settlement is imported
from a JSON export the merchant downloads (or writes from Coinbase's dashboard report) and
uploads; its shape is ours, written down here and in the README's design notes::

    {
      "settlement": {"id": "…", "status": "completed" | "pending" | "failed",
                     "currency": "USD", "amount": "158.25",
                     "settled_at": "2025-11-20T12:00:00Z"},
      "charges": [{"code": "ABCD1234"}, …],
      "refunds": [{"id": "…", "charge_code": "ABCD1234",
                   "amount": {"amount": "15.00", "currency": "USD"},
                   "fee": {"amount": "0.00", "currency": "USD"}}]
    }

Amounts are decimal strings in the currency's minor unit, as Coinbase writes them. The export
only groups: what each charge paid and what Coinbase kept is read from the API
(``GET /charges/{code}``, headers ``X-CC-Api-Key`` and ``X-CC-Version``, documented), from the
charge's ``payments[]``: ``value.local`` (documented, the amount paid in the local currency),
``net.local`` and ``coinbase_processing_fee.local`` (present on Commerce charges but not in
the current reference: assumed), and ``network_fee.local`` when Coinbase charged the merchant
a network fee (assumed). Only CONFIRMED payments count. A charge is linked to billing's
payment by its ``code`` (billing records Coinbase payments under the charge code).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from reconciliation.feeds.errors import FeedError, FeedErrorCode
from reconciliation.payouts.settlements import (
    CHARGE,
    REFUND,
    PayoutProblem,
    ReportError,
    Settlement,
    SettlementItem,
    decimal_amount,
)

PROVIDER = "coinbase_commerce"
DEFAULT_API_BASE = "https://api.commerce.coinbase.com"
API_VERSION = "2018-03-22"
MAX_CHARGES = 5000
STATUSES = {"completed": "paid", "paid": "paid", "pending": "pending", "failed": "failed"}
# The statuses (timeline or top-level) of a charge whose payment is final.
PAID = frozenset({"COMPLETED", "RESOLVED"})


@dataclass(frozen=True)
class CoinbaseConfig:
    api_key: str
    api_base: str = DEFAULT_API_BASE
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Export:
    id: str
    status: str
    currency: str
    amount: Decimal
    settled_at: dt.datetime
    charge_codes: tuple[str, ...]
    refunds: tuple[SettlementItem, ...]


# --- parsing (pure) ------------------------------------------------------------------------


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReportError("not an object", where=where)
    return value


def _money(node: Any, *, where: str) -> tuple[Decimal, str]:
    data = _obj(node, where)
    currency = str(data.get("currency") or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ReportError(f"currency {data.get('currency')!r}", where=where)
    return decimal_amount(data.get("amount"), currency, where=where), currency


def _datetime(value: Any, *, where: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value or "").replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"date {value!r} is not an ISO 8601 date-time", where=where) from None
    if parsed.tzinfo is None:
        raise ReportError(f"date {value!r} has no time zone", where=where)
    return parsed.astimezone(dt.UTC)


def export_from(data: bytes) -> Export:
    """The export, checked whole (ReportError naming the part that is wrong)."""
    try:
        body = json.loads(data.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ReportError("the file is not JSON (UTF-8)") from None
    root = _obj(body, "the file")
    head = _obj(root.get("settlement"), "settlement")
    settlement_id = str(head.get("id") or "").strip()
    if not settlement_id or len(settlement_id) > 100:
        raise ReportError("no id (or longer than 100 characters)", where="settlement")
    status = STATUSES.get(str(head.get("status") or "").lower())
    if status is None:
        raise ReportError(f"status {head.get('status')!r}", where="settlement")
    amount, currency = _money(
        {"amount": head.get("amount"), "currency": head.get("currency")}, where="settlement"
    )
    charges = root.get("charges")
    if not isinstance(charges, list) or len(charges) > MAX_CHARGES:
        raise ReportError(f"not a list of at most {MAX_CHARGES}", where="charges")
    codes: list[str] = []
    for index, charge in enumerate(charges):
        code = str(_obj(charge, f"charges[{index}]").get("code") or "").strip()
        if not code or not code.isalnum() or len(code) > 40:
            raise ReportError(f"code {code!r}", where=f"charges[{index}]")
        if code in codes:
            raise ReportError(f"charge {code} is listed twice", where=f"charges[{index}]")
        codes.append(code)
    refunds_in = root.get("refunds", [])
    if not isinstance(refunds_in, list):
        raise ReportError("not a list", where="refunds")
    refunds: list[SettlementItem] = []
    for index, raw in enumerate(refunds_in):
        where = f"refunds[{index}]"
        refund = _obj(raw, where)
        refund_id = str(refund.get("id") or "").strip()
        charge_code = str(refund.get("charge_code") or "").strip()
        if not refund_id or not charge_code:
            raise ReportError("no id or charge_code", where=where)
        value, cur = _money(refund.get("amount"), where=f"{where}.amount")
        fee, fee_cur = (
            _money(refund["fee"], where=f"{where}.fee")
            if refund.get("fee") is not None
            else (Decimal(0), cur)
        )
        if value <= 0 or fee < 0 or fee_cur != cur:
            raise ReportError(
                "amount not positive, fee negative or in another currency", where=where
            )
        refunds.append(
            SettlementItem(
                id=refund_id,
                category=REFUND,
                amount=-value,
                fee=fee,
                net=-value - fee,
                currency=cur,
                charge_id=charge_code,
                refund_id=refund_id,
                description=f"refund of charge {charge_code}",
            )
        )
    return Export(
        id=settlement_id,
        status=status,
        currency=currency,
        amount=amount,
        settled_at=_datetime(head.get("settled_at"), where="settlement.settled_at"),
        charge_codes=tuple(codes),
        refunds=tuple(refunds),
    )


def _local(payment: Mapping[str, Any], name: str, where: str) -> tuple[Decimal, str] | None:
    node = payment.get(name)
    if node is None:
        return None
    local = _obj(node, f"{where}.{name}").get("local")
    if local is None:
        return None
    return _money(local, where=f"{where}.{name}.local")


def _charge_status(charge: Mapping[str, Any]) -> str:
    timeline = charge.get("timeline")
    if isinstance(timeline, list) and timeline and isinstance(timeline[-1], Mapping):
        return str(timeline[-1].get("status") or "")
    return str(charge.get("status") or "")


def charge_items(charge: Any, code: str) -> tuple[list[SettlementItem], list[PayoutProblem]]:
    """The confirmed payments of a charge as settlement items (ReportError if malformed),
    with a problem when the charge is not paid in full."""
    where = f"charge {code}"
    data = _obj(charge, where)
    if str(data.get("code") or "") != code:
        raise ReportError(f"the API answered charge {data.get('code')!r}", where=where)
    payments = data.get("payments") or []
    if not isinstance(payments, list):
        raise ReportError("payments is not a list", where=where)
    items: list[SettlementItem] = []
    for index, raw in enumerate(payments):
        pwhere = f"{where} payments[{index}]"
        payment = _obj(raw, pwhere)
        if str(payment.get("status") or "").upper() != "CONFIRMED":
            continue
        value = _local(payment, "value", pwhere)
        if value is None:
            raise ReportError("no value.local", where=pwhere)
        amount, currency = value
        net = _local(payment, "net", pwhere)
        processing = _local(payment, "coinbase_processing_fee", pwhere)
        network = _local(payment, "network_fee", pwhere)
        for part in (net, processing, network):
            if part is not None and part[1] != currency:
                raise ReportError(f"a part in {part[1]}, the value in {currency}", where=pwhere)
        if net is None and processing is None:
            raise ReportError("neither net.local nor coinbase_processing_fee.local", where=pwhere)
        fee = (
            (processing[0] if processing else Decimal(0)) + (network[0] if network else 0)
            if processing is not None
            else amount - net[0]  # type: ignore[index]
        )
        items.append(
            SettlementItem(
                id=str(payment.get("transaction_id") or f"{code}:{index}")[:100],
                category=CHARGE,
                amount=amount,
                fee=fee,
                net=net[0] if net is not None else amount - fee,
                currency=currency,
                charge_id=code,
                source_id=str(data.get("id") or ""),
                description=f"charge {code} {payment.get('network') or ''}".strip(),
                created_at=None,
            )
        )
    problems = []
    status = _charge_status(data).upper()
    if status not in PAID or not items:
        problems.append(
            PayoutProblem(
                "charge_not_completed",
                f"Charge {code} is {status or 'of no status'} with {len(items)} confirmed "
                "payment(s): it cannot be settled.",
                item_id=code,
            )
        )
    return items, problems


def settlement_from(export: Export, charges: Mapping[str, Any]) -> Settlement:
    """The settlement of an export, its charges as the API returned them (by code)."""
    items: list[SettlementItem] = []
    notes: list[PayoutProblem] = []
    for code in export.charge_codes:
        found, problems = charge_items(charges[code], code)
        items.extend(found)
        notes.extend(problems)
    items.extend(export.refunds)
    return Settlement(
        provider=PROVIDER,
        id=export.id,
        amount=export.amount,
        currency=export.currency,
        arrival_date=export.settled_at.date(),
        status=export.status,
        items=tuple(items),
        raw={
            "id": export.id,
            "status": export.status,
            "amount": str(export.amount),
            "currency": export.currency,
            "settled_at": export.settled_at.isoformat(),
            "charges": list(export.charge_codes),
            "refunds": [r.id for r in export.refunds],
        },
        notes=tuple(notes),
    )


# --- the API -------------------------------------------------------------------------------


def _error(message: str, code: FeedErrorCode, status: int | None = None) -> FeedError:
    return FeedError(
        f"Coinbase Commerce: {message}", code=code, provider=PROVIDER, http_status=status
    )


def coinbase_charge_get(*, config: CoinbaseConfig, code: str) -> Any:
    """One charge (``data`` of ``GET /charges/{code}``); None when Coinbase has none."""
    try:
        response = requests.get(
            f"{config.api_base}/charges/{code}",
            headers={
                "X-CC-Api-Key": config.api_key,
                "X-CC-Version": API_VERSION,
                "Accept": "application/json",
            },
            timeout=config.timeout_seconds,
        )
    except requests.RequestException as exc:
        raise _error(f"charge {code}: {exc}", FeedErrorCode.PROVIDER_UNAVAILABLE) from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        code_ = (
            FeedErrorCode.INVALID_CREDENTIALS
            if response.status_code in (401, 403)
            else FeedErrorCode.RATE_LIMITED
            if response.status_code == 429
            else FeedErrorCode.PROVIDER_UNAVAILABLE
            if response.status_code >= 500
            else FeedErrorCode.INVALID_REQUEST
        )
        raise _error(f"charge {code}: HTTP {response.status_code}", code_, response.status_code)
    try:
        body = response.json(parse_float=Decimal)
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise _error(f"charge {code}: no data object", FeedErrorCode.BAD_RESPONSE)
    return data


def coinbase_settlement_read(
    *, data: bytes, config: CoinbaseConfig, fetch: Callable[..., Any] | None = None
) -> Settlement:
    """The export ``data`` as a settlement, every charge read from the API. A malformed
    export, a charge Coinbase does not know or a malformed charge raises ReportError; the API
    failing raises FeedError. Nothing is returned partly."""
    export = export_from(data)
    get = fetch or coinbase_charge_get
    charges: dict[str, Any] = {}
    for code in export.charge_codes:
        charge = get(config=config, code=code)
        if charge is None:
            raise ReportError(f"Coinbase Commerce has no charge {code}", where="charges")
        charges[code] = charge
    return settlement_from(export, charges)
