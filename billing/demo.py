"""Billing demo data for the quick start: customers, a plan, a subscription billed for its
past months, a payment, and two EU customers invoiced in euros: Müller GmbH in Germany
charged German VAT (19 %, the demo's tax rate for DE) and Van Dijk Logistics B.V., a Dutch
business with a VAT number, invoiced under the reverse charge (no VAT; the customer accounts
for it). Idempotent: seeded once, found again by the demo customer's email."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.test.utils import override_settings
from simple_history.utils import bulk_create_with_history
from stdnum.eu import vat as eu_vat

from billing.models import Customer, Invoice, Payment, ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.services.billing_run import billing_run
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payment_methods import payment_method_add
from billing.services.payments import (
    AllocationInput,
    BatchPaymentInput,
    payment_record,
    payments_record_batch,
)
from billing.services.subscriptions import (
    ItemInput,
    UsageInput,
    price_create,
    product_create,
    subscription_cancel,
    subscription_change,
    subscription_create,
    usage_ingest,
)
from billing.services.tax_rates import tax_rate_set
from billing.services.webhooks import webhook_event_apply
from core.demo import demo_scaled, demo_tasks_deferred
from core.exceptions import DomainError
from core.money import minor_unit_exponent

DEMO_EMAIL = "ap@acme.example"
MULLER_EMAIL = "buchhaltung@mueller.example"
VAN_DIJK_EMAIL = "finance@vandijk-logistics.example"
DE_VAT_RATE = Decimal("0.19")
REVERSE_CHARGE_MEMO = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC)."
)


def billing_demo_seed(today: date) -> str:
    if Customer.objects.filter(email=DEMO_EMAIL).exists():
        return "Billing demo data: already there."
    # The quick start prints mail to the console: keep the demo invoices' PDFs out of it.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        acme = customer_create(
            actor=None,
            name="Acme Corp",
            email=DEMO_EMAIL,
            currency="USD",
            address_line1="1 Market Street",
            city="San Francisco",
            region="CA",
            postal_code="94105",
            country="US",
            acquisition_channel="referral",
        )
        # German customers pay German VAT: a rate for the DE jurisdiction, not the US default.
        tax_rate_set(actor=None, jurisdiction="DE", name="Germany VAT (standard)", rate=DE_VAT_RATE)
        muller = customer_create(
            actor=None,
            name="Müller GmbH",
            email=MULLER_EMAIL,
            currency="EUR",
            address_line1="Friedrichstraße 68",
            postal_code="10117",
            city="Berlin",
            country="DE",
            payment_terms=14,
            tax_jurisdiction="DE",
            tax_id="DE811569869",
        )
        # A business in another member state with a VAT number: reverse charge, no VAT.
        van_dijk = customer_create(
            actor=None,
            name="Van Dijk Logistics B.V.",
            email=VAN_DIJK_EMAIL,
            currency="EUR",
            address_line1="Keizersgracht 221",
            postal_code="1016 DV",
            city="Amsterdam",
            country="NL",
            payment_terms=30,
            tax_jurisdiction="NL",
            tax_id="NL004495445B01",
            reverse_charge=True,
        )
        product = product_create(actor=None, name="Pro plan")
        seats = price_create(
            actor=None,
            product_id=product.pk,
            currency="USD",
            type="per_unit",
            interval="month",
            unit_amount=Decimal("49.00"),
            nickname="Pro seats",
        )
        start = (today.replace(day=1) - timedelta(days=45)).replace(day=1)
        subscription_create(
            actor=None,
            customer_id=acme.pk,
            items=[ItemInput(seats.pk, Decimal(5))],
            start_date=start,
        )
        issued = billing_run(as_of=today).invoices
        invoice_create(
            actor=None,
            customer_id=muller.pk,
            issue=True,
            lines=[
                LineInput(
                    description="Onboarding workshop",
                    quantity=Decimal(2),
                    unit_price=Decimal("750.00"),
                ),
            ],
        )
        invoice_create(
            actor=None,
            customer_id=van_dijk.pk,
            issue=True,
            memo=REVERSE_CHARGE_MEMO,
            lines=[
                LineInput(
                    description="Route planning licence, annual",
                    quantity=Decimal(1),
                    unit_price=Decimal("2400.00"),
                ),
            ],
        )
        payment_record(
            actor=None,
            customer_id=acme.pk,
            amount=Decimal("100.00"),
            currency="USD",
            method="ach",
            reference="Demo ACH",
        )
    return (
        f"Billing demo data: 3 customers, a subscription billed for {len(issued)} month(s), "
        "a payment of 100.00 USD, and 2 invoices in EUR: Müller GmbH with German VAT "
        f"({DE_VAT_RATE:.0%}), Van Dijk Logistics B.V. under the reverse charge (no VAT)."
    )


# --- The demo year -------------------------------------------------------------------------
# A year of a small SaaS company: customers in four currencies signed up month by month on
# flat, per-seat and metered plans, upgrading, downgrading and churning, billed by the
# billing run on their anchor days, paying by card, ACH, wire and crypto (most on time, some
# late, a few not yet), and this week's card charges reported by the processor (some
# declined). Seeded through the services: the billing run, usage ingestion, subscription
# changes, and ``payments_record_batch`` on PostgreSQL (``payment_record`` one by one on the
# quick start's SQLite, where the batch paths are not available).

YEAR_MARKER_EMAIL = "billing@year-0001.demo.example"
YEAR_CUSTOMERS = 300
# Customers on board when the year starts; the others sign up over the twelve months after,
# more of them as the company grows.
YEAR_BASE_SHARE = Decimal("0.25")
YEAR_MONTHS = 12
# Subscriptions are anchored on these days of the month: four billing runs a month.
ANCHOR_DAYS = (1, 8, 15, 22)
YEAR_SEED = 20240601
CHANNELS = {
    # channel: (share of new customers, campaigns)
    "paid_search": (Decimal("0.30"), ("brand-keywords", "competitor-keywords")),
    "organic": (Decimal("0.25"), ("",)),
    "social": (Decimal("0.15"), ("linkedin-q1", "linkedin-q3")),
    "referral": (Decimal("0.15"), ("",)),
    "partner": (Decimal("0.10"), ("reseller-program",)),
    "events": (Decimal("0.05"), ("saas-summit",)),
}
DECLINE_CODES = ("insufficient_funds", "card_declined", "expired_card", "do_not_honor")
# The card charges before this week kept as the processor's history (the dashboard's
# payment-success chart shows twelve weeks), and the share declined once before succeeding.
CARD_HISTORY_DAYS = 7 * 12
DECLINED_FIRST = 0.2


@dataclass(frozen=True, slots=True)
class _Market:
    country: str
    currency: str
    share: Decimal
    # (city, region, postal code)
    cities: tuple[tuple[str, str, str], ...]
    # Jurisdiction VAT (name, rate); None: the system's default sales tax rate.
    vat: tuple[str, Decimal] | None = None
    # Share of the market's customers that are businesses invoiced under the reverse charge.
    reverse_charge: Decimal = Decimal(0)
    methods: tuple[tuple[str, int], ...] = (("wire_transfer", 1),)


_MARKETS = (
    _Market(
        "US", "USD", Decimal("0.55"),
        (("Austin", "TX", "78701"), ("Boston", "MA", "02108"), ("Chicago", "IL", "60601"),
         ("Denver", "CO", "80202"), ("Seattle", "WA", "98101"), ("Miami", "FL", "33131")),
        methods=(("ach", 40), ("credit_card", 35), ("wire_transfer", 15), ("cryptocurrency", 10)),
    ),
    _Market(
        "DE", "EUR", Decimal("0.09"),
        (("München", "", "80331"), ("Hamburg", "", "20095"), ("Köln", "", "50667")),
        vat=("Germany VAT (standard)", Decimal("0.19")), reverse_charge=Decimal("0.5"),
        methods=(("wire_transfer", 60), ("credit_card", 40)),
    ),
    _Market(
        "FR", "EUR", Decimal("0.06"),
        (("Paris", "", "75002"), ("Lyon", "", "69002")),
        vat=("France TVA (taux normal)", Decimal("0.20")), reverse_charge=Decimal("0.5"),
        methods=(("wire_transfer", 60), ("credit_card", 40)),
    ),
    _Market(
        "NL", "EUR", Decimal("0.05"),
        (("Rotterdam", "", "3011 AA"), ("Utrecht", "", "3511 AA")),
        vat=("Netherlands BTW (standard)", Decimal("0.21")), reverse_charge=Decimal("0.6"),
        methods=(("wire_transfer", 60), ("credit_card", 40)),
    ),
    _Market(
        "IE", "EUR", Decimal("0.05"),
        (("Dublin", "", "D02"), ("Cork", "", "T12")),
        vat=("Ireland VAT (standard)", Decimal("0.23")), reverse_charge=Decimal("0.5"),
        methods=(("wire_transfer", 50), ("credit_card", 50)),
    ),
    _Market(
        "GB", "GBP", Decimal("0.12"),
        (("London", "", "EC1A 1BB"), ("Manchester", "", "M1 1AE"), ("Leeds", "", "LS1 4DY")),
        vat=("United Kingdom VAT (standard)", Decimal("0.20")),
        methods=(("wire_transfer", 50), ("credit_card", 50)),
    ),
    _Market(
        "JP", "JPY", Decimal("0.08"),
        (("Tokyo", "", "100-0005"), ("Osaka", "", "530-0001")),
        vat=("Japan consumption tax", Decimal("0.10")),
    ),
)  # fmt: skip

# Plan prices per currency: Starter (flat a month), Team (a seat a month), Scale (platform
# fee a month) and its metered API calls (per 1,000 calls, summed over the period).
_PLAN_PRICES = {
    "USD": (Decimal(49), Decimal(15), Decimal(399), Decimal("0.60")),
    "EUR": (Decimal(45), Decimal(14), Decimal(369), Decimal("0.55")),
    "GBP": (Decimal(39), Decimal(12), Decimal(319), Decimal("0.48")),
    "JPY": (Decimal(6900), Decimal(2100), Decimal(56000), Decimal(85)),
}
API_METRIC = "api_calls_thousands"

_NAME_FIRST = (
    "Alder", "Beacon", "Birch", "Bright", "Cedar", "Clear", "Cobalt", "Copper", "Crimson",
    "Delta", "Ember", "Fern", "Granite", "Harbor", "Iron", "Juniper", "Kestrel", "Lumen",
    "Maple", "Meridian", "Nimbus", "North", "Oak", "Onyx", "Pioneer", "Quartz", "Raven",
    "River", "Sage", "Silver", "Spruce", "Stone", "Summit", "Tidal", "Vertex", "Willow",
)  # fmt: skip
_NAME_SECOND = (
    "Analytics", "Apparel", "Bakery", "Biotech", "Clinics", "Consulting", "Design", "Dynamics",
    "Energy", "Foods", "Freight", "Health", "Labs", "Legal", "Logistics", "Media", "Motors",
    "Partners", "Robotics", "Software", "Studios", "Systems", "Travel", "Ventures",
)  # fmt: skip
_SUFFIX = {"US": "Inc.", "DE": "GmbH", "FR": "SAS", "NL": "B.V.", "IE": "Ltd", "GB": "Ltd",
           "JP": "K.K."}  # fmt: skip


@dataclass(slots=True)
class _YearCustomer:
    n: int
    market: _Market
    start: date
    plan: str  # starter, team, scale
    seats: int
    method: str
    # prompt: pays within the terms; late: pays weeks after the due date; slow: has stopped
    # paying (its recent invoices are overdue).
    payer: str
    channel: str
    campaign: str
    reverse_charge: bool
    customer: Customer | None = None
    subscription_id: int | None = None
    items: list[int] = field(default_factory=list)
    # (month index, "upgrade"|"expand"|"contract"|"downgrade"|"churn")
    events: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class YearReport:
    customers: int = 0
    invoices: int = 0
    payments: int = 0
    changes: int = 0
    churned: int = 0
    declined: int = 0
    card_charges: int = 0
    card_history: int = 0
    declined_before: int = 0
    by_currency: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        currencies = ", ".join(f"{n} in {c}" for c, n in sorted(self.by_currency.items()))
        return (
            f"Billing demo year: {self.customers} customers ({currencies}), "
            f"{self.invoices} invoices from the billing runs, {self.payments} payments, "
            f"{self.changes} plan changes, {self.churned} churned, {self.card_charges} card "
            f"charges this week reported by Stripe ({self.declined} declined), "
            f"{self.card_history} in the twelve weeks before ({self.declined_before} declined)."
        )


def _month_start(today: date, months_back: int) -> date:
    first = today.replace(day=1)
    year, month = divmod(first.year * 12 + first.month - 1 - months_back, 12)
    return date(year, month + 1, 1)


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, Any]]) -> Any:
    values = [v for v, _ in weighted]
    weights = [float(w) for _, w in weighted]
    return rng.choices(values, weights=weights)[0]


def _vat_number(rng: random.Random, country: str) -> str:
    """A VAT number of ``country`` that passes the checksum (invented, deterministic)."""
    digits = {"DE": 9, "FR": 11, "NL": 9, "IE": 7}[country]
    while True:
        body = "".join(str(rng.randrange(10)) for _ in range(digits))
        if country == "NL":
            body += "B01"
        # Irish numbers end in a check letter: try each.
        for letter in "ABCDEFGHIJKLMNOPQRSTUVW" if country == "IE" else ("",):
            number = f"{country}{body}{letter}"
            if eu_vat.is_valid(number):
                return number


def _plan_customers(today: date, count: int, rng: random.Random) -> list[_YearCustomer]:
    """Who signs up when, on what, paying how: decided up front from the seed."""
    base = max(1, int(count * YEAR_BASE_SHARE))
    # Sign-ups per month grow: month m (1..12) gets a weight of 10 + m.
    months = [0] * base + rng.choices(
        range(1, YEAR_MONTHS + 1), weights=[10 + m for m in range(1, 13)], k=count - base
    )
    months.sort()
    channels = [(c, share) for c, (share, _) in CHANNELS.items()]
    planned = []
    for n, month in enumerate(months, start=1):
        market = _pick(rng, [(m, m.share) for m in _MARKETS])
        anchor = rng.choice(ANCHOR_DAYS)
        start = _month_start(today, YEAR_MONTHS - month).replace(day=anchor)
        if start > today:
            start = _month_start(today, YEAR_MONTHS - month).replace(day=1)
        plan = _pick(rng, [("starter", 45), ("team", 40), ("scale", 15)])
        channel = _pick(rng, channels)
        campaign = rng.choice(CHANNELS[channel][1])
        customer = _YearCustomer(
            n=n,
            market=market,
            start=start,
            plan=plan,
            seats=rng.randint(3, 25) if plan == "team" else 1,
            method=_pick(rng, market.methods),
            payer=_pick(rng, [("prompt", 79), ("late", 18), ("slow", 3)]),
            channel=channel if month else "",
            campaign=campaign if month else "",
            reverse_charge=rng.random() < float(market.reverse_charge),
        )
        for later in range(month + 1, YEAR_MONTHS + 1):
            roll = rng.random()
            if roll < 0.02:
                customer.events[later] = "churn"
                break
            if roll < 0.08:
                customer.events[later] = rng.choice(
                    {
                        "starter": ("upgrade",),
                        "team": ("expand", "expand", "contract", "downgrade"),
                        "scale": ("expand",),
                    }[plan]
                )
        planned.append(customer)
    return planned


def _year_catalog() -> dict[tuple[str, str], int]:
    """The plans' prices: (currency, plan) -> price id."""
    starter = product_create(actor=None, name="Starter", description="Flat monthly plan")
    team = product_create(actor=None, name="Team", description="Per seat, monthly")
    scale = product_create(actor=None, name="Scale", description="Platform fee and API usage")
    calls = product_create(actor=None, name="API calls", description="Per 1,000 calls")
    prices: dict[tuple[str, str], int] = {}
    for currency, (flat, seat, platform, per_thousand) in _PLAN_PRICES.items():
        for key, product, type_, amount, metric in (
            ("starter", starter, "flat", flat, ""),
            ("team", team, "per_unit", seat, ""),
            ("scale", scale, "flat", platform, ""),
            ("calls", calls, "per_unit", per_thousand, API_METRIC),
        ):
            prices[currency, key] = price_create(
                actor=None,
                product_id=product.pk,
                currency=currency,
                type=type_,
                interval="month",
                unit_amount=amount,
                nickname=f"{product.name} ({currency})",
                metric=metric,
                aggregation="sum" if metric else "",
            ).pk
    return prices


