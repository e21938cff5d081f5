"""The business rules (the YAML block of ARCHITECTURE.md) as one typed, read-only object.

Loaded once at start-up from ``config/system_settings.yaml`` (or ``SYSTEM_SETTINGS_FILE``).
Every bad value stops start-up with a single message naming the key and the value, so a
typo never reaches an invoice. This module imports nothing from Django's model layer: the
settings module calls it before apps are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ImproperlyConfigured
from moneyed import CURRENCIES

KNOWN_PAYMENT_METHODS = frozenset({"credit_card", "ach", "wire_transfer", "cryptocurrency"})
KNOWN_PAYMENT_PROCESSORS = frozenset({"stripe", "paypal", "coinbase_commerce"})
KNOWN_BANKING = frozenset({"plaid", "yodlee"})

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "system_settings.yaml"


class SystemSettingsError(ImproperlyConfigured):
    """A bad system-settings file; the message names the key and the bad value."""


@dataclass(frozen=True, slots=True)
class BillingSettings:
    currency: str
    tax_rate: Decimal
    payment_terms: int
    late_fee_percentage: Decimal
    collections_grace_period: int


@dataclass(frozen=True, slots=True)
class IntegrationSettings:
    payment_processors: tuple[str, ...]
    banking: tuple[str, ...]


# Ledger account roles whose accounts take manual journal lines by default. The control
# accounts (AR, AP, customer credits, processor clearing, cash) are left out: their
# sub-ledgers would drift from them. Accounts without a role always take manual lines.
DEFAULT_MANUAL_POSTING_ROLES = (
    "inventory",
    "purchase_discounts",
    "revenue",
    "tax_payable",
    "late_fee_income",
    "bad_debt",
    "fx_gain_loss",
    "processor_fees",
    "bank_fees",
    "suspense",
    "expenses",
    "equity",
    "rounding",
)
KNOWN_ACCOUNT_ROLES = frozenset(
    {
        *DEFAULT_MANUAL_POSTING_ROLES,
        "cash",
        "processor_clearing",
        "accounts_receivable",
        "accounts_payable",
        "customer_credit",
    }
)


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    # No business date (document, payment, entry) may be earlier: year-1 dates are typos.
    books_start_date: date = date(2000, 1, 1)
    manual_posting_roles: tuple[str, ...] = DEFAULT_MANUAL_POSTING_ROLES
    # A manual journal entry whose debits exceed this (functional currency) waits for the
    # approval of someone other than its author; 0: every manual entry does.
    manual_approval_threshold: Decimal = Decimal("10000")


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Bounds on input, so every total fits its column and every request stays cheap."""

    # Lines on one invoice, credit note, purchase order or bill.
    document_lines: int = 1000
    # Documents may be dated up to this many days after today (payments received: none).
    document_days_ahead: int = 366
    # Free text (memos, notes): characters.
    memo_length: int = 5000


@dataclass(frozen=True, slots=True)
class AutopaySettings:
    """How a declined automatic charge is tried again (``billing.services.autopay``)."""

    # Days after the first try that a soft decline is retried on (hard ones never are).
    retry_days: tuple[int, ...] = (3, 5, 7)
    # Retries are made in the customer's working day, spread over these local hours.
    window_start_hour: int = 9
    window_end_hour: int = 17
    # Days before a saved card expires that its customer is reminded.
    card_expiry_reminder_days: tuple[int, ...] = (30, 7)


@dataclass(frozen=True, slots=True)
class PayPageSettings:
    """What the customer may do on the hosted invoice page (``billing.hosted``)."""

    # The payer may pay part of what is due (at least ``minimum_partial``), not only all of it.
    partial_payments: bool = False
    minimum_partial: Decimal = Decimal("1")
    # Checkouts the page opens for one invoice in an hour: a script hammering it gets 429.
    checkouts_per_hour: int = 10


@dataclass(frozen=True, slots=True)
class SystemSettings:
    billing: BillingSettings
    payment_methods: tuple[str, ...]
    integrations: IntegrationSettings
    source: str
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    autopay: AutopaySettings = field(default_factory=AutopaySettings)
    pay_page: PayPageSettings = field(default_factory=PayPageSettings)

    @property
    def functional_currency(self) -> str:
        """The ledger's functional currency: the billing currency of the system settings."""
        return self.billing.currency


_MISSING = object()


def _get(mapping: dict[str, Any], key: str, path: str) -> Any:
    value = mapping.get(key, _MISSING)
    if value is _MISSING:
        raise SystemSettingsError(f"{path}: missing key")
    return value


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SystemSettingsError(f"{path}: expected a mapping, got {value!r}")
    return value


