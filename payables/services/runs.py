"""Payment runs: pick what is due, approve the run as a whole, export the bank file, then
mark it paid and post Dr AP / Cr bank (and early-payment discounts, and FX).

Built for tens of thousands of bills: the selection is one locking query, items are written
with ``bulk_create``, and a state every bill shares is set by one UPDATE with a history row
per bill written in bulk (C3: no audited write without its history row); the payment posts
one ledger entry per run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from djmoney.money import Money

from core.company import company_details
from core.exceptions import NotFound
from core.ledger.enums import AccountRole
from core.ledger.selectors import account_get_by_role
from core.ledger.services import journal_post
from core.money import round_storage
from core.numbering import document_number_next
from payables.enums import (
    BankChangeStatus,
    BillStatus,
    DocumentKind,
    ExpenseReportStatus,
    PaymentFileFormat,
    VendorStatus,
)
from payables.enums import PaymentRunStatus as S
from payables.exceptions import ApprovalRefused, InvalidState, PayablesError
from payables.exports import CreditTransfer, Originator, nacha_file, pain001_file
from payables.models import (
    Bill,
    ExpenseReport,
    PaymentRun,
    PaymentRunItem,
    Vendor,
    VendorBankChange,
)
from payables.postings import vendor_payment_lines
from payables.selectors import discount_pays_off
from payables.services.approvals import (
    approval_record,
    approvals_match_version,
    approvals_void,
    rejection_record,
    required_roles,
)
from payables.services.common import content_hash, functional_amount, require

KIND = DocumentKind.PAYMENT_RUN
RUN_SERIES = "PR"
ZERO = Decimal(0)
BATCH = 2000


def _payable_problem(vendor: Vendor, file_format: str, on_hold: set[int]) -> str:
    if vendor.status != VendorStatus.ACTIVE:
        return f"vendor is {vendor.status}"
    if vendor.pk in on_hold:
        return "bank details change waiting for a second approval (payment hold)"
    if file_format == PaymentFileFormat.NACHA and not (
        vendor.bank_routing_number and vendor.bank_account_number
    ):
        return "no US bank account (routing and account number) for ACH"
    if file_format == PaymentFileFormat.PAIN001 and not (vendor.iban or vendor.bank_account_number):
        return "no IBAN or account number for a credit transfer"
    return ""


def _vendors_on_hold(vendor_ids: Iterable[int]) -> set[int]:
    return set(
        Vendor.objects.filter(
            pk__in=set(vendor_ids), bank_changes__status=BankChangeStatus.PENDING
        ).values_list("pk", flat=True)
    )


def _settled_functional_before(bill_ids: list[int]) -> dict[int, Decimal]:
    """The AP (functional) each bill's earlier, paid runs settled."""
    rows = (
        PaymentRunItem.objects.filter(bill_id__in=bill_ids, run__status=S.PAID)
        .values("bill_id")
        .annotate(s=Sum("settled_functional"))
        .values_list("bill_id", "s")
    )
    return dict(rows)


def _share(doc: Bill | ExpenseReport, cleared: Decimal, done_before: Decimal) -> Decimal:
    """The AP, in the functional currency at the rate it was booked, that clearing
    ``cleared`` settles: proportional, and the rest of it on the payment that settles all."""
    if doc.amount_paid.amount + cleared >= doc.total.amount:
        return doc.total_functional - done_before
    return round_storage(doc.total_functional * cleared / doc.total.amount)