def _items(c: _YearCustomer, prices: dict[tuple[str, str], int]) -> list[ItemInput]:
    currency = c.market.currency
    if c.plan == "starter":
        return [ItemInput(prices[currency, "starter"], Decimal(1))]
    if c.plan == "team":
        return [ItemInput(prices[currency, "team"], Decimal(c.seats))]
    return [
        ItemInput(prices[currency, "scale"], Decimal(1)),
        ItemInput(prices[currency, "calls"], Decimal(0)),
    ]


def _customer_create(c: _YearCustomer, rng: random.Random) -> Customer:
    market = c.market
    name = (
        f"{_NAME_FIRST[c.n % len(_NAME_FIRST)]} "
        f"{_NAME_SECOND[(c.n // len(_NAME_FIRST)) % len(_NAME_SECOND)]} "
        f"{_SUFFIX[market.country]}"
    )
    if c.n > len(_NAME_FIRST) * len(_NAME_SECOND):
        name = f"{name} ({c.n})"
    city, region, postal_code = rng.choice(market.cities)
    fields: dict[str, Any] = {}
    if c.reverse_charge:
        fields = {"tax_id": _vat_number(rng, market.country), "reverse_charge": True}
    elif market.vat is not None:
        fields = {"tax_jurisdiction": market.country}
    return customer_create(
        actor=None,
        name=name,
        email=f"billing@year-{c.n:04d}.demo.example",
        currency=market.currency,
        address_line1=f"{rng.randint(1, 400)} Commerce Street",
        city=city,
        region=region,
        postal_code=postal_code,
        country=market.country,
        payment_terms=rng.choice((14, 30, 30, 30)) if market.country != "JP" else 30,
        acquisition_channel=c.channel,
        campaign=c.campaign,
        acquired_on=c.start,
        **fields,
    )


