"""What the approval screens know about each kind of document: how to find the ones pending,
who made them, what they are worth, what to show on their page, which stored files belong to
them, and which service decides on them.

A kind is listed in ``SCREENS`` once its approve and reject services exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.db import models
from django.db.models.fields.files import FieldFile
from django.shortcuts import get_object_or_404

from core.money import round_money
from core.system_settings import system_settings
from payables.enums import (
    BankChangeStatus,
    BillStatus,
    DocumentKind,
    ExpenseReportStatus,
    MatchStatus,
    PaymentRunStatus,
    PurchaseOrderStatus,
)
from payables.models import (
    Bill,
    ExpenseReport,
    PaymentRun,
    PurchaseOrder,
    Vendor,
    VendorBankChange,
    VendorDocument,
)
from payables.services.approvals import required_roles
from payables.services.bills import bill_approve, bill_reject, bill_version
from payables.services.common import content_hash
from payables.services.expenses import (
    expense_report_approve,
    expense_report_reject,
    expense_report_version,
)
from payables.services.orders import (
    purchase_order_approve,
    purchase_order_reject,
    purchase_order_version,
)
from payables.services.runs import payment_run_approve, payment_run_reject, payment_run_version
from payables.services.vendors import vendor_bank_change_approve, vendor_bank_change_reject


def money_display(amount: Decimal | None, currency: str) -> str:
    """``1,234.50 USD``: rounded to the currency's minor unit, thousands grouped."""
    if amount is None:
        return ""
    return f"{round_money(amount, currency):,} {currency}"


def person(user: Any) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@dataclass(frozen=True)
class Summary:
    """One document as the inbox lists it."""

    number: str
    party: str
    amount: str
    waiting_since: datetime
    flag: str = ""


@dataclass(frozen=True)
class Cell:
    label: str
    value: str
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    # Columns right-aligned (amounts, quantities).
    numeric: set[int] = field(default_factory=set)

    @property
    def head(self) -> list[Cell]:
        return [Cell(h, h, i in self.numeric) for i, h in enumerate(self.headers)]

    @property
    def body(self) -> list[list[Cell]]:
        """Each cell knows its column's name: on a phone a row becomes a labelled card."""
        return [
            [Cell(c.label, value, c.numeric) for c, value in zip(self.head, row, strict=True)]
            for row in self.rows
        ]


@dataclass(frozen=True)
class StoredFile:
    """A stored file a document's page links to, served only to users allowed to view it."""

    name: str
    label: str
    file: FieldFile
    filename: str
    content_type: str
    permission: str


@dataclass(frozen=True)
class DecisionRecord:
    """A decision as the page lists it (an Approval row, or the decision on a bank change)."""

    decision: str
    user: str
    on_behalf_of: str
    role: str
    decided_at: datetime
    comment: str
    voided_at: datetime | None = None
    void_reason: str = ""


class DocumentScreen:
    """The screens' view of one kind of document. Subclasses fill in the specifics."""

    kind: ClassVar[str]
    slug: ClassVar[str]
    label: ClassVar[str]
    model: ClassVar[type[models.Model]]
    view_permission: ClassVar[str]
    lines_title: ClassVar[str] = "Lines"
    # What the kind's approve service asks for when no level applies (bills, expense
    # reports, payment runs and bank changes always need a second person).
    fallback_roles: ClassVar[list[str]] = []

    def pending(self, actor: Any) -> models.QuerySet[Any]:
        """Documents waiting for decisions that ``actor`` did not make (maker-checker first,
        in SQL), with what the inbox shows selected in the same query."""
        raise NotImplementedError

    def get(self, pk: int) -> Any:
        raise NotImplementedError

    def is_pending(self, doc: Any) -> bool:
        raise NotImplementedError

    def maker_ids(self, doc: Any) -> set[int]:
        raise NotImplementedError

    def amount_functional(self, doc: Any) -> Decimal:
        raise NotImplementedError

    def summary(self, doc: Any) -> Summary:
        raise NotImplementedError

    def version(self, doc: Any) -> str:
        """The hash of the content decided on, as the kind's service computes it (C5): the
        page sends it back with the decision, so a document changed since the page was
        opened is not decided on unseen."""
        raise NotImplementedError

    def required(self, doc: Any) -> list[str]:
        """The roles this document needs, as its approve service computes them."""
        return required_roles(self.kind, self.amount_functional(doc)) or list(self.fallback_roles)

    def status_display(self, doc: Any) -> tuple[str, str]:
        """(value, label) of the document's state."""
        return doc.status, doc.get_status_display()

    def facts(self, doc: Any) -> list[tuple[str, str]]:
        return []

    def lines(self, doc: Any) -> Table | None:
        return None

    def files(self, doc: Any) -> list[StoredFile]:
        return []

    def match_result(self, doc: Any) -> Table | None:
        return None

    def match_note(self, doc: Any) -> str:
        return ""

    def match_exception(self, doc: Any) -> bool:
        """Whether approving needs the approver to accept a three-way match exception."""
        return False

    def extra_decisions(self, doc: Any) -> list[DecisionRecord]:
        """Decisions kept on the document itself rather than as Approval rows."""
        return []

    def approve(
        self, *, pk: int, actor: Any, comment: str, accept_match_exception: bool, version: str
    ) -> Any:
        """Decide through the service; ``version`` is the hash of what the person saw, which
        the service checks again under the row lock."""
        raise NotImplementedError

    def reject(self, *, pk: int, actor: Any, comment: str, version: str) -> Any:
        raise NotImplementedError


