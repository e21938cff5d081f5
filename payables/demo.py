"""Payables demo data for the quick start: vendors in each onboarding state, an order waiting
for approval, an order placed and partly received, two bills against it (one matched and
approved, one with a match exception waiting for an approver), two bills for services (one
overdue, one due in three days), a bill in euros waiting for approval, an approved expense
report, and a payment run approved and ready to release (export the payment file) paying
the overdue bill and the matched bill; the bill due in three days and the expense report
wait for the next run.

Everything is written through the payables services, by two demo people: ``demo-ap-clerk``
(ap_clerk) captures and requests, ``demo-approver`` (approver) activates and approves. The
printed ``demo-admin`` (finance_admin) has decided nothing, so it can approve the waiting
order and accept or reject the match exception on /approvals/. Idempotent: seeded once,
found again by the first demo vendor's email.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.test.utils import override_settings

from core.accounts import user_ensure_in_role
from core.roles import Role
from payables.models import ExpenseCategory, Vendor
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.expenses import (
    ExpenseLineInput,
    expense_report_approve,
    expense_report_create,
    expense_report_submit,
)
from payables.services.orders import (
    LineInput,
    ReceiptLineInput,
    purchase_order_approve,
    purchase_order_create,
    purchase_order_place,
    purchase_order_submit,
    receipt_create,
)
from payables.services.runs import (
    payment_run_approve,
    payment_run_create,
    payment_run_submit,
)
from payables.services.vendors import (
    BankDetails,
    vendor_activate,
    vendor_bank_change_approve,
    vendor_bank_change_request,
    vendor_create,
)

DEMO_MARKER_EMAIL = "billing@northwind-supplies.example"
CLERK_USERNAME = "demo-ap-clerk"
APPROVER_USERNAME = "demo-approver"
D = Decimal


def _demo_user(username: str, role: str, first: str, last: str) -> User:
    user, _ = user_ensure_in_role(username=username, role=role)
    if not user.email:
        user.first_name, user.last_name = first, last
        user.email = f"{username}@demo.example"
        user.save(update_fields=["first_name", "last_name", "email"])
    return user


def payables_demo_seed(today: date) -> str:
    if Vendor.objects.filter(email=DEMO_MARKER_EMAIL).exists():
        return "Payables demo data: already there."
    # Bank detail changes are announced by email: keep them out of the quick start's console.
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        transaction.atomic(),
    ):
        clerk = _demo_user(CLERK_USERNAME, Role.AP_CLERK, "Alex", "Clerk")
        approver = _demo_user(APPROVER_USERNAME, Role.APPROVER, "Sam", "Approver")
        northwind = vendor_create(
            actor=clerk,
            name="Northwind Supplies Inc.",
            email=DEMO_MARKER_EMAIL,
            currency="USD",
            country="US",
            address="200 Harbor Way\nSeattle, WA 98104",
            tax_id_type="us_ein",
            tax_id="94-1144100",
            payment_terms_days=30,
            discount_percent=D(2),
            discount_days=10,
            bank=BankDetails(
                account_holder="Northwind Supplies Inc.",
                routing_number="011000015",
                account_number="4401239876",
            ),
        )
        northwind = vendor_activate(vendor_id=northwind.pk, actor=approver)
        vendor_create(
            actor=clerk,
            name="Bluebird Logistics LLC",
            email="ap@bluebird-logistics.example",
            currency="USD",
            country="US",
            tax_id_type="us_ein",
            tax_id="04-2103594",
            bank=BankDetails(
                account_holder="Bluebird Logistics LLC",
                routing_number="011000015",
                account_number="77120045",
            ),
        )  # pending review: someone other than the clerk activates it
        kessler = vendor_create(
            actor=clerk,
            name="Kessler Maschinenbau GmbH",
            email="buchhaltung@kessler.example",
            currency="EUR",
            country="DE",
            address="Industriestraße 12\n70565 Stuttgart",
            tax_id_type="eu_vat",
            tax_id="DE136695976",
            payment_terms_days=45,
            bank=BankDetails(
                account_holder="Kessler Maschinenbau GmbH",
                iban="DE89 3704 0044 0532 0130 00",
                bic="COBADEFFXXX",
            ),
        )
        vendor_activate(vendor_id=kessler.pk, actor=approver)

        # An order waiting for an approver (the demo admin may approve it).
        waiting = purchase_order_create(
            actor=clerk,
            vendor_id=northwind.pk,
            currency="USD",
            department="Operations",
            description="Warehouse shelving",
            lines=[
                LineInput(description="Steel shelving unit", quantity=D(6), unit_price=D("320.00")),
                LineInput(description="Assembly service", quantity=D(1), unit_price=D("480.00")),
            ],
        )
        purchase_order_submit(order_id=waiting.pk, actor=clerk)

        # An order approved, placed and partly received.
        placed = purchase_order_create(
            actor=clerk,
            vendor_id=northwind.pk,
            currency="USD",
            department="IT",
            description="Laptops for the new hires",
            lines=[
                LineInput(description="Laptop 14in", quantity=D(4), unit_price=D("1150.00")),
                LineInput(description="Docking station", quantity=D(4), unit_price=D("180.00")),
            ],
        )
        purchase_order_submit(order_id=placed.pk, actor=clerk)
        purchase_order_approve(order_id=placed.pk, actor=approver, comment="Budgeted in Q3.")
        purchase_order_place(order_id=placed.pk, actor=clerk, send=False)
        laptops, docks = list(placed.lines.order_by("position"))
        receipt_create(
            order_id=placed.pk,
            actor=clerk,
            received_on=today - timedelta(days=6),
            note="Laptops delivered; docking stations back-ordered (2 of 4).",
            lines=[
                ReceiptLineInput(order_line_id=laptops.pk, quantity=D(4)),
                ReceiptLineInput(order_line_id=docks.pk, quantity=D(2)),
            ],
        )

        # A bill that matches (approved and posted), and one billing more than was received.
        matched = bill_create(
            actor=clerk,
            vendor_id=northwind.pk,
            number="NW-10231",
            currency="USD",
            bill_date=today - timedelta(days=5),
            purchase_order_id=placed.pk,
            description="Laptops",
            lines=[
                BillLineInput(
                    description="Laptop 14in",
                    quantity=D(4),
                    unit_price=D("1150.00"),
                    order_line_id=laptops.pk,
                )
            ],
        )
        bill_approve(bill_id=matched.pk, actor=approver, comment="Matches order and receipt.")
        bill_create(
            actor=clerk,
            vendor_id=northwind.pk,
            number="NW-10232",
            currency="USD",
            bill_date=today - timedelta(days=2),
            purchase_order_id=placed.pk,
            description="Docking stations (billed in full, half received)",
            lines=[
                BillLineInput(
                    description="Docking station",
                    quantity=D(4),
                    unit_price=D("180.00"),
                    order_line_id=docks.pk,
                )
            ],
        )

        # An approved expense report, reimbursed to the clerk's payee record.
        categories = {c.name: c for c in ExpenseCategory.objects.filter(active=True)}
        report = expense_report_create(
            actor=clerk,
            title="Client visit in Portland",
            currency="USD",
            lines=[
                ExpenseLineInput(
                    spent_on=today - timedelta(days=8),
                    category_id=categories["Travel"].pk,
                    description="Train tickets",
                    amount=D("86.40"),
                ),
                ExpenseLineInput(
                    spent_on=today - timedelta(days=8),
                    category_id=categories["Meals and entertainment"].pk,
                    description="Lunch with the client",
                    amount=D("42.10"),
                ),
            ],
        )
        payee = report.payee
        change = vendor_bank_change_request(
            vendor_id=payee.pk,
            bank=BankDetails(
                account_holder="Alex Clerk", routing_number="011000015", account_number="5550001234"
            ),
            reason="Salary account for reimbursements",
            actor=clerk,
        )
        vendor_bank_change_approve(change_id=change.pk, actor=approver, comment="Checked by phone.")
        vendor_activate(vendor_id=payee.pk, actor=approver)
        expense_report_submit(report_id=report.pk, actor=clerk)
        expense_report_approve(report_id=report.pk, actor=approver)

        # Service bills without an order: one overdue (net 30, dated 45 days ago), one due in
        # three days; both approved.
        overdue = bill_create(
            actor=clerk,
            vendor_id=northwind.pk,
            number="NW-10198",
            currency="USD",
            bill_date=today - timedelta(days=45),
            description="Office cleaning, last month",
            lines=[
                BillLineInput(description="Office cleaning", quantity=D(1), unit_price=D("860.00"))
            ],
        )
        bill_approve(bill_id=overdue.pk, actor=approver, comment="Service confirmed by facilities.")
        due_soon = bill_create(
            actor=clerk,
            vendor_id=northwind.pk,
            number="NW-10240",
            currency="USD",
            bill_date=today - timedelta(days=27),
            description="Printer toner and paper",
            lines=[
                BillLineInput(description="Toner cartridge", quantity=D(6), unit_price=D("74.50")),
                BillLineInput(description="Paper, box of 5 reams", quantity=D(4), unit_price=D(38)),
            ],
        )
        bill_approve(bill_id=due_soon.pk, actor=approver, comment="Delivered complete.")
        # A bill in euros waiting for an approver (the demo admin may approve it).
        bill_create(
            actor=clerk,
            vendor_id=kessler.pk,
            number="KM-2291",
            currency="EUR",
            bill_date=today - timedelta(days=3),
            description="Spare parts for the packing line",
            lines=[
                BillLineInput(description="Drive belt", quantity=D(2), unit_price=D("145.00")),
                BillLineInput(description="Service visit", quantity=D(1), unit_price=D("380.00")),
            ],
        )

        # A run paying the overdue bill and the matched bill (with its early-payment discount),
        # approved: ready to release. The bill due in three days and the expense report are
        # left for the next run.
        run = payment_run_create(
            currency="USD",
            pay_by=today + timedelta(days=30),
            bill_ids=[matched.pk, overdue.pk],
            actor=clerk,
        )
        payment_run_submit(run_id=run.pk, actor=clerk)
        run = payment_run_approve(
            run_id=run.pk, actor=approver, comment="Checked against AP aging."
        )
    return (
        "Payables demo data: 3 vendors (one pending review), an order waiting for approval, "
        "an order placed and partly received, 5 bills (one matched and approved, one with a "
        "match exception to decide, one overdue, one due in 3 days, one in EUR waiting for "
        "approval), an approved expense report and payment run "
        f"{run.number} ({run.item_count} payments, {run.get_status_display().lower()}, ready to "
        f"release). Requests by {CLERK_USERNAME}, approvals by {APPROVER_USERNAME}."
    )