def _usage(active: list[_YearCustomer], day: date, rng: random.Random) -> None:
    """The API calls of the metered subscriptions whose period ends on ``day``."""
    events = []
    for c in active:
        if c.plan != "scale" or c.start.day != day.day or c.start >= day:
            continue
        period_start = _month_start(day, 1).replace(day=day.day)
        period_start = max(period_start, c.start)
        days = (day - period_start).days
        for k in range(3):
            at = datetime.combine(
                period_start + timedelta(days=min(days - 2, 2 + 9 * k)), time(12), tzinfo=UTC
            )
            events.append(
                UsageInput(
                    subscription_item_id=c.items[1],
                    metric=API_METRIC,
                    quantity=Decimal(rng.randint(20, 300)),
                    occurred_at=at,
                    idempotency_key=f"demo-year:{c.n}:{period_start.isoformat()}:{k}",
                )
            )
    if events:
        usage_ingest(actor=None, events=events)


def _change(c: _YearCustomer, kind: str, on: date, prices: dict[tuple[str, str], int]) -> None:
    subscription_id = c.subscription_id or 0
    if kind == "churn":
        subscription_cancel(actor=None, subscription_id=subscription_id, at_period_end=True)
        return
    currency = c.market.currency
    # Smaller plans only where the next invoice stays positive (the credit for the unused
    # days of the old plan is less than the new plan's month): otherwise a credit note.
    if kind in ("downgrade", "contract") and c.plan == "team":
        kind = "downgrade" if c.seats <= 5 else "contract"
        if kind == "contract" and c.seats < 6:
            kind = "expand"
    if kind == "upgrade":
        c.plan, c.seats = "team", 5
    elif kind == "downgrade":
        c.plan, c.seats = "starter", 1
    elif kind == "expand":
        c.seats += 5
    elif kind == "contract":
        c.seats -= 2
    items = _items(c, prices)
    if c.plan == "scale":
        # More platform capacity: a second platform unit; usage keeps its item.
        items = [ItemInput(prices[currency, "scale"], Decimal(2)), items[1]]
    subscription_change(actor=None, subscription_id=subscription_id, items=items, on_date=on)