def _vendor_documents(vendor: Vendor) -> list[StoredFile]:
    docs = VendorDocument.objects.filter(vendor=vendor).order_by("-uploaded_at", "-pk")
    return [
        StoredFile(
            name=f"vendor-document-{doc.pk}",
            label=f"{doc.get_kind_display()}: {doc.original_name}",
            file=doc.file,
            filename=doc.original_name,
            content_type=doc.content_type,
            permission="payables.view_vendordocument",
        )
        for doc in docs
    ]


def _date(value: Any) -> str:
    return f"{value:%Y-%m-%d}" if value else ""


def _pdf_of(order: PurchaseOrder | None) -> list[StoredFile]:
    if order is None or not order.pdf:
        return []
    return [
        StoredFile(
            name="purchase-order-pdf",
            label=f"Purchase order PDF ({order.number}.pdf)",
            file=order.pdf,
            filename=f"{order.number}.pdf",
            content_type="application/pdf",
            permission="payables.view_purchaseorder",
        )
    ]


CONTENT_TYPES = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg"}


def _extension(name: str) -> str:
    tail = name.rsplit("/", 1)[-1]
    return "." + tail.rsplit(".", 1)[-1].lower() if "." in tail else ""


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(_extension(name), "application/octet-stream")


def _quantity(value: Any) -> str:
    try:
        return f"{Decimal(str(value)).normalize():f}"
    except ArithmeticError:
        return str(value or "")


def _price(value: Any, currency: str) -> str:
    try:
        return money_display(Decimal(str(value)), currency)
    except ArithmeticError:
        return str(value or "")


def _percent(value: Any) -> str:
    try:
        return f"{Decimal(str(value)) * 100:.2f} %"
    except (ArithmeticError, ValueError, TypeError):
        return ""


class PurchaseOrderScreen(DocumentScreen):
    kind = DocumentKind.PURCHASE_ORDER
    slug = "purchase-orders"
    label = "Purchase order"
    model = PurchaseOrder
    view_permission = "payables.view_purchaseorder"

    def pending(self, actor: Any) -> models.QuerySet[Any]:
        return (
            PurchaseOrder.objects.filter(status=PurchaseOrderStatus.PENDING_APPROVAL)
            .exclude(requester_id=actor.pk)
            .select_related("vendor")
        )

    def get(self, pk: int) -> PurchaseOrder:
        return get_object_or_404(PurchaseOrder.objects.select_related("vendor", "requester"), pk=pk)

    def is_pending(self, doc: PurchaseOrder) -> bool:
        return doc.status == PurchaseOrderStatus.PENDING_APPROVAL

    def maker_ids(self, doc: PurchaseOrder) -> set[int]:
        return {doc.requester_id}

    def amount_functional(self, doc: PurchaseOrder) -> Decimal:
        return doc.total_functional

    def summary(self, doc: PurchaseOrder) -> Summary:
        return Summary(
            number=doc.number,
            party=doc.vendor.name,
            amount=money_display(doc.total.amount, doc.currency),
            waiting_since=doc.submitted_at or doc.created_at,
        )

    def facts(self, doc: PurchaseOrder) -> list[tuple[str, str]]:
        functional = system_settings().functional_currency
        facts = [
            ("Vendor", doc.vendor.name),
            ("Requested by", person(doc.requester)),
            ("Department", doc.department),
            ("Description", doc.description),
            ("Total", money_display(doc.total.amount, doc.currency)),
        ]
        if doc.currency != functional and doc.total_functional:
            facts.append(
                ("Total in " + functional, money_display(doc.total_functional, functional))
            )
        return [(k, v) for k, v in facts if v]

    def lines(self, doc: PurchaseOrder) -> Table:
        rows = [
            [
                str(line.position),
                line.description,
                f"{line.quantity.normalize():f}",
                money_display(line.unit_price.amount, line.currency),
                money_display(line.amount.amount, line.currency),
            ]
            for line in doc.lines.order_by("position")
        ]
        return Table(["#", "Description", "Quantity", "Unit price", "Amount"], rows, {2, 3, 4})

    def files(self, doc: PurchaseOrder) -> list[StoredFile]:
        return _pdf_of(doc) + _vendor_documents(doc.vendor)

    def version(self, doc: PurchaseOrder) -> str:
        return purchase_order_version(doc)

    def approve(
        self, *, pk: int, actor: Any, comment: str, accept_match_exception: bool, version: str
    ) -> Any:
        return purchase_order_approve(
            order_id=pk, actor=actor, comment=comment, expected_version=version
        )

    def reject(self, *, pk: int, actor: Any, comment: str, version: str) -> Any:
        return purchase_order_reject(
            order_id=pk, actor=actor, comment=comment, expected_version=version
        )


