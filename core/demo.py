"""Demo data for the quick start: FX rates for the demo year, a few ledger entries and a
finance admin login, then each app's seeder (a year of a small SaaS company).

Idempotent: rates already recorded and entries already posted (found by their fixed
idempotency keys) are left alone, so running it again only issues new login credentials.
``scale`` shrinks the generated year (customers, vendors, statements) for tests; the named
demo records are always there. Never runs in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from axes.utils import reset as axes_reset
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from core.accounts import mfa_enroll, staff_user_reset, totp_secret_base32
from core.exceptions import DomainError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.ledger.selectors import account_get_by_role
from core.ledger.services import LineSpec, journal_post
from core.models import FxRate
from core.money import round_money
from core.roles import Role

DEMO_USERNAME = "demo-admin"
FX_QUOTE = "USD"
# 1 unit of the currency in USD on the middle day of the demo week.
FX_MID_RATES = {
    "EUR": Decimal("1.0850"),
    "GBP": Decimal("1.2700"),
    "JPY": Decimal("0.006700"),
    "KWD": Decimal("3.2550"),
}
# A year of documents (subscriptions started 13 months ago) and a margin: every day a
# foreign-currency document of the demo is dated has its rate. Without the year (scale 0)
# the named demo records need the last week's.
FX_DAYS = 400
FX_DAYS_WITHOUT_YEAR = 7


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    otpauth_url: str
    totp_secret: str
    recovery_codes: list[str]


@dataclass(frozen=True, slots=True)
class DemoResult:
    fx_rates_recorded: int
    entries_posted: list[str]
    entries_existing: list[str]
    login: DemoLogin
    # What each app's demo seeder reported (one line each).
    app_reports: list[str]


# Apps add their own demo data (customers, invoices...) from AppConfig.ready: core cannot
# import them. Each seeder takes ``today`` and returns a line for the report; idempotent.
# Seeders run by ``position``, then name.
DemoSeeder = Callable[[date], str]
_SEEDERS: dict[str, tuple[int, DemoSeeder]] = {}
DEFAULT_POSITION = 100


# How much of the generated year to seed: 1.0 is the quick start's (about 300 customers);
# tests use a fraction. Read by the seeders through ``demo_scale()``.
_SCALE: ContextVar[float] = ContextVar("demo_scale", default=1.0)


# The quick start's SQLite has no batch paths (COPY, sequences): every invoice and payment
# of the year is written one by one there, so it seeds 60 % of the year (about 180
# customers) to keep `make run` quick; PostgreSQL seeds all of it.
SQLITE_SCALE = 0.6


def demo_default_scale() -> float:
    """The scale ``seed_demo`` uses unless told: 1.0, or ``SQLITE_SCALE`` on SQLite."""
    return SQLITE_SCALE if connection.vendor == "sqlite" else 1.0


def demo_scale() -> float:
    """The scale of the demo being seeded (1.0 outside ``demo_seed``)."""
    return _SCALE.get()


def demo_scaled(count: int, *, minimum: int = 1) -> int:
    """``count`` at the demo's scale, never below ``minimum`` (0 at scale 0: no year)."""
    if demo_scale() == 0:
        return 0
    return max(minimum, round(count * demo_scale()))


@contextmanager
def demo_tasks_deferred() -> Iterator[None]:
    """Jobs queued while back-dated demo documents are written (each invoice's PDF and
    email, webhooks) are not run inline in the quick start: PDFs are rendered when first
    opened. Without a broker (the quick start) the queued messages stay in memory and are
    dropped; with a broker, workers run them as usual."""
    from core.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = eager


def register_demo_seeder(
    name: str, seeder: DemoSeeder, *, position: int = DEFAULT_POSITION
) -> None:
    """``position``: a seeder of back-dated documents runs before those dated today, so
    gapless document numbers follow the documents' dates."""
    _SEEDERS[name] = (position, seeder)


def _fx_rate(currency: str, rate_date: date) -> Decimal:
    """A rate that depends only on the date (a weekly cycle of 0.1% steps around the mid
    rate), so seeding again on a later day never changes a rate already used."""
    mid = FX_MID_RATES[currency]
    step = rate_date.toordinal() % 7 - 3
    return (mid + mid * Decimal(step) / 1000).quantize(Decimal("1e-8"))


def demo_fx_rates(*, today: date, days: int = FX_DAYS) -> int:
    """Record the daily rates of the ``days`` up to today (the demo year's by default);
    returns how many were new or changed. The rates on record are read once, and the new
    ones written in one transaction."""
    first = today - timedelta(days=days - 1)
    known = set(
        FxRate.objects.filter(
            quote_currency=FX_QUOTE,
            base_currency__in=list(FX_MID_RATES),
            rate_date__gte=first,
            rate_date__lte=today,
        ).values_list("base_currency", "rate_date", "rate")
    )
    recorded = 0
    with transaction.atomic():
        for days_ago in range(days):
            rate_date = today - timedelta(days=days_ago)
            for currency in FX_MID_RATES:
                rate = _fx_rate(currency, rate_date)
                if (currency, rate_date, rate) in known:
                    continue
                fx_rate_set(
                    base=currency, quote=FX_QUOTE, rate=rate, rate_date=rate_date, source="demo"
                )
                recorded += 1
    return recorded