@dataclass(frozen=True, slots=True)
class _Due:
    on: date
    customer_id: int
    invoice_id: int
    amount: Decimal
    currency: str
    method: str


def _schedule(
    invoices: list[tuple[int, int, Decimal, str, date, date]],
    by_customer: dict[int, _YearCustomer],
    today: date,
    rng: random.Random,
) -> list[_Due]:
    """When each invoice is paid (None: not yet): prompt payers within the terms, late
    payers weeks after the due date, slow payers not for the last three months."""
    due: list[_Due] = []
    for invoice_id, customer_id, total, currency, issued, due_date in invoices:
        c = by_customer.get(customer_id)
        if c is None or total <= 0:
            continue
        if c.payer == "prompt":
            on = issued + timedelta(days=rng.randint(2, max(3, (due_date - issued).days)))
        elif c.payer == "late":
            on = due_date + timedelta(days=rng.randint(5, 30))
        else:
            if issued >= today - timedelta(days=95):
                continue
            on = due_date + timedelta(days=rng.randint(20, 60))
        if c.method == "credit_card" and on > today - timedelta(days=10):
            # This week's card charges are reported by the processor (see _card_charges).
            continue
        if on >= today:
            continue
        due.append(_Due(on, customer_id, invoice_id, total, currency, c.method))
    return due