class BankChangeScreen(DocumentScreen):
    kind = DocumentKind.BANK_CHANGE
    slug = "bank-changes"
    label = "Bank details change"
    lines_title = "Bank details"
    # The service needs one person holding approve_vendorbankchange besides the requester.
    fallback_roles = ["approver"]
    model = VendorBankChange
    view_permission = "payables.view_vendorbankchange"

    def pending(self, actor: Any) -> models.QuerySet[Any]:
        return (
            VendorBankChange.objects.filter(status=BankChangeStatus.PENDING)
            .exclude(requested_by_id=actor.pk)
            .select_related("vendor")
        )

    def get(self, pk: int) -> VendorBankChange:
        return get_object_or_404(
            VendorBankChange.objects.select_related("vendor", "requested_by", "decided_by"), pk=pk
        )

    def is_pending(self, doc: VendorBankChange) -> bool:
        return doc.status == BankChangeStatus.PENDING

    def maker_ids(self, doc: VendorBankChange) -> set[int]:
        return {doc.requested_by_id} if doc.requested_by_id else set()

    def amount_functional(self, doc: VendorBankChange) -> Decimal:
        return Decimal(0)

    def summary(self, doc: VendorBankChange) -> Summary:
        return Summary(
            number=f"Bank change {doc.pk}",
            party=doc.vendor.name,
            amount="",
            waiting_since=doc.requested_at,
            flag="Payments to this vendor are on hold",
        )

    def facts(self, doc: VendorBankChange) -> list[tuple[str, str]]:
        facts = [
            ("Vendor", doc.vendor.name),
            ("Vendor contact", doc.vendor.email),
            ("Requested by", person(doc.requested_by)),
            ("Reason given", doc.reason),
        ]
        return [(k, v) for k, v in facts if v]

    def lines(self, doc: VendorBankChange) -> Table:
        vendor = doc.vendor
        rows = [
            ["Account holder", vendor.bank_account_holder, doc.bank_account_holder],
            ["Routing number", vendor.bank_routing_number, doc.bank_routing_number],
            ["Account number", vendor.bank_account_masked, doc.bank_account_masked],
            ["Account type", vendor.bank_account_type, doc.bank_account_type],
            ["IBAN", vendor.iban_masked, doc.iban_masked],
            ["BIC", vendor.bic, doc.bic],
        ]
        rows = [row for row in rows if row[1] or row[2]]
        for row in rows:
            row.append("changed" if row[1] != row[2] else "")
        return Table(["Detail", "In force", "Proposed", ""], rows)

    def files(self, doc: VendorBankChange) -> list[StoredFile]:
        return _vendor_documents(doc.vendor)

    def extra_decisions(self, doc: VendorBankChange) -> list[DecisionRecord]:
        if doc.decided_at is None:
            return []
        return [
            DecisionRecord(
                decision=doc.get_status_display(),
                user=person(doc.decided_by),
                on_behalf_of="",
                role="",
                decided_at=doc.decided_at,
                comment=doc.comment,
            )
        ]

    def version(self, doc: VendorBankChange) -> str:
        return content_hash(
            {
                "vendor": doc.vendor_id,
                "holder": doc.bank_account_holder,
                "routing": doc.bank_routing_number,
                "account": doc.bank_account_number,
                "type": doc.bank_account_type,
                "iban": doc.iban,
                "bic": doc.bic,
            }
        )

    def approve(
        self, *, pk: int, actor: Any, comment: str, accept_match_exception: bool, version: str
    ) -> Any:
        return vendor_bank_change_approve(change_id=pk, actor=actor, comment=comment)

    def reject(self, *, pk: int, actor: Any, comment: str, version: str) -> Any:
        return vendor_bank_change_reject(change_id=pk, actor=actor, comment=comment)


