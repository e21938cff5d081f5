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

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.test.utils import override_settings
from stdnum import iban

from core.accounts import user_ensure_in_role
from core.demo import demo_scale, demo_tasks_deferred
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
    purchase_order_reject,
    purchase_order_submit,
    receipt_create,
)
from payables.services.runs import (
    payment_run_approve,
    payment_run_confirm,
    payment_run_create,
    payment_run_export,
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
    """The year of suppliers first (their bills are the oldest), then the named demo."""
    year = payables_demo_year(today)
    # The named demo's line first; the year's after it (none without the year).
    return "\n".join(line for line in (_payables_demo_named(today), year) if line)


def _payables_demo_named(today: date) -> str:
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


# --- The demo year -------------------------------------------------------------------------
# Twelve months of the company's regular suppliers (hosting, rent, payroll service, agency,
# lawyers, a design studio in euros, a data supplier in pounds), each billing monthly; bills
# captured by the clerk and approved by the levels their amount needs (the rent and the
# larger hosting bills also by the controller); a payment run per month and currency
# exported and confirmed on its payment date (the bills of the last month wait for the next
# run). Orders at every approval level: one below the first level (approved on
# submission), one needing the approver and the controller (received, and billed above the
# order: the controller accepts the match exception), one reaching the finance admin's
# level (approver and controller have approved; the demo admin may give the last
# approval), and one rejected by the controller. Idempotent: found again by the first
# supplier's email.

YEAR_MARKER_EMAIL = "ar@stratus-cloud.example"
CONTROLLER_USERNAME = "demo-controller"


@dataclass(frozen=True, slots=True)
class _Supplier:
    name: str
    email: str
    currency: str
    country: str
    # Monthly bill at the start of the year, and its growth per month.
    monthly: Decimal
    growth: Decimal
    description: str
    # Bills every n months.
    every: int = 1


_SUPPLIERS = (
    _Supplier("Stratus Cloud Hosting Inc.", YEAR_MARKER_EMAIL, "USD", "US", D(6800), D("0.045"),
              "Cloud hosting and bandwidth"),
    _Supplier("Harborview Properties LLC", "leasing@harborview.example", "USD", "US", D(12500),
              D(0), "Office lease"),
    _Supplier("Ledgerline Payroll Services", "billing@ledgerline.example", "USD", "US", D(1850),
              D("0.02"), "Payroll processing"),
    _Supplier("Brightpath Marketing Agency", "accounts@brightpath.example", "USD", "US",
              D(4200), D("0.01"), "Content and campaign management"),
    _Supplier("Keystone Legal LLP", "billing@keystone-legal.example", "USD", "US", D(2400),
              D(0), "Legal services", every=2),
    _Supplier("Pacific Telecom Corp.", "invoices@pacific-telecom.example", "USD", "US",
              D("640.00"), D(0), "Phones and internet"),
    _Supplier("Nordlicht Design GmbH", "rechnung@nordlicht-design.example", "EUR", "DE",
              D(3200), D(0), "Product design retainer"),
    _Supplier("Thames Data Ltd", "accounts@thames-data.example", "GBP", "GB", D(1400),
              D("0.01"), "Market data licence"),
)  # fmt: skip


def _iban(country: str, bban: str) -> str:
    return f"{country}{iban.calc_check_digits(f'{country}00{bban}')}{bban}"


def _supplier_create(n: int, s: _Supplier, clerk: User, approver: User) -> Vendor:
    if s.currency == "USD":
        bank = BankDetails(
            account_holder=s.name, routing_number="011000015", account_number=f"60{n:08d}"
        )
        tax_id_type, tax_id = "us_ein", f"94-{2000000 + 7919 * n:07d}"
    else:
        bban = f"37040044{n:010d}" if s.country == "DE" else f"NWBK60161331{n:06d}"
        bank = BankDetails(
            account_holder=s.name,
            iban=_iban(s.country, bban),
            bic="COBADEFFXXX" if s.country == "DE" else "NWBKGB2L",
        )
        tax_id_type = tax_id = ""
    vendor = vendor_create(
        actor=clerk,
        name=s.name,
        email=s.email,
        currency=s.currency,
        country=s.country,
        payment_terms_days=30,
        bank=bank,
        tax_id_type=tax_id_type,
        tax_id=tax_id,
    )
    return vendor_activate(vendor_id=vendor.pk, actor=approver)


def _month_start(today: date, months_back: int) -> date:
    first = today.replace(day=1)
    year, month = divmod(first.year * 12 + first.month - 1 - months_back, 12)
    return date(year, month + 1, 1)


def _bill_approve_all(bill_id: int, approvers: list[User], **kwargs: Any) -> None:
    """Approve with each person in turn until the bill is approved (the levels its amount
    needs: the approver, then the controller)."""
    for person in approvers:
        bill = bill_approve(bill_id=bill_id, actor=person, **kwargs)
        if bill.status != "pending_approval":
            return


def _monthly_bills(today: date, clerk: User, approvers: list[User], months: int) -> tuple[int, int]:
    """Each supplier's bills for the months before this one, and a payment run per month
    and currency paying them on the first of the next month. Returns (bills, runs paid)."""
    vendors = [
        (s, _supplier_create(n, s, clerk, approvers[0])) for n, s in enumerate(_SUPPLIERS, 1)
    ]
    bills = runs = 0
    for back in range(months, 0, -1):
        month = _month_start(today, back)
        month_bills: dict[str, list[int]] = {}
        for n, (s, vendor) in enumerate(vendors):
            if (months - back) % s.every:
                continue
            amount = (s.monthly * (1 + s.growth) ** (months - back)).quantize(D("1.00"))
            bill = bill_create(
                actor=clerk,
                vendor_id=vendor.pk,
                number=f"{s.name[:3].upper()}-{month:%Y%m}-{n + 1:02d}",
                currency=s.currency,
                bill_date=month + timedelta(days=4),
                description=f"{s.description}, {month:%B %Y}",
                lines=[BillLineInput(description=s.description, quantity=D(1), unit_price=amount)],
            )
            _bill_approve_all(bill.pk, approvers, comment="Recurring service, checked.")
            month_bills.setdefault(s.currency, []).append(bill.pk)
            bills += 1
        pay_on = _month_start(today, back - 1) + timedelta(days=2)
        if pay_on > today - timedelta(days=3):
            continue  # this month's bills wait for the next run
        for currency, bill_ids in month_bills.items():
            run = payment_run_create(
                currency=currency,
                pay_by=pay_on + timedelta(days=30),
                payment_date=pay_on,
                bill_ids=bill_ids,
                include_expenses=False,
                actor=clerk,
            )
            payment_run_submit(run_id=run.pk, actor=clerk)
            payment_run_approve(run_id=run.pk, actor=approvers[0], comment="Monthly run.")
            payment_run_export(run_id=run.pk, actor=clerk)
            payment_run_confirm(run_id=run.pk, actor=clerk)
            runs += 1
    return bills, runs


def _orders_at_every_level(today: date, clerk: User, approver: User, controller: User) -> list[str]:
    """Orders reaching each approval level (below the first, approver, controller, finance
    admin) and one rejected."""
    supplier = _supplier_create(
        90,
        _Supplier("Ironclad Security Audits Inc.", "sales@ironclad-audits.example", "USD", "US",
                  D(0), D(0), ""),
        clerk,
        approver,
    )  # fmt: skip
    done = []
    # Below the first level: approved on submission, placed and received.
    chairs = purchase_order_create(
        actor=clerk,
        vendor_id=supplier.pk,
        currency="USD",
        department="Operations",
        description="Visitor chairs",
        lines=[LineInput(description="Visitor chair", quantity=D(6), unit_price=D("95.00"))],
    )
    purchase_order_submit(order_id=chairs.pk, actor=clerk)
    purchase_order_place(order_id=chairs.pk, actor=clerk, send=False)
    done.append(f"{chairs.number} approved on submission")
    # Approver and controller; billed above the order: the controller accepts the exception.
    audit = purchase_order_create(
        actor=clerk,
        vendor_id=supplier.pk,
        currency="USD",
        department="Security",
        description="Annual penetration test and SOC 2 readiness review",
        lines=[LineInput(description="Security audit", quantity=D(1), unit_price=D(24000))],
    )
    purchase_order_submit(order_id=audit.pk, actor=clerk)
    purchase_order_approve(order_id=audit.pk, actor=approver, comment="In the security budget.")
    purchase_order_approve(order_id=audit.pk, actor=controller, comment="Approved for Q4.")
    purchase_order_place(order_id=audit.pk, actor=clerk, send=False)
    (line,) = list(audit.lines.all())
    receipt_create(
        order_id=audit.pk,
        actor=clerk,
        received_on=today - timedelta(days=12),
        note="Report delivered.",
        lines=[ReceiptLineInput(order_line_id=line.pk, quantity=D(1))],
    )
    bill = bill_create(
        actor=clerk,
        vendor_id=supplier.pk,
        number="ISA-7781",
        currency="USD",
        bill_date=today - timedelta(days=10),
        purchase_order_id=audit.pk,
        description="Security audit (with an extra retest day)",
        lines=[
            BillLineInput(
                description="Security audit and retest",
                quantity=D(1),
                unit_price=D(25150),
                order_line_id=line.pk,
            )
        ],
    )
    bill_approve(bill_id=bill.pk, actor=approver, comment="Retest day agreed by the CTO.",
                 accept_match_exception=True)  # fmt: skip
    bill_approve(bill_id=bill.pk, actor=controller, comment="Variance accepted.")
    done.append(f"{audit.number} approved by approver and controller, billed with a match "
                "exception accepted")  # fmt: skip
    # Up to the finance admin's level: waiting for the demo admin's approval.
    hardware = purchase_order_create(
        actor=clerk,
        vendor_id=supplier.pk,
        currency="USD",
        department="IT",
        description="Data room hardware refresh",
        lines=[LineInput(description="Server rack, configured", quantity=D(4),
                         unit_price=D(31500))],
    )  # fmt: skip
    purchase_order_submit(order_id=hardware.pk, actor=clerk)
    purchase_order_approve(order_id=hardware.pk, actor=approver, comment="Needed for growth.")
    purchase_order_approve(order_id=hardware.pk, actor=controller, comment="Budget confirmed.")
    done.append(f"{hardware.number} waiting for a finance admin")
    # Rejected by the controller.
    offsite = purchase_order_create(
        actor=clerk,
        vendor_id=supplier.pk,
        currency="USD",
        department="People",
        description="Team offsite venue",
        lines=[LineInput(description="Venue and catering", quantity=D(1), unit_price=D(14800))],
    )
    purchase_order_submit(order_id=offsite.pk, actor=clerk)
    purchase_order_approve(order_id=offsite.pk, actor=approver, comment="Fine by me.")
    purchase_order_reject(order_id=offsite.pk, actor=controller, comment="Not this quarter.")
    done.append(f"{offsite.number} rejected")
    return done


def payables_demo_year(today: date) -> str:
    if Vendor.objects.filter(email=YEAR_MARKER_EMAIL).exists():
        return "Payables demo year: already there."
    if demo_scale() == 0:
        return ""
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        demo_tasks_deferred(),
        transaction.atomic(),
    ):
        clerk = _demo_user(CLERK_USERNAME, Role.AP_CLERK, "Alex", "Clerk")
        approver = _demo_user(APPROVER_USERNAME, Role.APPROVER, "Sam", "Approver")
        controller = _demo_user(CONTROLLER_USERNAME, Role.CONTROLLER, "Casey", "Controller")
        bills, runs = _monthly_bills(today, clerk, [approver, controller], 12)
        orders = _orders_at_every_level(today, clerk, approver, controller)
    return (
        f"Payables demo year: {bills} supplier bills over 12 months, {runs} payment runs "
        f"exported and confirmed; orders {'; '.join(orders)}."
    )