_REFERENCE_PREFIX = {"ach": "ACH", "wire_transfer": "WIRE", "credit_card": "CARD",
                     "cryptocurrency": "CRYPTO"}  # fmt: skip


def _payments_record(due: list[_Due]) -> int:
    items = [
        BatchPaymentInput(
            customer_id=d.customer_id,
            amount=d.amount,
            currency=d.currency,
            method=d.method,
            allocations=[AllocationInput(invoice_id=d.invoice_id, amount=d.amount)],
            received_date=d.on,
            # The payer's remittance reference, as the bank statement shows it.
            reference=f"{_REFERENCE_PREFIX[d.method]}{d.on:%y%m%d}N{d.invoice_id}",
        )
        for d in sorted(due, key=lambda d: (d.on, d.invoice_id))
    ]
    if connection.vendor == "postgresql":
        recorded = 0
        for start in range(0, len(items), 500):
            batch = payments_record_batch(actor=None, items=items[start : start + 500])
            if batch.refused:
                raise DomainError(
                    f"The demo payments were refused: {batch.refused}", code="demo_failed"
                )
            recorded += len(batch.recorded)
        return recorded
    for item in items:
        payment_record(
            actor=None,
            customer_id=item.customer_id,
            amount=item.amount,
            currency=item.currency,
            method=item.method,
            received_date=item.received_date,
            reference=item.reference,
            allocations=item.allocations,
        )
    return len(items)


