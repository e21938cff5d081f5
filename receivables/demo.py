"""Receivables demo data for the quick start: customers whose invoices were issued weeks ago
and chased by the daily collections run, so every collections queue has work in it.

The invoices are issued with their past dates through the billing services (as the system,
like the billing run), and the collections run is run for each past day in turn, as the
daily schedule would have: each invoice sits at the dunning step its age has reached
(reminder, due, overdue, final notice, escalation) with its timeline, and late fees were
charged on the days they fell due after the grace period. The runs stop at yesterday: today's
run is left to the clerk, so its preview lists a reminder, an overdue notice and a late fee
(the scheduled run would do them too). Then, as of today, an AR clerk
puts one customer on a payment plan and opens a dispute on one invoice, and an approver puts
the escalated customer on credit hold. One invoice is partly paid.

Runs before the other demo seeders, so invoice numbers follow their dates. Idempotent:
seeded once, found again by the first demo customer's email.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.test.utils import override_settings

from billing.demo import billing_demo_year
from billing.models import Customer, Invoice, Payment
from billing.services.credit import customer_credit_set
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from billing.services.webhooks import webhook_event_apply
from core.accounts import user_ensure_in_role
from core.exceptions import DomainError
from core.money import minor_unit_exponent
from core.roles import Role
from receivables.models import CollectionEvent, LateFee
from receivables.models_disputes import Dispute
from receivables.services.collections import collections_run
from receivables.services.disputes import chargeback_events_apply, dispute_open
from receivables.services.payment_plans import payment_plan_create

MARKER_EMAIL = "ap@summit-ridge.example"
AR_CLERK_USERNAME = "demo-ar-clerk"
# The payables demo's approver: the same person decides credit holds.
APPROVER_USERNAME = "demo-approver"
CHARGEBACK_ID = "dp_demo0001"
TERMS_DAYS = 30
D = Decimal


@dataclass(frozen=True, slots=True)
class _DemoInvoice:
    customer: str
    # Days from today to the due date (negative: overdue); issued TERMS_DAYS earlier.
    due_in_days: int
    description: str
    quantity: Decimal
    unit_price: Decimal


# name, email, city, region, postal code
_CUSTOMERS = [
    ("Summit Ridge Construction", MARKER_EMAIL, "Denver", "CO", "80202"),
    ("Lakeside Catering LLC", "accounts@lakeside-catering.example", "Madison", "WI", "53703"),
    ("Orchard Analytics Inc.", "billing@orchard-analytics.example", "Portland", "OR", "97204"),
    ("Pinewood Dental Group", "office@pinewood-dental.example", "Austin", "TX", "78701"),
    ("Crestline Media", "finance@crestline-media.example", "Atlanta", "GA", "30303"),
]

# With the default policy (grace 10 days): escalation at due + 45, final notice at + 30,
# overdue and the first late fee at + 11, "due today" at 0, the reminder at - 3.
_INVOICES = [
    _DemoInvoice("Summit Ridge Construction", -50, "Site survey software, annual", D(1), D(6000)),
    _DemoInvoice("Lakeside Catering LLC", -35, "Event planning platform, 12 seats", D(12), D(200)),
    _DemoInvoice("Orchard Analytics Inc.", -20, "Data pipeline setup", D(1), D("3250.00")),
    _DemoInvoice("Pinewood Dental Group", -15, "Practice software, 8 seats", D(8), D(185)),
    _DemoInvoice(
        "Pinewood Dental Group", -11, "Patient reminders, 1,000 texts", D(1000), D("0.89")
    ),
    _DemoInvoice("Crestline Media", 3, "Video hosting, quarterly", D(1), D(640)),
]
PARTLY_PAID = ("Orchard Analytics Inc.", D("1250.00"), 25)  # customer, amount, days ago


def _demo_user(username: str, role: str, first: str, last: str) -> User:
    user, _ = user_ensure_in_role(username=username, role=role)
    if not user.email:
        user.first_name, user.last_name = first, last
        user.email = f"{username}@demo.example"
        user.save(update_fields=["first_name", "last_name", "email"])
    return user


def _customers() -> dict[str, Customer]:
    customers = {}
    for name, email, city, region, postal_code in _CUSTOMERS:
        customers[name] = customer_create(
            actor=None,
            name=name,
            email=email,
            currency="USD",
            address_line1="100 Main Street",
            city=city,
            region=region,
            postal_code=postal_code,
            country="US",
            payment_terms=TERMS_DAYS,
        )
    return customers


def _run(as_of: date) -> None:
    """The daily collections run for ``as_of``; any invoice it could not handle stops the
    demo rather than leaving it half seeded."""
    result = collections_run(as_of=as_of)
    if result.failures:
        raise DomainError(
            f"The demo collections run of {as_of.isoformat()} failed: {result.failures}",
            code="demo_failed",
        )


def receivables_demo_seed(today: date) -> str:
    """The billing demo year first (its invoices are the oldest: numbers follow dates, and
    its overdue invoices are chased by the collections runs below), then the collections
    demo."""
    year = billing_demo_year(today)
    chargeback = _chargeback(today)
    # The named demo's line first; the year's lines after it (none without the year).
    return "\n".join(line for line in (_collections_demo_seed(today), year, chargeback) if line)


def _chargeback(today: date) -> str:
    """A card payment of the demo year charged back: Stripe's ``charge.dispute.created``
    event, stored by the webhook and turned into a dispute by the chargeback run, evidence
    due in four days. Idempotent: the event is stored and applied once."""
    payment = (
        Payment.objects.filter(processor="stripe", processor_charge_id__startswith="ch_demo")
        .select_related("customer")
        .order_by("pk")
        .first()
    )
    if payment is None:
        return ""  # no demo year (scale 0)
    if Dispute.objects.filter(stripe_dispute_id=CHARGEBACK_ID).exists():
        return "Chargeback demo: already there."
    due = datetime.combine(today + timedelta(days=4), time(23, 59), tzinfo=UTC)
    with transaction.atomic():
        webhook_event_apply(
            provider="stripe",
            event={
                "id": f"evt_{CHARGEBACK_ID}",
                "type": "charge.dispute.created",
                "data": {
                    "object": {
                        "id": CHARGEBACK_ID,
                        "object": "dispute",
                        "charge": payment.processor_charge_id,
                        "amount": int(payment.amount.amount.scaleb(
                            minor_unit_exponent(payment.currency))),
                        "currency": payment.currency.lower(),
                        "reason": "fraudulent",
                        "status": "needs_response",
                        "evidence_details": {"due_by": int(due.timestamp())},
                    }
                },
            },
        )  # fmt: skip
        run = chargeback_events_apply()
    if run.failures:
        raise DomainError(f"The demo chargeback failed: {run.failures}", code="demo_failed")
    return (
        f"Chargeback demo: {payment.customer.name} disputed a card payment of "
        f"{payment.amount} (fraudulent), evidence due {due.date().isoformat()}."
    )


def _collections_demo_seed(today: date) -> str:
    if Customer.objects.filter(email=MARKER_EMAIL).exists():
        return "Receivables demo data: already there."
    # Invoices and dunning emails go out by mail: keep them out of the quick start's console.
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        transaction.atomic(),
    ):
        clerk = _demo_user(AR_CLERK_USERNAME, Role.AR_CLERK, "Robin", "Receivables")
        approver = _demo_user(APPROVER_USERNAME, Role.APPROVER, "Sam", "Approver")
        customers = _customers()
        invoices: dict[tuple[str, int], Invoice] = {}
        # What happens on each past day, before that day's collections run.
        days: dict[date, list[Callable[[], None]]] = {}
        for spec in _INVOICES:
            issue_date = today + timedelta(days=spec.due_in_days - TERMS_DAYS)

            def issue(spec: _DemoInvoice = spec, issue_date: date = issue_date) -> None:
                invoices[spec.customer, spec.due_in_days] = invoice_create(
                    actor=None,
                    customer_id=customers[spec.customer].pk,
                    issue_date=issue_date,
                    issue=True,
                    lines=[
                        LineInput(
                            description=spec.description,
                            quantity=spec.quantity,
                            unit_price=spec.unit_price,
                        )
                    ],
                )

            days.setdefault(issue_date, []).append(issue)
        paid_by, paid_amount, paid_days_ago = PARTLY_PAID

        def pay() -> None:
            invoice = next(i for (name, _), i in invoices.items() if name == paid_by)
            payment_record(
                actor=None,
                customer_id=invoice.customer_id,
                amount=paid_amount,
                currency="USD",
                method="ach",
                received_date=today - timedelta(days=paid_days_ago),
                reference="ACH part payment",
                allocations=[AllocationInput(invoice_id=invoice.pk, amount=paid_amount)],
            )

        days.setdefault(today - timedelta(days=paid_days_ago), []).append(pay)
        day = min(days)
        while day < today:
            for action in days.get(day, []):
                action()
            _run(day)
            day += timedelta(days=1)

        # Today's decisions, by the people who make them.
        lakeside = customers["Lakeside Catering LLC"]
        planned = list(
            Invoice.objects.filter(customer=lakeside, status="open").order_by("issue_date", "pk")
        )
        plan = payment_plan_create(
            actor=clerk,
            customer_id=lakeside.pk,
            invoice_ids=[i.pk for i in planned],
            installments=3,
            first_due_date=today + timedelta(days=7),
            interval_days=30,
        )
        disputed = invoices["Pinewood Dental Group", -15]
        dispute_open(
            actor=clerk,
            invoice_id=disputed.pk,
            amount=D(3) * D(185),
            reason="Billed for 8 seats; the contract covers 5.",
        )
        summit = customers["Summit Ridge Construction"]
        customer_credit_set(
            actor=approver,
            customer_id=summit.pk,
            credit_limit=None,
            credit_hold=True,
            credit_hold_reason="Escalated: 50 days overdue, no reply to the final notice.",
        )
    ours = Invoice.objects.filter(customer__in=customers.values())
    events = CollectionEvent.objects.filter(invoice__in=ours)
    fees = LateFee.objects.filter(invoice__in=ours).count()
    pending = len(collections_run(as_of=today, dry_run=True).actions)
    return (
        f"Receivables demo data: {len(customers)} customers, {len(_INVOICES)} invoices chased "
        f"by the daily collections run up to yesterday, {(today - min(days)).days} runs "
        f"({events.filter(outcome='done').count()} dunning steps done, "
        f"{events.filter(outcome='skipped').count()} skipped, {fees} late fees; today's run "
        f"left to do: {pending} actions), "
        f"a partly paid invoice, a payment plan of {plan.installments.count()} installments "
        f"({lakeside.name}), a dispute on {disputed.number} ({disputed.customer.name}) and a "
        f"credit hold ({summit.name}). Plans and disputes by {AR_CLERK_USERNAME}, the hold "
        f"by {APPROVER_USERNAME}."
    )
