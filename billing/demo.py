"""Billing demo data for the quick start: customers, a plan, a subscription billed for its
past months, a payment, and two EU customers invoiced in euros: Müller GmbH in Germany
charged German VAT (19 %, the demo's tax rate for DE) and Van Dijk Logistics B.V., a Dutch
business with a VAT number, invoiced under the reverse charge (no VAT; the customer accounts
for it). Idempotent: seeded once, found again by the demo customer's email."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.test.utils import override_settings

from billing.models import Customer
from billing.services.billing_run import billing_run
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import payment_record
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from billing.services.tax_rates import tax_rate_set

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