def _card_method(methods: dict[int, int], customer_id: int, today: date, rng: random.Random) -> int:
    """The customer's saved Stripe card (added the first time), by id in ``methods``."""
    if customer_id not in methods:
        methods[customer_id] = payment_method_add(
            actor=None,
            customer_id=customer_id,
            type="credit_card",
            processor="stripe",
            processor_customer_id=f"cus_demo{customer_id}",
            processor_token=f"pm_demo{customer_id}",
            card_brand=rng.choice(("visa", "mastercard", "amex")),
            card_last4=f"{rng.randint(0, 9999):04d}",
            card_exp_month=rng.randint(1, 12),
            card_exp_year=today.year + rng.randint(1, 4),
        ).pk
    return methods[customer_id]


def _card_history(
    by_customer: dict[int, _YearCustomer],
    methods: dict[int, int],
    today: date,
    rng: random.Random,
) -> tuple[int, int]:
    """The Stripe charges behind the card payments of the twelve weeks before this one, as
    the processor's history has them: each payment's charge succeeded on the day it was
    received, a fifth of them after a decline the day before. The payments are recorded
    already (``_payments_record``), so these are history rows (with their history records),
    not charges made again: they give the payment-success chart its twelve weeks. Returns
    (charges, declined)."""
    since = today - timedelta(days=CARD_HISTORY_DAYS)
    cards = {pk for pk, c in by_customer.items() if c.method == "credit_card"}
    payments = (
        Payment.objects.filter(
            customer_id__in=cards, method="credit_card", received_date__gte=since
        )
        .prefetch_related("allocations")
        .order_by("received_date", "pk")
    )
    rows = []
    declined = 0
    for payment in payments:
        method_id = _card_method(methods, payment.customer_id, today, rng)
        allocation = next(iter(payment.allocations.all()), None)
        amount = payment.amount.amount
        minor = int(amount.scaleb(minor_unit_exponent(payment.currency)))
        at = datetime.combine(payment.received_date, time(10), tzinfo=UTC)
        common = {
            "processor": "stripe",
            "customer_id": payment.customer_id,
            "payment_method_id": method_id,
            "invoice_id": allocation.invoice_id if allocation else None,
            "currency": payment.currency,
            "amount": payment.amount,
            "amount_minor": minor,
        }
        if rng.random() < DECLINED_FIRST:
            code = rng.choice(DECLINE_CODES)
            before = at - timedelta(days=1)
            rows.append(
                ProcessorAttempt(
                    **common,
                    status=AttemptStatus.FAILED,
                    idempotency_key=f"demo-card-history:{payment.pk}:declined",
                    processor_intent_id=f"pi_demohist{payment.pk}d",
                    failure_code=code,
                    failure_message=f"The card was declined ({code.replace('_', ' ')}).",
                    created_at=before,
                    completed_at=before,
                )
            )
            declined += 1
        rows.append(
            ProcessorAttempt(
                **common,
                status=AttemptStatus.SUCCEEDED,
                idempotency_key=f"demo-card-history:{payment.pk}",
                processor_intent_id=f"pi_demohist{payment.pk}",
                processor_charge_id=f"ch_demohist{payment.pk}",
                payment=payment,
                created_at=at,
                completed_at=at,
            )
        )
    bulk_create_with_history(rows, ProcessorAttempt, batch_size=500)
    return len(rows), declined