class BillScreen(DocumentScreen):
    kind = DocumentKind.BILL
    slug = "bills"
    label = "Vendor bill"
    model = Bill
    view_permission = "payables.view_bill"
    fallback_roles = ["approver"]

    def pending(self, actor: Any) -> models.QuerySet[Any]:
        return (
            Bill.objects.filter(status=BillStatus.PENDING_APPROVAL)
            .exclude(created_by_id=actor.pk)
            .select_related("vendor")
        )

    def get(self, pk: int) -> Bill:
        return get_object_or_404(
            Bill.objects.select_related("vendor", "purchase_order", "created_by"), pk=pk
        )

    def is_pending(self, doc: Bill) -> bool:
        return doc.status == BillStatus.PENDING_APPROVAL

    def maker_ids(self, doc: Bill) -> set[int]:
        return {doc.created_by_id} if doc.created_by_id else set()

    def amount_functional(self, doc: Bill) -> Decimal:
        return doc.total_functional

    def summary(self, doc: Bill) -> Summary:
        flag = "Match exception" if doc.match_status == MatchStatus.EXCEPTION else ""
        return Summary(
            number=doc.number,
            party=doc.vendor.name,
            amount=money_display(doc.total.amount, doc.currency),
            waiting_since=doc.submitted_at or doc.created_at,
            flag=flag,
        )

    def facts(self, doc: Bill) -> list[tuple[str, str]]:
        discount = ""
        if doc.discount_date and doc.discount_amount.amount:
            discount = (
                f"{money_display(doc.discount_amount.amount, doc.currency)} if paid by "
                f"{_date(doc.discount_date)}"
            )
        facts = [
            ("Vendor", doc.vendor.name),
            ("Purchase order", doc.purchase_order.number if doc.purchase_order else ""),
            ("Bill date", _date(doc.bill_date)),
            ("Due date", _date(doc.due_date)),
            ("Total", money_display(doc.total.amount, doc.currency)),
            ("Early-payment discount", discount),
            ("Three-way match", doc.get_match_status_display()),
            ("Captured by", person(doc.created_by)),
            ("Description", doc.description),
            ("Let through as a possible duplicate", doc.duplicate_override_reason),
        ]
        return [(k, v) for k, v in facts if v]

    def lines(self, doc: Bill) -> Table:
        rows = [
            [
                str(line.position),
                line.description,
                f"{line.quantity.normalize():f}",
                money_display(line.unit_price.amount, line.currency),
                money_display(line.amount.amount, line.currency),
            ]
            for line in doc.lines.order_by("position")
        ]
        return Table(["#", "Description", "Quantity", "Unit price", "Amount"], rows, {2, 3, 4})

    def match_result(self, doc: Bill) -> Table | None:
        result = doc.match_result or {}
        lines = result.get("lines") or []
        if not lines:
            return None
        currency = doc.currency
        rows = []
        for line in lines:
            ok = line.get("ok")
            rows.append(
                [
                    str(line.get("position", "")),
                    _quantity(line.get("ordered")),
                    _quantity(line.get("received")),
                    _quantity(line.get("billed")),
                    _price(line.get("order_unit_price"), currency),
                    _price(line.get("unit_price"), currency),
                    _percent(line.get("price_variance")),
                    "within tolerance" if ok else (line.get("reason") or "exception"),
                ]
            )
        headers = ["#", "Ordered", "Received", "Billed", "Order price", "Billed price"]
        return Table([*headers, "Price variance", "Result"], rows, {1, 2, 3, 4, 5, 6})

    def match_exception(self, doc: Bill) -> bool:
        return doc.match_status == MatchStatus.EXCEPTION

    def match_note(self, doc: Bill) -> str:
        tolerance = (doc.match_result or {}).get("tolerance") or {}
        if not tolerance:
            return ""
        return (
            f"Tolerances: price +{_percent(tolerance.get('price_percent'))}, "
            f"quantity +{_percent(tolerance.get('quantity_percent'))}"
        )

    def files(self, doc: Bill) -> list[StoredFile]:
        result = []
        if doc.attachment:
            result.append(
                StoredFile(
                    name="attachment",
                    label="Bill as received",
                    file=doc.attachment,
                    filename=f"bill-{doc.number}{_extension(doc.attachment.name)}",
                    content_type=_content_type(doc.attachment.name),
                    permission=self.view_permission,
                )
            )
        return result + _pdf_of(doc.purchase_order) + _vendor_documents(doc.vendor)

    def version(self, doc: Bill) -> str:
        return bill_version(doc)

    def approve(
        self, *, pk: int, actor: Any, comment: str, accept_match_exception: bool, version: str
    ) -> Any:
        return bill_approve(
            bill_id=pk,
            actor=actor,
            comment=comment,
            accept_match_exception=accept_match_exception,
            expected_version=version,
        )

    def reject(self, *, pk: int, actor: Any, comment: str, version: str) -> Any:
        return bill_reject(bill_id=pk, actor=actor, comment=comment, expected_version=version)