def _decimal(value: Any, path: str) -> Decimal:
    # YAML floats are turned into Decimal through their text so 0.0875 stays exact.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SystemSettingsError(f"{path}: expected a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise SystemSettingsError(f"{path}: expected a number, got {value!r}") from None
    if not result.is_finite():
        raise SystemSettingsError(f"{path}: expected a finite number, got {value!r}")
    return result


def _non_negative_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SystemSettingsError(f"{path}: expected a whole number of days, got {value!r}")
    if value < 0:
        raise SystemSettingsError(f"{path}: must not be negative, got {value!r}")
    return value


def _names(value: Any, path: str, known: frozenset[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SystemSettingsError(f"{path}: expected a non-empty list, got {value!r}")
    for item in value:
        if item not in known:
            raise SystemSettingsError(
                f"{path}: unknown value {item!r} (known: {', '.join(sorted(known))})"
            )
    if len(set(value)) != len(value):
        raise SystemSettingsError(f"{path}: duplicate entries in {value!r}")
    return tuple(value)


def _positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SystemSettingsError(f"{path}: expected a whole number above 0, got {value!r}")
    return value


def _ledger(root: dict[str, Any]) -> LedgerSettings:
    """The optional ``ledger`` section: absent keys take the defaults."""
    raw = _mapping(root.get("ledger", {}), "ledger")
    unknown = sorted(
        set(raw) - {"books_start_date", "manual_posting_roles", "manual_approval_threshold"}
    )
    if unknown:
        raise SystemSettingsError(f"ledger.{unknown[0]}: unknown key")
    start = raw.get("books_start_date", LedgerSettings().books_start_date)
    if not isinstance(start, date):
        raise SystemSettingsError(
            f"ledger.books_start_date: expected a date (YYYY-MM-DD), got {start!r}"
        )
    threshold = _decimal(
        raw.get("manual_approval_threshold", str(LedgerSettings().manual_approval_threshold)),
        "ledger.manual_approval_threshold",
    )
    if threshold < 0:
        raise SystemSettingsError(
            f"ledger.manual_approval_threshold: must not be negative, got {threshold}"
        )
    roles = raw.get("manual_posting_roles", list(DEFAULT_MANUAL_POSTING_ROLES))
    return LedgerSettings(
        books_start_date=start,
        manual_posting_roles=(
            () if roles == [] else _names(roles, "ledger.manual_posting_roles", KNOWN_ACCOUNT_ROLES)
        ),
        manual_approval_threshold=threshold,
    )


def _limits(root: dict[str, Any]) -> LimitSettings:
    """The optional ``limits`` section: absent keys take the defaults."""
    raw = _mapping(root.get("limits", {}), "limits")
    defaults = LimitSettings()
    known = ("document_lines", "document_days_ahead", "memo_length")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SystemSettingsError(f"limits.{unknown[0]}: unknown key")
    values = {
        key: _positive_int(raw.get(key, getattr(defaults, key)), f"limits.{key}") for key in known
    }
    return LimitSettings(**values)


def _days(value: Any, path: str) -> tuple[int, ...]:
    """A list of distinct whole days above 0, as a tuple in ascending order."""
    if not isinstance(value, list | tuple):
        raise SystemSettingsError(f"{path}: expected a list of days, got {value!r}")
    days = [_positive_int(v, path) for v in value]
    if len(set(days)) != len(days):
        raise SystemSettingsError(f"{path}: duplicate days in {list(value)!r}")
    return tuple(sorted(days))


def _autopay(root: dict[str, Any]) -> AutopaySettings:
    """The optional ``autopay`` section: absent keys take the defaults."""
    raw = _mapping(root.get("autopay", {}), "autopay")
    defaults = AutopaySettings()
    known = ("retry_days", "window_start_hour", "window_end_hour", "card_expiry_reminder_days")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SystemSettingsError(f"autopay.{unknown[0]}: unknown key")
    hours = []
    for key in ("window_start_hour", "window_end_hour"):
        hour = raw.get(key, getattr(defaults, key))
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 24:
            raise SystemSettingsError(f"autopay.{key}: expected an hour from 0 to 24, got {hour!r}")
        hours.append(hour)
    if hours[0] >= hours[1]:
        raise SystemSettingsError(
            f"autopay.window_end_hour: must be after window_start_hour, got {hours[1]!r}"
        )
    return AutopaySettings(
        retry_days=_days(raw.get("retry_days", defaults.retry_days), "autopay.retry_days"),
        window_start_hour=hours[0],
        window_end_hour=hours[1],
        card_expiry_reminder_days=_days(
            raw.get("card_expiry_reminder_days", defaults.card_expiry_reminder_days),
            "autopay.card_expiry_reminder_days",
        )[::-1],
    )


def _pay_page(root: dict[str, Any]) -> PayPageSettings:
    """The optional ``pay_page`` section: absent keys take the defaults."""
    raw = _mapping(root.get("pay_page", {}), "pay_page")
    defaults = PayPageSettings()
    unknown = sorted(set(raw) - {"partial_payments", "minimum_partial", "checkouts_per_hour"})
    if unknown:
        raise SystemSettingsError(f"pay_page.{unknown[0]}: unknown key")
    partial = raw.get("partial_payments", defaults.partial_payments)
    if not isinstance(partial, bool):
        raise SystemSettingsError(
            f"pay_page.partial_payments: expected true or false, got {partial!r}"
        )
    minimum = _decimal(
        raw.get("minimum_partial", str(defaults.minimum_partial)), "pay_page.minimum_partial"
    )
    if minimum <= 0:
        raise SystemSettingsError(f"pay_page.minimum_partial: must be above 0, got {minimum}")
    return PayPageSettings(
        partial_payments=partial,
        minimum_partial=minimum,
        checkouts_per_hour=_positive_int(
            raw.get("checkouts_per_hour", defaults.checkouts_per_hour),
            "pay_page.checkouts_per_hour",
        ),
    )


def parse_system_settings(text: str, *, source: str = "<string>") -> SystemSettings:
    """Validate the YAML text and return the typed settings, or raise SystemSettingsError."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SystemSettingsError(f"{source}: malformed YAML{where}: {problem}") from None
    root = _mapping(raw, "(top level)")

    billing = _mapping(_get(root, "billing", "billing"), "billing")
    currency = _get(billing, "currency", "billing.currency")
    if not isinstance(currency, str) or currency not in CURRENCIES or currency == "XXX":
        raise SystemSettingsError(f"billing.currency: unknown ISO 4217 currency {currency!r}")
    tax_rate = _decimal(_get(billing, "tax_rate", "billing.tax_rate"), "billing.tax_rate")
    if not Decimal(0) <= tax_rate <= Decimal(1):
        raise SystemSettingsError(f"billing.tax_rate: must be between 0 and 1, got {tax_rate}")
    terms = _non_negative_int(
        _get(billing, "payment_terms", "billing.payment_terms"), "billing.payment_terms"
    )
    late_fee = _decimal(
        _get(billing, "late_fee_percentage", "billing.late_fee_percentage"),
        "billing.late_fee_percentage",
    )
    if not Decimal(0) <= late_fee <= Decimal(100):
        raise SystemSettingsError(
            f"billing.late_fee_percentage: must be between 0 and 100, got {late_fee}"
        )
    grace = _non_negative_int(
        _get(billing, "collections_grace_period", "billing.collections_grace_period"),
        "billing.collections_grace_period",
    )

    methods = _names(
        _get(root, "payment_methods", "payment_methods"), "payment_methods", KNOWN_PAYMENT_METHODS
    )
    integrations = _mapping(_get(root, "integrations", "integrations"), "integrations")
    processors = _names(
        _get(integrations, "payment_processors", "integrations.payment_processors"),
        "integrations.payment_processors",
        KNOWN_PAYMENT_PROCESSORS,
    )
    banking = _names(
        _get(integrations, "banking", "integrations.banking"),
        "integrations.banking",
        KNOWN_BANKING,
    )
    return SystemSettings(
        billing=BillingSettings(
            currency=currency,
            tax_rate=tax_rate,
            payment_terms=terms,
            late_fee_percentage=late_fee,
            collections_grace_period=grace,
        ),
        payment_methods=methods,
        integrations=IntegrationSettings(payment_processors=processors, banking=banking),
        source=source,
        ledger=_ledger(root),
        limits=_limits(root),
        autopay=_autopay(root),
        pay_page=_pay_page(root),
    )


def load_system_settings(path: str | Path | None = None) -> SystemSettings:
    """Read and validate the settings file; raise SystemSettingsError naming the problem."""
    file = Path(path) if path else DEFAULT_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemSettingsError(
            f"{file}: cannot read the system settings file ({exc.strerror})"
        ) from None
    return parse_system_settings(text, source=str(file))


def system_settings() -> SystemSettings:
    """The settings validated at start-up (``settings.SYSTEM_SETTINGS``)."""
    from django.conf import settings

    return settings.SYSTEM_SETTINGS