def _card_charges(
    by_customer: dict[int, _YearCustomer],
    methods: dict[int, int],
    today: date,
    rng: random.Random,
) -> tuple[int, int]:
    """This week's card charges as Stripe reports them (webhook events): each card customer's
    open invoice charged with its saved card; some declined first (and retried the next
    day), a few declined and left open for the next retry. Returns (charges, declined)."""
    cards = {pk for pk, c in by_customer.items() if c.method == "credit_card" and c.payer != "slow"}
    open_invoices = list(
        Invoice.objects.filter(
            customer_id__in=cards,
            status="open",
            amount_paid=0,
            issue_date__gte=today - timedelta(days=14),
        )
        .order_by("issue_date", "pk")
        .values_list("pk", "customer_id", "total", "currency")
    )
    charges = declined = 0
    for invoice_id, customer_id, total, currency in open_invoices:
        _card_method(methods, customer_id, today, rng)
        minor = int(Decimal(total).scaleb(minor_unit_exponent(currency)))
        outcomes = _pick(rng, [(("ok",), 70), (("declined", "ok"), 22), (("declined",), 8)])
        for attempt, outcome in enumerate(outcomes):
            key = f"demo-card:{invoice_id}:{attempt}"
            intent = {
                "id": f"pi_demo{invoice_id}x{attempt}",
                "object": "payment_intent",
                "amount": minor,
                "currency": currency.lower(),
                "customer": f"cus_demo{customer_id}",
                "status": "succeeded" if outcome == "ok" else "requires_payment_method",
                "latest_charge": f"ch_demo{invoice_id}x{attempt}",
                "metadata": {
                    "backoffice_attempt": key,
                    "payment_method_id": str(methods[customer_id]),
                    "customer_id": str(customer_id),
                    "invoice_id": str(invoice_id),
                },
            }
            if outcome != "ok":
                code = rng.choice(DECLINE_CODES)
                intent["last_payment_error"] = {
                    "decline_code": code,
                    "message": f"The card was declined ({code.replace('_', ' ')}).",
                }
                declined += 1
            charges += 1
            webhook_event_apply(
                provider="stripe",
                event={
                    "id": f"evt_demo{invoice_id}x{attempt}",
                    "type": "payment_intent.succeeded"
                    if outcome == "ok"
                    else "payment_intent.payment_failed",
                    "data": {"object": intent},
                },
            )
    return charges, declined