class ExpenseReportScreen(DocumentScreen):
    kind = DocumentKind.EXPENSE_REPORT
    slug = "expense-reports"
    label = "Expense report"
    model = ExpenseReport
    view_permission = "payables.view_expensereport"
    fallback_roles = ["approver"]

    def pending(self, actor: Any) -> models.QuerySet[Any]:
        return (
            ExpenseReport.objects.filter(status=ExpenseReportStatus.SUBMITTED)
            .exclude(employee_id=actor.pk)
            .select_related("employee")
        )

    def get(self, pk: int) -> ExpenseReport:
        return get_object_or_404(ExpenseReport.objects.select_related("employee"), pk=pk)

    def is_pending(self, doc: ExpenseReport) -> bool:
        return doc.status == ExpenseReportStatus.SUBMITTED

    def maker_ids(self, doc: ExpenseReport) -> set[int]:
        return {doc.employee_id}

    def amount_functional(self, doc: ExpenseReport) -> Decimal:
        return doc.total_functional

    def summary(self, doc: ExpenseReport) -> Summary:
        return Summary(
            number=doc.number,
            party=person(doc.employee),
            amount=money_display(doc.total.amount, doc.currency),
            waiting_since=doc.submitted_at or doc.created_at,
        )

    def facts(self, doc: ExpenseReport) -> list[tuple[str, str]]:
        facts = [
            ("Employee", person(doc.employee)),
            ("Title", doc.title),
            ("Total", money_display(doc.total.amount, doc.currency)),
        ]
        return [(k, v) for k, v in facts if v]

    def lines(self, doc: ExpenseReport) -> Table:
        rows = [
            [
                _date(line.spent_on),
                line.category.name,
                line.description,
                money_display(line.amount.amount, line.currency),
                ("above limit: " + (line.justification or "no justification"))
                if line.over_limit
                else "",
                "yes" if line.receipt else "no",
            ]
            for line in doc.lines.select_related("category").order_by("position")
        ]
        headers = ["Date", "Category", "Description", "Amount", "Policy", "Receipt"]
        return Table(headers, rows, {3})

    def files(self, doc: ExpenseReport) -> list[StoredFile]:
        return [
            StoredFile(
                name=f"receipt-{line.pk}",
                label=f"Receipt for line {line.position}: {line.receipt_name or line.description}",
                file=line.receipt,
                filename=line.receipt_name or f"receipt-{line.position}{line.receipt_ext}",
                content_type=_content_type(line.receipt.name),
                permission=self.view_permission,
            )
            for line in doc.lines.order_by("position")
            if line.receipt
        ]

    def version(self, doc: ExpenseReport) -> str:
        return expense_report_version(doc)

    def approve(
        self, *, pk: int, actor: Any, comment: str, accept_match_exception: bool, version: str
    ) -> Any:
        return expense_report_approve(
            report_id=pk, actor=actor, comment=comment, expected_version=version
        )

    def reject(self, *, pk: int, actor: Any, comment: str, version: str) -> Any:
        return expense_report_reject(
            report_id=pk, actor=actor, comment=comment, expected_version=version
        )


