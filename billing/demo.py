"""Billing demo data for the quick start: customers, a plan, a subscription billed for its
past months, an invoice in euros, and a payment. Idempotent: seeded once, found again by
the demo customer's email."""

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

DEMO_EMAIL = "ap@acme.example"


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
        muller = customer_create(
            actor=None,
            name="Müller GmbH",
            email="buchhaltung@mueller.example",
            currency="EUR",
            city="Berlin",
            country="DE",
            payment_terms=14,
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
        payment_record(
            actor=None,
            customer_id=acme.pk,
            amount=Decimal("100.00"),
            currency="USD",
            method="ach",
            reference="Demo ACH",
        )
    return (
        f"Billing demo data: 2 customers, a subscription billed for {len(issued)} month(s), "
        "an invoice in EUR and a partial payment."
    )