def billing_demo_year(today: date) -> str:
    """Seed the demo year (idempotent: found again by its first customer's email); its
    report line, or "" at scale 0 (no year)."""
    if Customer.objects.filter(email=YEAR_MARKER_EMAIL).exists():
        return "Billing demo year: already there."
    if not demo_scaled(YEAR_CUSTOMERS):
        return ""
    # Not security: a fixed seed makes the same demo every time.
    rng = random.Random(YEAR_SEED)  # noqa: S311
    planned = _plan_customers(today, demo_scaled(YEAR_CUSTOMERS, minimum=24), rng)
    report = YearReport()
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        demo_tasks_deferred(),
        transaction.atomic(),
    ):
        for market in _MARKETS:
            if market.vat is not None:
                tax_rate_set(
                    actor=None, jurisdiction=market.country, name=market.vat[0], rate=market.vat[1]
                )
        prices = _year_catalog()
        by_customer: dict[int, _YearCustomer] = {}
        active: list[_YearCustomer] = []
        issued: list[int] = []
        for month in range(YEAR_MONTHS + 1):
            month_start = _month_start(today, YEAR_MONTHS - month)
            for anchor in ANCHOR_DAYS:
                day = month_start.replace(day=anchor)
                if day > today:
                    break
                _usage(active, day, rng)
                run = billing_run(as_of=day)
                if run.failures:
                    raise DomainError(
                        f"The demo billing run of {day.isoformat()} failed: {run.failures}",
                        code="demo_failed",
                    )
                issued.extend(run.invoices)
                for c in planned:
                    if c.start == day:
                        c.customer = _customer_create(c, rng)
                        sub = subscription_create(
                            actor=None, customer_id=c.customer.pk, items=_items(c, prices),
                            start_date=day,
                        )  # fmt: skip
                        c.subscription_id = sub.pk
                        c.items = list(sub.items.order_by("pk").values_list("pk", flat=True))
                        by_customer[c.customer.pk] = c
                        active.append(c)
                # Plan changes and cancellations ten days into the period they start in.
                on = day + timedelta(days=10)
                for c in list(active):
                    kind = c.events.get(month)
                    if kind is None or c.start.day != anchor or on > today or c.start > day:
                        continue
                    _change(c, kind, on, prices)
                    if kind == "churn":
                        report.churned += 1
                        active.remove(c)
                    else:
                        report.changes += 1
        invoices = [
            (pk, customer_id, total, currency, issued_on, due_on)
            for pk, customer_id, total, currency, issued_on, due_on in Invoice.objects.filter(
                pk__in=issued
            )
            .order_by("issue_date", "pk")
            .values_list("pk", "customer_id", "total", "currency", "issue_date", "due_date")
            if issued_on is not None and due_on is not None
        ]
        report.payments = _payments_record(_schedule(invoices, by_customer, today, rng))
        methods: dict[int, int] = {}
        report.card_history, report.declined_before = _card_history(
            by_customer, methods, today, rng
        )
        report.card_charges, report.declined = _card_charges(by_customer, methods, today, rng)
    report.customers = len(by_customer)
    report.invoices = len(issued)
    for c in by_customer.values():
        report.by_currency[c.market.currency] = report.by_currency.get(c.market.currency, 0) + 1
    return report.line()