class PaymentRunScreen(DocumentScreen):
    kind = DocumentKind.PAYMENT_RUN
    slug = "payment-runs"
    label = "Payment run"
    lines_title = "Payments"
    model = PaymentRun
    view_permission = "payables.view_paymentrun"
    fallback_roles = ["approver"]
    # A run can hold tens of thousands of payments: the page lists the first ones.
    LINES_SHOWN = 200

    def pending(self, actor: Any) -> models.QuerySet[Any]:
        return PaymentRun.objects.filter(status=PaymentRunStatus.PENDING_APPROVAL).exclude(
            created_by_id=actor.pk
        )

    def get(self, pk: int) -> PaymentRun:
        return get_object_or_404(PaymentRun.objects.select_related("created_by"), pk=pk)

    def is_pending(self, doc: PaymentRun) -> bool:
        return doc.status == PaymentRunStatus.PENDING_APPROVAL

    def maker_ids(self, doc: PaymentRun) -> set[int]:
        return {doc.created_by_id} if doc.created_by_id else set()

    def amount_functional(self, doc: PaymentRun) -> Decimal:
        return doc.total_functional

    def summary(self, doc: PaymentRun) -> Summary:
        return Summary(
            number=doc.number,
            party=f"{doc.item_count} payment{'' if doc.item_count == 1 else 's'}",
            amount=money_display(doc.total.amount, doc.currency),
            waiting_since=doc.submitted_at or doc.created_at,
        )

    def facts(self, doc: PaymentRun) -> list[tuple[str, str]]:
        discount = doc.discount_total.amount
        facts = [
            ("Payments", str(doc.item_count)),
            ("Total", money_display(doc.total.amount, doc.currency)),
            ("Discounts taken", money_display(discount, doc.currency) if discount else ""),
            ("Bills due by", _date(doc.pay_by)),
            ("Payment date", _date(doc.payment_date)),
            ("Bank file", doc.get_file_format_display()),
            ("Created by", person(doc.created_by)),
            (
                "Left out",
                f"{len(doc.exclusions)} (vendors on hold or without bank details)"
                if doc.exclusions
                else "",
            ),
        ]
        return [(k, v) for k, v in facts if v]

    def lines(self, doc: PaymentRun) -> Table:
        items = doc.items.select_related("vendor", "bill", "expense_report").order_by("pk")
        rows = []
        for item in items[: self.LINES_SHOWN]:
            vendor = item.vendor
            if item.bill is not None:
                document = f"Bill {item.bill.number}"
            else:
                document = f"Expense report {item.expense_report.number}"
            account = vendor.bank_account_masked or vendor.iban_masked
            rows.append(
                [
                    vendor.name,
                    document,
                    account,
                    money_display(item.amount.amount, item.currency),
                    money_display(item.discount.amount, item.currency)
                    if item.discount.amount
                    else "",
                ]
            )
        return Table(["Payee", "For", "Account", "Amount", "Discount"], rows, {3, 4})

    def files(self, doc: PaymentRun) -> list[StoredFile]:
        if not doc.file:
            return []
        return [
            StoredFile(
                name="bank-file",
                label=f"Bank file ({doc.get_file_format_display()})",
                file=doc.file,
                filename=doc.file.name.rsplit("/", 1)[-1],
                content_type="text/plain" if doc.file_format == "nacha" else "application/xml",
                permission=self.view_permission,
            )
        ]

    def version(self, doc: PaymentRun) -> str:
        return payment_run_version(doc)

    def approve(
        self, *, pk: int, actor: Any, comment: str, accept_match_exception: bool, version: str
    ) -> Any:
        return payment_run_approve(
            run_id=pk, actor=actor, comment=comment, expected_version=version
        )

    def reject(self, *, pk: int, actor: Any, comment: str, version: str) -> Any:
        return payment_run_reject(run_id=pk, actor=actor, comment=comment, expected_version=version)


SCREENS: dict[str, DocumentScreen] = {
    screen.slug: screen
    for screen in (
        PurchaseOrderScreen(),
        BillScreen(),
        ExpenseReportScreen(),
        PaymentRunScreen(),
        BankChangeScreen(),
    )
}
SCREENS_BY_KIND: dict[str, DocumentScreen] = {s.kind: s for s in SCREENS.values()}
