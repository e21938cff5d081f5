"""PayPal settlements from the Transaction Search API, with ``requests``: no SDK.

The report (documented: https://developer.paypal.com/docs/api/transaction-search/v1/):
``GET /v1/reporting/transactions?start_date=&end_date=&fields=all&page_size=&page=`` with an
OAuth2 client-credentials bearer token (``POST /v1/oauth2/token``), at most 31 days per
request, paged by ``page``/``total_pages``. Each ``transaction_details[]`` row has a
``transaction_info`` with ``transaction_id``, ``transaction_event_code`` (the T-code),
``transaction_initiation_date``, ``transaction_amount`` and ``fee_amount`` (``{currency_code,
value}``, signed as the balance sees them: a fee is negative), ``transaction_status`` (S
success, P pending, D denied, V reversed) and ``paypal_reference_id`` (for a refund, the
capture it refunds).

What a settlement is here (PayPal has no payout object): a withdrawal to the bank (T04nn)
sweeps the account's balance in its currency, so the transactions in that currency after the
previous withdrawal up to this one make one settlement, paid out as the withdrawal's amount.
The withdrawal's transaction id is the settlement's id. Counted in it: payments (T00nn,
linked to billing by the capture id, which is the T0006 transaction id), refunds (T1107, by
``paypal_reference_id``), reversals and chargebacks (T1106, T12nn), fees (each row's
``fee_amount`` and fee rows T01nn), holds and their releases (T15nn, T21nn, T1110 / T1105,
T1111: a hold keeps money out of the sweep, its release puts it back into a later one) and
currency conversions (T02nn). Success (S) and reversed (V) rows moved the balance and count;
pending (P) and denied (D) did not. Anything else is an unknown transaction: the settlement is
an exception, never silently short.

A conversion is two T02nn rows, one out of a currency (negative) and one into another
(positive), made at the same time; one PayPal made for a payment or a refund in a currency
the account does not keep names that transaction as ``paypal_reference_id`` on both legs.
The legs are paired by that reference (or, without one, by their time). A withdrawal in USD
then also takes the transactions of another currency that were converted into its USD: from
the first after that currency's previous withdrawal (or conversion into a settlement), the
longest run whose balance comes back to zero and whose conversion legs all have their other
leg among the withdrawal's USD transactions (a EUR payment, its EUR fee and the EUR side of
its conversion; a refund PayPal funded by converting USD back into EUR). A conversion whose
other side stays in a kept balance counts on its own side only.

Assumed, not documented: that a withdrawal sweeps the whole available balance (a partial
withdrawal, or a balance carried from before the fetched window, shows as a difference).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from reconciliation.feeds.errors import FeedError, FeedErrorCode
from reconciliation.payouts.settlements import (
    CHARGE,
    CONVERSION,
    DISPUTE,
    FEE,
    HOLD,
    HOLD_RELEASE,
    REFUND,
    UNKNOWN,
    ReportError,
    Settlement,
    SettlementItem,
    decimal_amount,
)

PROVIDER = "paypal"
DEFAULT_API_BASE = "https://api-m.sandbox.paypal.com"
TRANSACTIONS_PATH = "/v1/reporting/transactions"
# PayPal answers at most 31 days per request and 500 rows per page.
MAX_WINDOW = dt.timedelta(days=31)
PAGE_SIZE = 500
# More pages than this is not a report we trust to page through consistently.
MAX_PAGES = 200
TOKEN_MARGIN_SECONDS = 60
# Rows that moved the balance (success, reversed); pending and denied did not.
MOVED = frozenset({"S", "V"})
WITHDRAWAL_STATUS = {"S": "paid", "P": "pending"}


@dataclass(frozen=True)
class PayPalConfig:
    client_id: str
    client_secret: str
    api_base: str = DEFAULT_API_BASE
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Transaction:
    id: str
    event_code: str
    status: str
    amount: Decimal
    fee_amount: Decimal  # signed as PayPal gives it: a fee charged is negative
    currency: str
    reference_id: str
    initiated_at: dt.datetime
    subject: str = ""


# --- parsing (pure) ------------------------------------------------------------------------


def _money(node: Any, *, where: str, default_currency: str = "") -> tuple[Decimal, str] | None:
    if node is None:
        return None
    if not isinstance(node, Mapping):
        raise ReportError("not a {currency_code, value} object", where=where)
    currency = str(node.get("currency_code") or default_currency).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ReportError(f"currency_code {node.get('currency_code')!r}", where=where)
    return decimal_amount(node.get("value"), currency, where=where), currency


def _datetime(value: Any, *, where: str) -> dt.datetime:
    text = str(value or "")
    try:
        # PayPal writes "2025-11-20T10:00:00+0000" (no colon in the offset) or "...Z".
        parsed = dt.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        raise ReportError(f"date {value!r} is not an ISO 8601 date-time", where=where) from None
    return parsed.astimezone(dt.UTC)


def transaction_from(row: Any, index: int) -> Transaction:
    """One ``transaction_details[]`` row; refused whole (ReportError) if not the shape."""
    info = row.get("transaction_info") if isinstance(row, Mapping) else None
    if not isinstance(info, Mapping):
        raise ReportError("no transaction_info", where=f"transaction_details[{index}]")
    txn_id = str(info.get("transaction_id") or "")
    where = f"transaction {txn_id or f'#{index}'}"
    code = str(info.get("transaction_event_code") or "")
    if not txn_id or len(code) != 5 or not code.startswith("T"):
        raise ReportError("no transaction_id or transaction_event_code", where=where)
    amount = _money(info.get("transaction_amount"), where=f"{where} transaction_amount")
    if amount is None:
        raise ReportError("no transaction_amount", where=where)
    fee = _money(info.get("fee_amount"), where=f"{where} fee_amount", default_currency=amount[1])
    if fee is not None and fee[1] != amount[1]:
        raise ReportError(f"fee in {fee[1]}, amount in {amount[1]}", where=where)
    return Transaction(
        id=txn_id,
        event_code=code,
        status=str(info.get("transaction_status") or ""),
        amount=amount[0],
        fee_amount=fee[0] if fee else Decimal(0),
        currency=amount[1],
        reference_id=str(info.get("paypal_reference_id") or ""),
        initiated_at=_datetime(info.get("transaction_initiation_date"), where=where),
        subject=str(info.get("transaction_subject") or info.get("transaction_note") or "")[:200],
    )


def category_of(txn: Transaction) -> str:
    """Our category of a T-code (see the module docstring)."""
    code, group = txn.event_code, txn.event_code[:3]
    if group == "T00":
        return CHARGE if txn.amount > 0 else UNKNOWN
    if group == "T01":
        return FEE
    if group == "T02":
        return CONVERSION
    if code == "T1107":
        return REFUND
    if code == "T1106" or group == "T12":
        return DISPUTE
    if code in ("T1105", "T1111"):
        return HOLD_RELEASE
    if code == "T1110":
        return HOLD
    if group in ("T15", "T21"):
        return HOLD if txn.amount < 0 else HOLD_RELEASE
    return UNKNOWN


def is_withdrawal(txn: Transaction) -> bool:
    return txn.event_code.startswith("T04") and txn.amount < 0


def conversion_pairs(transactions: Iterable[Transaction]) -> dict[str, str]:
    """Each conversion leg's other leg, by transaction id (both ways): the leg of the other
    sign, in another currency, naming the same ``paypal_reference_id`` (or, when one of them
    names none, made at the same time), the nearest in time when several fit."""
    legs = [t for t in transactions if category_of(t) == CONVERSION and t.status in MOVED]
    by_reference: dict[str, list[Transaction]] = defaultdict(list)
    by_time: dict[dt.datetime, list[Transaction]] = defaultdict(list)
    for leg in legs:
        if leg.reference_id:
            by_reference[leg.reference_id].append(leg)
        by_time[leg.initiated_at].append(leg)
    pairs: dict[str, str] = {}
    for leg in legs:
        if leg.id in pairs:
            continue
        candidates = [*by_reference.get(leg.reference_id, ()), *by_time[leg.initiated_at]]
        fits = [
            other
            for other in candidates
            if other.id not in pairs
            and other.id != leg.id
            and other.currency != leg.currency
            and (other.amount > 0) != (leg.amount > 0)
            and (
                not (other.reference_id and leg.reference_id)
                or other.reference_id == leg.reference_id
            )
        ]
        if fits:
            other = min(fits, key=lambda o: abs(o.initiated_at - leg.initiated_at))
            pairs[leg.id], pairs[other.id] = other.id, leg.id
    return pairs


def _converted_run(items: list[SettlementItem], into: set[str]) -> int:
    """How many of a currency's open items, from the first, were converted into the
    transactions ``into``: the longest run whose nets come back to zero, holding a conversion
    and only conversions whose other leg is in ``into``."""
    balance = Decimal(0)
    converted = False
    taken = 0
    for n, item in enumerate(items, start=1):
        if item.category == CONVERSION:
            if item.counterpart_id not in into:
                break
            converted = True
        balance += item.net
        if converted and balance == 0:
            taken = n
    return taken


def item_from(txn: Transaction, *, counterpart_id: str = "") -> SettlementItem:
    category = category_of(txn)
    fee = -txn.fee_amount
    charge_id = ""
    if category == CHARGE:
        charge_id = txn.id
    elif category in (REFUND, DISPUTE):
        charge_id = txn.reference_id
    return SettlementItem(
        id=txn.id,
        category=category,
        amount=txn.amount,
        fee=fee,
        net=txn.amount - fee,
        currency=txn.currency,
        charge_id=charge_id,
        refund_id=txn.id if category == REFUND else "",
        source_id=txn.reference_id,
        description=f"{txn.event_code} {txn.subject}".strip(),
        created_at=txn.initiated_at,
        counterpart_id=counterpart_id if category == CONVERSION else "",
    )


def settlements_from(
    transactions: Iterable[Transaction], *, arrival_from: dt.date, arrival_to: dt.date
) -> list[Settlement]:
    """The settlements of the withdrawals made from ``arrival_from`` to ``arrival_to`` (UTC
    dates), each with the transactions in its currency since the previous withdrawal in that
    currency (or since the first transaction given, when none was), and those of other
    currencies converted into them (see the module docstring)."""
    ordered = sorted(transactions, key=lambda t: t.initiated_at)
    pairs = conversion_pairs(ordered)
    open_items: dict[str, list[SettlementItem]] = {}
    opened_by: dict[str, str] = {}
    out: list[Settlement] = []
    for txn in ordered:
        if txn.status not in MOVED and not (is_withdrawal(txn) and txn.status == "P"):
            continue
        items = open_items.setdefault(txn.currency, [])
        if not is_withdrawal(txn):
            items.append(item_from(txn, counterpart_id=pairs.get(txn.id, "")))
            continue
        if txn.fee_amount:
            items.append(
                SettlementItem(
                    id=f"{txn.id}:fee",
                    category=FEE,
                    amount=abs(txn.amount) - abs(txn.amount),
                    fee=-txn.fee_amount,
                    net=txn.fee_amount,
                    currency=txn.currency,
                    description=f"{txn.event_code} withdrawal fee",
                    created_at=txn.initiated_at,
                )
            )
        own = {i.id for i in items}
        for currency, waiting in sorted(open_items.items()):
            taken = _converted_run(waiting, own) if currency != txn.currency else 0
            if taken:
                items = items + waiting[:taken]
                open_items[currency] = waiting[taken:]
        ids = {i.id for i in items}
        conversions = {
            i.id: i.counterpart_id
            for i in items
            if i.category == CONVERSION and i.counterpart_id in ids
        }
        day = txn.initiated_at.date()
        if arrival_from <= day <= arrival_to:
            out.append(
                Settlement(
                    provider=PROVIDER,
                    id=txn.id,
                    amount=-txn.amount,
                    currency=txn.currency,
                    arrival_date=day,
                    status=WITHDRAWAL_STATUS.get(txn.status, txn.status.lower()),
                    items=tuple(items),
                    description=txn.subject,
                    raw={
                        "withdrawal": txn.id,
                        "event_code": txn.event_code,
                        "status": txn.status,
                        "initiated_at": txn.initiated_at.isoformat(),
                        "amount": str(txn.amount),
                        "fee_amount": str(txn.fee_amount),
                        "currency": txn.currency,
                        "after_withdrawal": opened_by.get(txn.currency, ""),
                        "items": [i.id for i in items],
                        # Each conversion leg and its other leg, both in this settlement.
                        "conversions": conversions,
                    },
                )
            )
        open_items[txn.currency] = []
        opened_by[txn.currency] = txn.id
    return out


# --- the API -------------------------------------------------------------------------------


_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def _error(message: str, code: FeedErrorCode, status: int | None = None) -> FeedError:
    return FeedError(f"PayPal: {message}", code=code, provider=PROVIDER, http_status=status)


def _status_error(status: int, body: Mapping[str, Any], what: str) -> FeedError:
    name = str(body.get("name") or body.get("error") or f"HTTP {status}")
    message = str(body.get("message") or body.get("error_description") or "")
    if status in (401, 403):
        code = FeedErrorCode.INVALID_CREDENTIALS
    elif status == 429:
        code = FeedErrorCode.RATE_LIMITED
    elif status >= 500:
        code = FeedErrorCode.PROVIDER_UNAVAILABLE
    else:
        code = FeedErrorCode.INVALID_REQUEST
    return _error(f"{what}: {name} {message}".strip(), code, status)


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json(parse_float=Decimal)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code >= 400:
            return {}
        raise _error(f"{what}: the answer is not a JSON object", FeedErrorCode.BAD_RESPONSE)
    return body


def _token(config: PayPalConfig, *, refresh: bool = False) -> str:
    """A client-credentials access token, cached until shortly before it expires (the pattern
    of billing.processors.paypal)."""
    key = (config.api_base, config.client_id)
    with _tokens_lock:
        cached = _tokens.get(key)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
    try:
        response = requests.post(
            f"{config.api_base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(config.client_id, config.client_secret),
            headers={"Accept": "application/json"},
            timeout=config.timeout_seconds,
        )
    except requests.RequestException as exc:
        raise _error(f"token: {exc}", FeedErrorCode.PROVIDER_UNAVAILABLE) from None
    body = _json(response, "token")
    if response.status_code != 200 or not body.get("access_token"):
        raise _status_error(response.status_code, body, "token")
    expires_in = int(body.get("expires_in") or 0)
    with _tokens_lock:
        _tokens[key] = (
            str(body["access_token"]),
            time.monotonic() + max(expires_in - TOKEN_MARGIN_SECONDS, 0),
        )
    return str(body["access_token"])


def _get(config: PayPalConfig, params: dict[str, Any]) -> dict[str, Any]:
    for attempt in (1, 2):
        try:
            response = requests.get(
                f"{config.api_base}{TRANSACTIONS_PATH}",
                params=params,
                headers={
                    "Authorization": f"Bearer {_token(config, refresh=attempt == 2)}",
                    "Accept": "application/json",
                },
                timeout=config.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise _error(f"transactions: {exc}", FeedErrorCode.PROVIDER_UNAVAILABLE) from None
        if response.status_code == 401 and attempt == 1:
            continue  # the token expired early: fetch another once
        break
    body = _json(response, "transactions")
    if response.status_code != 200:
        raise _status_error(response.status_code, body, "transactions")
    return body


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window_rows(config: PayPalConfig, start: dt.datetime, end: dt.datetime) -> list[Any]:
    """Every row of one window, all pages; a report whose pages disagree is refused."""
    rows: list[Any] = []
    page, total_pages, total_items = 1, 1, None
    while page <= total_pages:
        body = _get(
            config,
            {
                "start_date": _stamp(start),
                "end_date": _stamp(end),
                "fields": "all",
                "page_size": PAGE_SIZE,
                "page": page,
            },
        )
        details = body.get("transaction_details")
        pages = body.get("total_pages", 1)
        if not isinstance(details, list) or isinstance(pages, bool) or not isinstance(pages, int):
            raise _error(
                f"transactions page {page}: no transaction_details list or total_pages",
                FeedErrorCode.BAD_RESPONSE,
            )
        if pages > MAX_PAGES:
            raise _error(f"transactions: {pages} pages", FeedErrorCode.BAD_RESPONSE)
        if page == 1:
            total_pages = max(pages, 1)
            total_items = body.get("total_items")
        elif pages != total_pages:
            raise _error(
                f"transactions: total_pages changed from {total_pages} to {pages} while paging",
                FeedErrorCode.BAD_RESPONSE,
            )
        rows.extend(details)
        page += 1
    counted = isinstance(total_items, int) and not isinstance(total_items, bool)
    if counted and total_items != len(rows):
        raise _error(
            f"transactions: the report says {total_items} rows, its pages hold {len(rows)}",
            FeedErrorCode.BAD_RESPONSE,
        )
    return rows


def paypal_transactions(
    *, config: PayPalConfig, start: dt.datetime, end: dt.datetime
) -> list[Transaction]:
    """Every transaction initiated from ``start`` to ``end``, in 31-day windows, all pages,
    each row checked: one malformed row refuses the whole report (FeedError bad_response)."""
    if start >= end:
        raise ValueError("start is not before end")
    rows: list[Any] = []
    window_start = start
    while window_start < end:
        window_end = min(window_start + MAX_WINDOW, end)
        rows.extend(_window_rows(config, window_start, window_end - dt.timedelta(seconds=1)))
        window_start = window_end
    seen: dict[str, Transaction] = {}
    try:
        for index, row in enumerate(rows):
            txn = transaction_from(row, index)
            seen.setdefault(txn.id, txn)
    except ReportError as exc:
        raise _error(f"the report is malformed ({exc})", FeedErrorCode.BAD_RESPONSE) from None
    return list(seen.values())


def paypal_settlements_list(
    *, config: PayPalConfig, arrival_from: dt.date, arrival_to: dt.date, lookback_days: int
) -> list[Settlement]:
    """The settlements (withdrawals) made from ``arrival_from`` to ``arrival_to``, reading the
    report from ``lookback_days`` before to find where each one began."""
    if arrival_from > arrival_to:
        raise ValueError("arrival_from is after arrival_to")
    start = dt.datetime.combine(
        arrival_from - dt.timedelta(days=lookback_days), dt.time(), tzinfo=dt.UTC
    )
    end = dt.datetime.combine(arrival_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    transactions = paypal_transactions(config=config, start=start, end=end)
    return settlements_from(transactions, arrival_from=arrival_from, arrival_to=arrival_to)