def _demo_entries(today: date) -> list[tuple[str, date, str, list[LineSpec]]]:
    home = settings.SYSTEM_SETTINGS.functional_currency
    tax_rate = settings.SYSTEM_SETTINGS.billing.tax_rate
    cash = account_get_by_role(AccountRole.CASH)
    ar = account_get_by_role(AccountRole.ACCOUNTS_RECEIVABLE)
    revenue = account_get_by_role(AccountRole.REVENUE)
    tax_payable = account_get_by_role(AccountRole.TAX_PAYABLE)
    equity = account_get_by_role(AccountRole.EQUITY)
    expenses = account_get_by_role(AccountRole.EXPENSES)
    net = Decimal("1000.00")
    tax = round_money(net * tax_rate, home)
    gross = net + tax
    year = [
        (
            key,
            today - timedelta(days=FX_DAYS - 1),
            f"Seed funding paid in ({currency}), before the demo year",
            [
                LineSpec(account=cash, currency=currency, debit=Decimal(amount)),
                LineSpec(account=equity, currency=currency, credit=Decimal(amount)),
            ],
        )
        # The suppliers bill in EUR and GBP too: their payment runs need money there
        # from the first month, not only what customers pay in those currencies.
        for key, currency, amount in (
            ("demo:seed-funding", home, "500000.00"),
            ("demo:seed-funding-eur", "EUR", "100000.00"),
            ("demo:seed-funding-gbp", "GBP", "50000.00"),
        )
    ]
    return [
        # The year's opening cash, before its first month (only with the year).
        *(year if demo_scale() > 0 else []),
        (
            "demo:capital",
            today - timedelta(days=6),
            "Owner capital paid in",
            [
                LineSpec(account=cash, currency=home, debit=Decimal("50000.00")),
                LineSpec(account=equity, currency=home, credit=Decimal("50000.00")),
            ],
        ),
        (
            "demo:sale",
            today - timedelta(days=5),
            "Consulting sold on account, with sales tax",
            [
                LineSpec(account=ar, currency=home, debit=gross),
                LineSpec(account=revenue, currency=home, credit=net),
                LineSpec(account=tax_payable, currency=home, credit=tax),
            ],
        ),
        (
            "demo:payment",
            today - timedelta(days=3),
            "Customer payment of the consulting invoice",
            [
                LineSpec(account=cash, currency=home, debit=gross),
                LineSpec(account=ar, currency=home, credit=gross),
            ],
        ),
        (
            "demo:expense",
            today - timedelta(days=2),
            "Office rent paid",
            [
                LineSpec(account=expenses, currency=home, debit=Decimal("420.00")),
                LineSpec(account=cash, currency=home, credit=Decimal("420.00")),
            ],
        ),
        (
            "demo:eur-sale",
            today - timedelta(days=1),
            "Licence sold for cash to a EUR customer (converted at the day's rate)",
            [
                # Cash, not AR: receivables belong to invoices (ledger_check compares them).
                LineSpec(account=cash, currency="EUR", debit=Decimal("500.00")),
                LineSpec(account=revenue, currency="EUR", credit=Decimal("500.00")),
            ],
        ),
    ]


def demo_entries_post(*, today: date) -> tuple[list[str], list[str]]:
    """Post the demo entries not yet posted: (keys posted now, keys already there)."""
    posted: list[str] = []
    existing: list[str] = []
    for key, entry_date, description, lines in _demo_entries(today):
        # Found by key rather than replayed: a run on another day has other dates.
        if JournalEntry.objects.filter(idempotency_key=key).exists():
            existing.append(key)
            continue
        journal_post(
            lines=lines,
            entry_date=entry_date,
            description=description,
            source="demo",
            idempotency_key=key,
        )
        posted.append(key)
    return posted, existing


def demo_login_reset() -> DemoLogin:
    """The demo finance admin with a new password, authenticator and recovery codes."""
    password = get_random_string(20)
    user = staff_user_reset(username=DEMO_USERNAME, role=Role.FINANCE_ADMIN, password=password)
    device, codes = mfa_enroll(user=user)
    axes_reset(username=DEMO_USERNAME)
    return DemoLogin(
        username=DEMO_USERNAME,
        password=password,
        otpauth_url=device.config_url,
        totp_secret=totp_secret_base32(device),
        recovery_codes=codes,
    )


def demo_seed(*, today: date | None = None, scale: float = 1.0) -> DemoResult:
    """Seed the demo data (idempotent) and issue fresh demo credentials. ``scale`` (0 to
    1) sizes the generated year (0: none of it, only the named demo records); a second run
    adds nothing."""
    if settings.PRODUCTION:
        raise DomainError("Demo data is never seeded in production.", code="demo_in_production")
    if not 0 <= scale <= 1:
        raise DomainError(
            "The demo scale is from 0 to 1.", code="demo_scale_invalid", field="scale"
        )
    today = today or timezone.localdate()
    ordered = sorted(_SEEDERS.items(), key=lambda item: (item[1][0], item[0]))
    token = _SCALE.set(scale)
    try:
        recorded = demo_fx_rates(today=today, days=FX_DAYS if scale else FX_DAYS_WITHOUT_YEAR)
        posted, existing = demo_entries_post(today=today)
        with demo_tasks_deferred():
            # A seeder with nothing to say (no year at scale 0) adds no line.
            reports = [line for _, (_, seeder) in ordered if (line := seeder(today))]
    finally:
        _SCALE.reset(token)
    return DemoResult(
        fx_rates_recorded=recorded,
        entries_posted=posted,
        entries_existing=existing,
        login=demo_login_reset(),
        app_reports=reports,
    )