def payment_run_create(
    *,
    currency: str,
    pay_by: date,
    actor: Any,
    payment_date: date | None = None,
    file_format: str | None = None,
    bill_ids: Iterable[int] | None = None,
    amounts: dict[int, Decimal] | None = None,
    include_expenses: bool = True,
) -> PaymentRun:
    """A draft run of every approved bill in ``currency`` due by ``pay_by`` (and of bills
    whose early-payment discount is still open on ``payment_date`` when it pays off), plus
    approved expense reports. ``bill_ids`` narrows the pick; ``amounts`` pays some bills only
    in part (no discount then). Vendors on payment hold or without bank details are left
    out and listed in ``exclusions``. The bills picked are locked and scheduled, so no other
    run can take them."""
    if actor is not None:
        require(actor, "payables.add_paymentrun", "create payment runs")
    payment_date = payment_date or timezone.localdate()
    if file_format is None:
        file_format = PaymentFileFormat.NACHA if currency == "USD" else PaymentFileFormat.PAIN001
    if file_format == PaymentFileFormat.NACHA and currency != "USD":
        raise PayablesError("NACHA ACH files pay in USD only.", code="invalid")
    amounts = {int(k): v for k, v in (amounts or {}).items()}
    with transaction.atomic():
        bills_qs = (
            Bill.objects.select_for_update(of=("self",))
            .filter(status=BillStatus.APPROVED, currency=currency)
            .filter(
                Q(due_date__lte=pay_by)
                | Q(discount_date__gte=payment_date, amount_paid=0, discount_amount__gt=0)
            )
            .order_by("vendor_id", "due_date", "pk")
        )
        if bill_ids is not None:
            bills_qs = bills_qs.filter(pk__in=list(bill_ids))
        bills = list(bills_qs)
        reports: list[ExpenseReport] = []
        if include_expenses and bill_ids is None:
            reports = list(
                ExpenseReport.objects.select_for_update(of=("self",))
                .filter(status=ExpenseReportStatus.APPROVED, currency=currency)
                .order_by("pk")
            )
        # Each vendor read once (their encrypted columns are decrypted on load).
        vendors = Vendor.objects.in_bulk(
            {b.vendor_id for b in bills} | {r.payee_id for r in reports}
        )
        on_hold = _vendors_on_hold(vendors)
        run = PaymentRun.objects.create(
            number=document_number_next(series=RUN_SERIES, on_date=payment_date),
            currency=currency,
            pay_by=pay_by,
            payment_date=payment_date,
            file_format=file_format,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        items: list[PaymentRunItem] = []
        scheduled: list[Bill] = []
        settled_before = _settled_functional_before([b.pk for b in bills])
        exclusions: list[dict[str, Any]] = []
        pays_off: dict[int, bool] = {}
        total = discount_total = ZERO
        for bill in bills:
            vendor = vendors[bill.vendor_id]
            problem = _payable_problem(vendor, file_format, on_hold)
            if problem:
                exclusions.append({"bill": bill.pk, "number": bill.number, "reason": problem})
                continue
            due = bill.amount_due
            discount = ZERO
            if bill.pk in amounts:
                amount = amounts.pop(bill.pk)
                if not ZERO < amount <= due:
                    raise PayablesError(
                        f"Bill {bill.number}: pay between 0 and {due}, not {amount}.",
                        code="invalid_amount",
                    )
            else:
                if pays_off.get(bill.vendor_id) is None:
                    pays_off[bill.vendor_id] = discount_pays_off(vendor)
                in_window = bill.discount_date is not None and payment_date <= bill.discount_date
                if in_window and not bill.amount_paid and pays_off[bill.vendor_id]:
                    discount = bill.discount_amount.amount
                elif bill.due_date > pay_by:
                    continue
                amount = due - discount
            items.append(
                PaymentRunItem(
                    run=run,
                    vendor_id=bill.vendor_id,
                    bill=bill,
                    currency=currency,
                    amount=Money(amount, currency),
                    discount=Money(discount, currency),
                    settled_functional=_share(
                        bill, amount + discount, settled_before.get(bill.pk, ZERO)
                    ),
                    end_to_end_id=f"{run.number}-{len(items) + 1}",
                )
            )
            bill.schedule()
            scheduled.append(bill)
            total += amount
            discount_total += discount
        if amounts:
            raise PayablesError(
                f"Bills {sorted(amounts)} are not approved bills in {currency} to pay.",
                code="invalid",
            )
        for report in reports:
            problem = _payable_problem(vendors[report.payee_id], file_format, on_hold)
            if problem:
                exclusions.append({"expense_report": report.pk, "reason": problem})
                continue
            items.append(
                PaymentRunItem(
                    run=run,
                    vendor_id=report.payee_id,
                    expense_report=report,
                    currency=currency,
                    amount=Money(report.amount_due, currency),
                    settled_functional=_share(report, report.amount_due, ZERO),
                    end_to_end_id=f"{run.number}-{len(items) + 1}",
                )
            )
            total += report.amount_due
        if not items:
            raise PayablesError(
                f"Nothing in {currency} is due by {pay_by} and payable"
                + (
                    f" ({len(exclusions)} left out: vendors on hold or without bank details)."
                    if exclusions
                    else "."
                ),
                code="nothing_to_pay",
                exclusions=exclusions,
            )
        PaymentRunItem.objects.bulk_create(items, batch_size=BATCH)
        _set_with_history(
            scheduled,
            Bill,
            {"status": BillStatus.SCHEDULED},
            actor,
            f"scheduled in {run.number}",
        )
        run.total = Money(total, currency)
        run.discount_total = Money(discount_total, currency)
        run.item_count = len(items)
        run.exclusions = exclusions
        run.total_functional = functional_amount(total, currency, payment_date)
        run.save()
    return run


def _set_with_history(
    objs: list[Any], model: type, values: dict[str, Any], actor: Any, reason: str
) -> None:
    """Give ``objs`` (already changed in memory to ``values``) the same new values with one
    UPDATE, and each its history row. Money columns are only ever set from the same row
    (``F("total")``), so no currency is mixed."""
    if not objs:
        return
    for start in range(0, len(objs), 10 * BATCH):
        chunk = objs[start : start + 10 * BATCH]
        model.objects.filter(pk__in=[o.pk for o in chunk]).update(**values)
    model.history.bulk_history_create(
        objs,
        batch_size=BATCH,
        update=True,
        default_user=actor if getattr(actor, "pk", None) else None,
        default_change_reason=reason,
    )


def _run_for_update(run_id: int) -> PaymentRun:
    try:
        return PaymentRun.objects.select_for_update().get(pk=run_id)
    except PaymentRun.DoesNotExist:
        raise NotFound(f"Payment run {run_id} does not exist.") from None


def _refuse(run: PaymentRun, action: str) -> None:
    raise InvalidState(
        f"Payment run {run.number} is {run.get_status_display().lower()}: it cannot be {action}.",
        code="invalid_state",
    )


def payment_run_version(run: PaymentRun) -> str:
    """What approvers approve: every payment, and the bank account of every payee (a bank
    detail change after approval invalidates it)."""
    digest = hashlib.sha256()
    for row in run.items.order_by("pk").values_list(
        "end_to_end_id", "vendor_id", "amount", "discount", "bill_id", "expense_report_id"
    ):
        digest.update(repr(row).encode())
    payees = Vendor.objects.filter(pk__in=run.items.values("vendor_id")).order_by("pk")
    for vendor in payees.only("pk", "bank_routing_number", "bank_account_number", "iban", "bic"):
        digest.update(
            repr(
                (vendor.pk, vendor.bank_routing_number, vendor.bank_account_number, vendor.iban)
            ).encode()
        )
    return content_hash(
        {"run": run.number, "total": str(run.total.amount), "items": digest.hexdigest()}
    )


def _refuse_bank_detail_author(run: PaymentRun, actor: Any, action: str) -> None:
    """Segregation of duties: whoever changed a payee's bank details (the approved change now
    in force) neither approves nor releases a run that pays to them."""
    if actor is None or not getattr(actor, "pk", None):
        return
    latest: dict[int, VendorBankChange] = {}
    for change in (
        VendorBankChange.objects.filter(
            vendor__in=run.items.values("vendor_id"), status=BankChangeStatus.APPROVED
        )
        .select_related("vendor")
        .order_by("decided_at", "pk")
    ):
        latest[change.vendor_id] = change
    mine = sorted(
        (change.vendor.name, change.pk)
        for change in latest.values()
        if change.requested_by_id == actor.pk
    )
    if mine:
        names = ", ".join(f"{name} (bank change {pk})" for name, pk in mine)
        raise ApprovalRefused(
            f"You changed the bank details this run pays to: {names}. Someone else "
            f"{action} payment run {run.number}.",
            code="bank_detail_author",
        )


def payment_run_submit(*, run_id: int, actor: Any) -> PaymentRun:
    require(actor, "payables.change_paymentrun", "submit payment runs")
    with transaction.atomic():
        run = _run_for_update(run_id)
        if run.status != S.DRAFT:
            _refuse(run, "submitted")
        approvals_void(kind=KIND, object_id=run.pk, reason="resubmitted")
        run.submit()
        run.save()
    return run


def payment_run_approve(
    *, run_id: int, actor: Any, comment: str = "", expected_version: str | None = None
) -> PaymentRun:
    """One approval (never its creator's); approved when every level has its person."""
    with transaction.atomic():
        run = _run_for_update(run_id)
        if run.status != S.PENDING_APPROVAL:
            _refuse(run, "approved")
        _refuse_bank_detail_author(run, actor, "approves")
        _, outstanding = approval_record(
            kind=KIND,
            object_id=run.pk,
            maker_ids={run.created_by_id} if run.created_by_id else set(),
            required=required_roles(KIND, run.total_functional),
            version_hash=payment_run_version(run),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        if not outstanding:
            run.approve()
            run.save()
    return run


def _release_bills(run: PaymentRun, actor: Any, reason: str) -> None:
    bills = list(
        Bill.objects.select_for_update()
        .filter(run_items__run=run, status=BillStatus.SCHEDULED)
        .order_by("pk")
    )
    for bill in bills:
        bill.unschedule()
    _set_with_history(bills, Bill, {"status": BillStatus.APPROVED}, actor, reason)


def payment_run_reject(
    *, run_id: int, actor: Any, comment: str, expected_version: str | None = None
) -> PaymentRun:
    """An approver refuses the run: it is cancelled and its bills are free for another."""
    if not comment.strip():
        raise PayablesError("Say why the run is rejected.", code="comment_required")
    with transaction.atomic():
        run = _run_for_update(run_id)
        if run.status != S.PENDING_APPROVAL:
            _refuse(run, "rejected")
        rejection_record(
            kind=KIND,
            object_id=run.pk,
            maker_ids={run.created_by_id} if run.created_by_id else set(),
            version_hash=payment_run_version(run),
            actor=actor,
            expected_version=expected_version,
            comment=comment,
        )
        run.cancel()
        run.save()
        _release_bills(run, actor, f"{run.number} rejected")
    return run


def payment_run_cancel(*, run_id: int, actor: Any) -> PaymentRun:
    require(actor, "payables.change_paymentrun", "cancel payment runs")
    with transaction.atomic():
        run = _run_for_update(run_id)
        if run.status not in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED):
            _refuse(run, "cancelled")
        run.cancel()
        run.save()
        _release_bills(run, actor, f"{run.number} cancelled")
    return run


def originator() -> Originator:
    company = company_details()
    bank = company.get("bank") or {}
    return Originator(
        name=company["name"],
        company_id=bank.get("ach_company_id", ""),
        routing_number=bank.get("routing_number", ""),
        account_number=bank.get("account_number", ""),
        iban=bank.get("iban", ""),
        bic=bank.get("bic", ""),
        country=bank.get("country", "US"),
        bank_name=bank.get("name", ""),
    )


def _transfers(run: PaymentRun) -> list[CreditTransfer]:
    payees = Vendor.objects.in_bulk(set(run.items.values_list("vendor_id", flat=True)))
    rows = run.items.order_by("pk").values_list(
        "end_to_end_id", "vendor_id", "amount", "currency", "bill__number", "expense_report__number"
    )
    transfers = []
    for end_to_end_id, vendor_id, amount, currency, bill_number, report_number in rows.iterator(
        chunk_size=BATCH
    ):
        vendor = payees[vendor_id]
        transfers.append(
            CreditTransfer(
                end_to_end_id=end_to_end_id,
                payee_name=vendor.bank_account_holder or vendor.name,
                amount=amount,
                currency=currency,
                routing_number=vendor.bank_routing_number,
                account_number=vendor.bank_account_number,
                account_type=vendor.bank_account_type or "checking",
                iban=vendor.iban,
                bic=vendor.bic,
                remittance=bill_number or report_number or "",
            )
        )
    return transfers


def payment_run_export(*, run_id: int, actor: Any) -> PaymentRun:
    """Write the approved run's bank file (NACHA or pain.001), store it with its sha256.
    Refused when a payee went on hold or the run changed since it was approved."""
    if actor is not None:
        require(actor, "payables.change_paymentrun", "export payment runs")
    with transaction.atomic():
        run = _run_for_update(run_id)
        if run.status != S.APPROVED:
            _refuse(run, "exported")
        _refuse_bank_detail_author(run, actor, "releases")
        vendor_ids = set(run.items.values_list("vendor_id", flat=True))
        held = _vendors_on_hold(vendor_ids)
        inactive = set(
            Vendor.objects.filter(pk__in=vendor_ids)
            .exclude(status=VendorStatus.ACTIVE)
            .values_list("pk", flat=True)
        )
        if held or inactive:
            names = ", ".join(
                Vendor.objects.filter(pk__in=held | inactive)
                .order_by("name")
                .values_list("name", flat=True)
            )
            raise InvalidState(
                f"Payment run {run.number} pays vendors now on hold or inactive ({names}): "
                "cancel it and create another.",
                code="vendor_on_hold",
            )
        if not approvals_match_version(
            kind=KIND, object_id=run.pk, version_hash=payment_run_version(run)
        ):
            raise InvalidState(
                f"Payment run {run.number} or its payees' bank details changed after approval.",
                code="approval_outdated",
            )
        now = timezone.now()
        if run.file_format == PaymentFileFormat.NACHA:
            content = nacha_file(
                originator=originator(),
                transfers=_transfers(run),
                effective_date=run.payment_date,
                created_at=now,
            )
            name = f"{run.number}.ach"
        else:
            content = pain001_file(
                originator=originator(),
                transfers=_transfers(run),
                execution_date=run.payment_date,
                message_id=run.number,
                created_at=now,
            )
            name = f"{run.number}.xml"
        run.file.save(name, ContentFile(content), save=False)
        run.file_sha256 = hashlib.sha256(content).hexdigest()
        run.mark_exported()
        try:
            run.save()
        except BaseException:
            run.file.storage.delete(run.file.name)
            raise
    return run


def payment_run_confirm(*, run_id: int, actor: Any) -> PaymentRun:
    """The bank took the file: mark the run paid, settle each bill (in part or in full) and
    expense report, and post one entry: Dr AP / Cr bank / Cr discounts taken (+ FX)."""
    if actor is not None:
        require(actor, "payables.change_paymentrun", "confirm payment runs")
    with transaction.atomic():
        run = _run_for_update(run_id)
        if run.status != S.EXPORTED:
            _refuse(run, "marked paid")
        items = list(run.items.order_by("pk"))
        bills = Bill.objects.select_for_update().in_bulk([i.bill_id for i in items if i.bill_id])
        reports = ExpenseReport.objects.select_for_update().in_bulk(
            [i.expense_report_id for i in items if i.expense_report_id]
        )
        now = timezone.now()
        settled = settled_functional = ZERO
        paid_in_full: list[Bill] = []
        reimbursed: list[ExpenseReport] = []
        for item in items:
            cleared = item.amount.amount + item.discount.amount
            settled += cleared
            settled_functional += item.settled_functional
            doc = bills[item.bill_id] if item.bill_id else reports[item.expense_report_id]
            if doc.amount_paid.amount + cleared >= doc.total.amount:
                doc.amount_paid = doc.total
                if item.bill_id:
                    doc.mark_paid()
                    doc.paid_at = now
                    paid_in_full.append(doc)
                else:
                    doc.mark_reimbursed()
                    doc.reimbursed_at = now
                    reimbursed.append(doc)
            else:
                # Paid in part: rare, one row at a time (its history row with it).
                doc.amount_paid = Money(doc.amount_paid.amount + cleared, doc.currency)
                doc.unschedule()
                doc.save(update_fields=["amount_paid", "status"])
        reason = f"paid by {run.number}"
        _set_with_history(
            paid_in_full,
            Bill,
            {"status": BillStatus.PAID, "amount_paid": F("total"), "paid_at": now},
            actor,
            reason,
        )
        _set_with_history(
            reimbursed,
            ExpenseReport,
            {
                "status": ExpenseReportStatus.REIMBURSED,
                "amount_paid": F("total"),
                "reimbursed_at": now,
            },
            actor,
            reason,
        )
        paid, discount = run.total.amount, run.discount_total.amount
        accounts = {
            role: account_get_by_role(role)
            for role in (
                AccountRole.ACCOUNTS_PAYABLE,
                AccountRole.CASH,
                AccountRole.PURCHASE_DISCOUNTS,
                AccountRole.FX_GAIN_LOSS,
            )
        }
        journal_post(
            lines=vendor_payment_lines(
                currency=run.currency,
                settled=settled,
                settled_functional=settled_functional,
                paid=paid,
                paid_functional=functional_amount(paid, run.currency, run.payment_date),
                discount=discount,
                discount_functional=functional_amount(discount, run.currency, run.payment_date),
                accounts=accounts,
            ),
            entry_date=run.payment_date,
            description=f"Payment run {run.number} ({run.item_count} payments)",
            source=f"payables.payment_run:{run.pk}",
            idempotency_key=f"payables.payment_run:{run.pk}:paid",
            actor=actor if getattr(actor, "pk", None) else None,
        )
        run.mark_paid()
        run.save()
    return run


def payment_runs_process(*, as_of: date | None = None) -> list[str]:
    """The scheduled part: approved runs whose payment date has come are exported and
    marked paid. Safe to repeat: a run is exported and paid once."""
    as_of = as_of or timezone.localdate()
    done = []
    for run_id in PaymentRun.objects.filter(
        status__in=[S.APPROVED, S.EXPORTED], payment_date__lte=as_of
    ).values_list("pk", flat=True):
        run = PaymentRun.objects.get(pk=run_id)
        if run.status == S.APPROVED:
            run = payment_run_export(run_id=run_id, actor=None)
        payment_run_confirm(run_id=run_id, actor=None)
        done.append(run.number)
    return done
