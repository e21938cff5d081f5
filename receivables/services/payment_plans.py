"""Payment plans: installments for a customer's open balance, payments applied to them in
order, reminders before each installment, and the daily run that marks missed installments.

Installment amounts sum exactly to the plan's total (largest remainder, RELIABILITY.md B4).
A payment through a plan is recorded by billing's ``payment_record``, allocated to the plan's
invoices oldest due first; the installments are then paid in sequence out of the plan's
running total paid. Installments of a plan with a saved chargeable method (the plan's, or
the customer's default) are charged automatically on their due date through billing's
``invoice_charge_amount``, and again on the retry schedule after a failure; each try is a
processor attempt with a key of its own (installment and try number), so a repeated run
never charges twice, and an unanswered charge is left to billing's check, never retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from djmoney.money import Money

from billing.documents import company_details
from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Payment, PaymentMethod
from billing.models.processors import OPEN_ATTEMPT, AttemptStatus
from billing.selectors import payment_method_chargeable
from billing.services.payments import AllocationInput, payment_record
from billing.services.processor_payments import invoice_charge_amount
from core.exceptions import Conflict, DomainError, NotFound, PermissionDeniedError
from core.money import check_amount, format_amount, quantum, round_money, split_evenly
from receivables.models_plans import (
    Installment,
    InstallmentCharge,
    InstallmentReminder,
    InstallmentStatus,
    PaymentPlan,
    PaymentPlanInvoice,
    PaymentPlanStatus,
)

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
MAX_INSTALLMENTS = 120
# The reminder goes this many days before each installment is due.
REMINDER_DAYS_BEFORE = 3
# An installment still unpaid this many days after its due date defaults the plan.
DEFAULT_AFTER_DAYS = 14
UNPAID = (InstallmentStatus.SCHEDULED, InstallmentStatus.OVERDUE)
# After a failed automatic charge, charged again this many days after the due date.
RETRY_DAYS = (1, 3, 7)


class PaymentPlanError(DomainError):
    code = "payment_plan_invalid"


class PaymentPlanNotActive(Conflict):
    code = "payment_plan_not_active"


def installment_amounts(*, total: Decimal, count: int, currency: str) -> list[Decimal]:
    """``count`` near-equal amounts in whole minor units that sum exactly to ``total``;
    the larger ones come first."""
    return split_evenly(total, count, currency)


def installment_dates(*, first_due_date: date, count: int, interval_days: int | None) -> list[date]:
    """Due dates from ``first_due_date``: every ``interval_days`` days, or monthly on the
    first date's day (the month's last day when it is shorter: Jan 31, Feb 28, Mar 31)."""
    if interval_days is None:
        return [first_due_date + relativedelta(months=i) for i in range(count)]
    return [first_due_date + timedelta(days=interval_days * i) for i in range(count)]


def _require(actor: Any, perm: str, message: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(message)


def payment_plan_create(
    *,
    actor: Any,
    customer_id: int,
    invoice_ids: list[int],
    installments: int,
    first_due_date: date,
    interval_days: int | None = None,
    payment_method_id: int | None = None,
    retry_days: list[int] | None = None,
) -> PaymentPlan:
    """A plan over what is due on the customer's open invoices given (one currency, none in
    another active plan), split into ``installments`` installments from ``first_due_date``.
    ``retry_days``: when failed automatic charges are tried again (empty: the system's)."""
    _require(actor, "receivables.add_paymentplan", "Your role does not allow payment plans.")
    if not 1 <= installments <= MAX_INSTALLMENTS:
        raise PaymentPlanError(
            f"A plan has 1 to {MAX_INSTALLMENTS} installments.", field="installments"
        )
    if interval_days is not None and interval_days < 1:
        raise PaymentPlanError("The interval is at least one day.", field="interval_days")
    if not invoice_ids or len(set(invoice_ids)) != len(invoice_ids):
        raise PaymentPlanError("Give each invoice once, at least one.", field="invoices")
    _check_retry_days(retry_days)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            raise NotFound(f"No customer {customer_id}.")
        invoices = list(
            Invoice.objects.select_for_update().filter(pk__in=invoice_ids).order_by("pk")
        )
        if len(invoices) != len(invoice_ids) or any(i.customer_id != customer.pk for i in invoices):
            raise PaymentPlanError(
                "Every invoice must be one of this customer's.", field="invoices"
            )
        currencies = {i.currency for i in invoices}
        if len(currencies) != 1:
            raise PaymentPlanError("The invoices of a plan share one currency.", field="invoices")
        currency = currencies.pop()
        for invoice in invoices:
            if invoice.status != InvoiceStatus.OPEN or invoice.amount_due.amount <= 0:
                raise PaymentPlanError(
                    f"Invoice {invoice.number or invoice.pk} has nothing open to plan.",
                    field="invoices",
                )
        taken = PaymentPlanInvoice.objects.filter(
            invoice__in=invoices, plan__status=PaymentPlanStatus.ACTIVE
        ).values_list("invoice__number", flat=True)
        if taken:
            raise Conflict(
                f"Already in an active payment plan: {', '.join(sorted(taken))}.",
                code="invoice_in_payment_plan",
            )
        method = None
        if payment_method_id is not None:
            method = PaymentMethod.objects.filter(
                pk=payment_method_id, customer=customer, detached_at__isnull=True
            ).first()
            if method is None:
                raise PaymentPlanError(
                    "Not a saved payment method of this customer.", field="payment_method"
                )
        total = round_money(sum((i.amount_due.amount for i in invoices), ZERO), currency)
        if installments > total / quantum(currency):
            raise PaymentPlanError(
                f"{format_amount(total, currency)} cannot be split into {installments} "
                "installments of at least one minor unit.",
                field="installments",
            )
        plan = PaymentPlan.objects.create(
            customer=customer,
            currency=currency,
            total=Money(total, currency),
            amount_paid=Money(ZERO, currency),
            first_due_date=first_due_date,
            interval_days=interval_days,
            payment_method=method,
            retry_days=retry_days,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        for invoice in invoices:
            PaymentPlanInvoice.objects.create(
                plan=plan, invoice=invoice, currency=currency, amount=invoice.amount_due
            )
        amounts = installment_amounts(total=total, count=installments, currency=currency)
        dates = installment_dates(
            first_due_date=first_due_date, count=installments, interval_days=interval_days
        )
        for sequence, (amount, due) in enumerate(zip(amounts, dates, strict=True), start=1):
            # One by one (not bulk_create) so that history records each row.
            Installment.objects.create(
                plan=plan,
                sequence=sequence,
                due_date=due,
                currency=currency,
                amount=Money(amount, currency),
            )
    return plan


def _apply_paid(plan: PaymentPlan, *, payment: Payment | None, paid_date: date) -> list[int]:
    """Mark paid, in sequence, every unpaid installment the plan's total paid now covers;
    complete the plan when all are. Returns the sequences newly paid."""
    covered = ZERO
    newly: list[int] = []
    for installment in plan.installments.select_for_update().order_by("sequence"):
        covered += installment.amount.amount
        if installment.status in UNPAID and covered <= plan.amount_paid.amount:
            installment.status = InstallmentStatus.PAID
            installment.paid_date = paid_date
            installment.paid_payment = payment
            installment.save(update_fields=["status", "paid_date", "paid_payment"])
            newly.append(installment.sequence)
    if plan.amount_paid.amount >= plan.total.amount:
        plan.status = PaymentPlanStatus.COMPLETED
        plan.closed_at = timezone.now()
        plan.save(update_fields=["status", "closed_at"])
    return newly


def _plan_allocations(plan: PaymentPlan, amount: Decimal) -> list[AllocationInput]:
    """``amount`` over the plan's open invoices, oldest due first, as far as they take it."""
    allocations: list[AllocationInput] = []
    left = amount
    for invoice in plan.invoices.filter(status=InvoiceStatus.OPEN).order_by(
        "due_date", "issue_date", "pk"
    ):
        part = min(left, invoice.amount_due.amount)
        if part > 0:
            allocations.append(AllocationInput(invoice_id=invoice.pk, amount=part))
            left -= part
    return allocations


def _count_toward(
    plan: PaymentPlan, *, amount: Decimal, payment: Payment | None, paid_date: date
) -> list[int]:
    """Add a payment to the (locked) plan's total paid and pay the installments it covers."""
    plan.amount_paid = plan.amount_paid + Money(amount, plan.currency)
    plan.save(update_fields=["amount_paid"])
    return _apply_paid(plan, payment=payment, paid_date=paid_date)


def payment_plan_payment_record(
    *,
    actor: Any,
    plan_id: int,
    amount: Decimal,
    method: str,
    received_date: date | None = None,
    reference: str = "",
) -> Payment:
    """Record a payment toward an active plan: billing records it, allocated to the plan's
    invoices oldest due first (any part their amount due no longer takes goes to the
    customer's credit), and the installments it completes are marked paid, in order."""
    _require(actor, "receivables.change_paymentplan", "Your role does not allow payment plans.")
    received_date = received_date or timezone.localdate()
    with transaction.atomic():
        plan = PaymentPlan.objects.select_for_update().filter(pk=plan_id).first()
        if plan is None:
            raise NotFound(f"No payment plan {plan_id}.")
        if plan.status != PaymentPlanStatus.ACTIVE:
            raise PaymentPlanNotActive(f"Payment plan {plan.pk} is {plan.status}.")
        check_amount(amount, plan.currency)
        remaining = plan.total.amount - plan.amount_paid.amount
        if amount <= 0 or amount > remaining:
            raise PaymentPlanError(
                f"A payment toward this plan is more than 0 and at most "
                f"{format_amount(remaining, plan.currency)}.",
                field="amount",
            )
        payment = payment_record(
            actor=actor,
            customer_id=plan.customer_id,
            amount=amount,
            currency=plan.currency,
            method=method,
            received_date=received_date,
            reference=reference or f"Payment plan {plan.pk}",
            allocations=_plan_allocations(plan, amount),
        )
        _count_toward(plan, amount=amount, payment=payment, paid_date=received_date)
    return payment


def payment_plan_cancel(*, actor: Any, plan_id: int) -> PaymentPlan:
    """End an active plan; its unpaid installments are canceled (the invoices stay open)."""
    _require(actor, "receivables.change_paymentplan", "Your role does not allow payment plans.")
    with transaction.atomic():
        plan = PaymentPlan.objects.select_for_update().filter(pk=plan_id).first()
        if plan is None:
            raise NotFound(f"No payment plan {plan_id}.")
        if plan.status != PaymentPlanStatus.ACTIVE:
            raise PaymentPlanNotActive(f"Payment plan {plan.pk} is {plan.status}.")
        for installment in plan.installments.filter(status__in=UNPAID):
            installment.status = InstallmentStatus.CANCELED
            installment.save(update_fields=["status"])
        plan.status = PaymentPlanStatus.CANCELED
        plan.closed_at = timezone.now()
        plan.save(update_fields=["status", "closed_at"])
    return plan


# --- The daily run ------------------------------------------------------------------------------


@dataclass
class PlansRunResult:
    as_of: date
    reminders: list[int] = field(default_factory=list)
    overdue: list[int] = field(default_factory=list)
    defaulted: list[int] = field(default_factory=list)
    # Installments charged (a try made), and installment charges counted toward their plan.
    charges: list[int] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)


def _remind(installment_id: int, as_of: date) -> bool:
    """Send the reminder of one installment unless it was sent; the reminder row is written
    in the same transaction as the send, so a failed send is tried again next run."""
    with transaction.atomic():
        installment = (
            Installment.objects.select_for_update(of=("self",))
            .select_related("plan__customer")
            .get(pk=installment_id)
        )
        if installment.status not in UNPAID or installment.plan.status != PaymentPlanStatus.ACTIVE:
            return False
        customer = installment.plan.customer
        company = company_details()
        subject = (
            f"Reminder: installment {installment.sequence} of your payment plan is due on "
            f"{installment.due_date:%Y-%m-%d}"
        )
        body = render_to_string(
            "receivables/email/installment_reminder.txt",
            {
                "customer": customer,
                "company": company,
                "installment": installment,
                "count": installment.plan.installments.count(),
                "amount": format_amount(installment.amount.amount, installment.currency),
                "due_date": installment.due_date,
            },
        )
        to = [customer.email]
        cc = [e for e in customer.cc_emails or [] if e]
        try:
            with transaction.atomic():
                InstallmentReminder.objects.create(
                    installment=installment,
                    kind="before_due",
                    days_before=(installment.due_date - as_of).days,
                    sent_date=as_of,
                    email_to=", ".join(to + cc),
                    email_subject=subject,
                    email_body=body,
                )
        except IntegrityError:
            return False  # sent already (by an earlier or an overlapping run)
        EmailMessage(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=to,
            cc=cc,
            reply_to=[company["email"]] if company.get("email") else None,
        ).send(fail_silently=False)
    return True


def _mark_late(plan_id: int, as_of: date, default_after_days: int) -> tuple[list[int], bool]:
    """Installments past due become overdue; one unpaid ``default_after_days`` after its
    due date defaults the plan (it is missed, the later ones canceled)."""
    overdue: list[int] = []
    with transaction.atomic():
        plan = PaymentPlan.objects.select_for_update().get(pk=plan_id)
        if plan.status != PaymentPlanStatus.ACTIVE:
            return overdue, False
        unpaid = list(
            plan.installments.select_for_update().filter(status__in=UNPAID).order_by("sequence")
        )
        defaulted = any(i.due_date + timedelta(days=default_after_days) < as_of for i in unpaid)
        for installment in unpaid:
            if defaulted:
                late = installment.due_date < as_of
                installment.status = (
                    InstallmentStatus.MISSED if late else InstallmentStatus.CANCELED
                )
            elif installment.due_date < as_of and installment.status == InstallmentStatus.SCHEDULED:
                installment.status = InstallmentStatus.OVERDUE
                overdue.append(installment.pk)
            else:
                continue
            installment.save(update_fields=["status"])
        if defaulted:
            plan.status = PaymentPlanStatus.DEFAULTED
            plan.closed_at = timezone.now()
            plan.save(update_fields=["status", "closed_at"])
    return overdue, defaulted


# --- Automatic charges --------------------------------------------------------------------------


def retry_schedule(plan: PaymentPlan) -> list[int]:
    """Days after the due date of each try: 0 (the due date), then the plan's retry days or
    the system's (``RECEIVABLES_INSTALLMENT_RETRY_DAYS``, default 1, 3, 7)."""
    days = plan.retry_days
    if days is None:
        days = getattr(settings, "RECEIVABLES_INSTALLMENT_RETRY_DAYS", RETRY_DAYS)
    return [0, *(int(d) for d in days)]


def _check_retry_days(retry_days: list[int] | None) -> None:
    if retry_days is None:
        return
    if (
        not isinstance(retry_days, list)
        or len(retry_days) > 10
        or any(type(d) is not int or d < 1 for d in retry_days)
        or retry_days != sorted(set(retry_days))
    ):
        raise PaymentPlanError(
            "Retry days are up to 10 increasing whole numbers of days, at least 1.",
            field="retry_days",
        )


def installment_charge_key(installment: Installment, attempt_number: int) -> str:
    """The processor idempotency key of one try: a repeated run sends the same one."""
    return f"bo_plan{installment.plan_id}_inst{installment.pk}_try{attempt_number}"


def _chargeable_method(plan: PaymentPlan) -> PaymentMethod | None:
    return payment_method_chargeable(
        customer_id=plan.customer_id, payment_method_id=plan.payment_method_id
    )


def _outstanding(plan: PaymentPlan, installment: Installment) -> Decimal:
    """What of the installment the plan's total paid does not cover yet."""
    before = sum(
        (i.amount.amount for i in plan.installments.all() if i.sequence < installment.sequence),
        ZERO,
    )
    covered = min(max(plan.amount_paid.amount - before, ZERO), installment.amount.amount)
    return installment.amount.amount - covered


def _settle(charge_id: int, as_of: date) -> bool:
    """Count a succeeded charge toward its plan, once; the payment itself was recorded by
    billing. A plan no longer active keeps its state: the money is on its invoices."""
    with transaction.atomic():
        charge = InstallmentCharge.objects.select_related("installment").get(pk=charge_id)
        plan = PaymentPlan.objects.select_for_update().get(pk=charge.installment.plan_id)
        charge = (
            InstallmentCharge.objects.select_for_update()
            .select_related("attempt")
            .get(pk=charge_id)
        )
        attempt = charge.attempt
        if charge.settled_at is not None or attempt.status != AttemptStatus.SUCCEEDED:
            return False
        if plan.status == PaymentPlanStatus.ACTIVE:
            remaining = plan.total.amount - plan.amount_paid.amount
            amount = min(attempt.amount.amount, remaining)
            if amount > 0:
                _count_toward(plan, amount=amount, payment=attempt.payment, paid_date=as_of)
        charge.settled_at = timezone.now()
        charge.save(update_fields=["settled_at"])
    return True


def _charge_next(plan: PaymentPlan, installment: Installment, as_of: date) -> str:
    """Charge the installment if its schedule says so today. Returns what happened:
    "waiting" (a try is in flight or the next is not due), "exhausted", "nothing_due",
    or the new (or found) attempt's status."""
    charges = list(installment.charges.select_related("attempt").order_by("attempt_number"))
    if any(c.attempt.status in OPEN_ATTEMPT for c in charges):
        return "waiting"
    schedule = retry_schedule(plan)
    number = len(charges) + 1
    if number > len(schedule):
        return "exhausted"
    scheduled = installment.due_date + timedelta(days=schedule[number - 1])
    if as_of < scheduled:
        return "waiting"
    method = _chargeable_method(plan)
    if method is None:
        return "no_method"
    amount = _outstanding(plan, installment)
    allocations = _plan_allocations(plan, amount) if amount > 0 else []
    amount = sum((a.amount for a in allocations), ZERO)
    if amount <= 0:
        return "nothing_due"
    key = installment_charge_key(installment, number)
    attempt = invoice_charge_amount(
        invoice_id=allocations[0].invoice_id,
        payment_method_id=method.pk,
        amount=amount,
        actor=None,
        idempotency_key=key,
        allocations=allocations,
        description=f"Installment {installment.sequence} of payment plan {plan.pk}",
    )
    with transaction.atomic():
        InstallmentCharge.objects.get_or_create(
            idempotency_key=key,
            defaults={
                "installment": installment,
                "attempt_number": number,
                "scheduled_date": scheduled,
                "charged_date": as_of,
                "attempt": attempt,
            },
        )
        Installment.objects.filter(pk=installment.pk, attempts__lt=number).update(
            attempts=number, last_attempt_at=timezone.now()
        )
    return str(attempt.status)


def _charge_plan(plan_id: int, as_of: date, result: PlansRunResult) -> None:
    """Charge the plan's due installments in order, stopping at the first not paid."""
    plan = PaymentPlan.objects.select_related("payment_method").get(pk=plan_id)
    due = plan.installments.filter(status__in=UNPAID, due_date__lte=as_of).order_by("sequence")
    for installment in due:
        outcome = _charge_next(plan, installment, as_of)
        if outcome not in (AttemptStatus.SUCCEEDED, "nothing_due"):
            if outcome not in ("waiting", "exhausted", "no_method"):
                result.charges.append(installment.pk)
            return
        if outcome == AttemptStatus.SUCCEEDED:
            result.charges.append(installment.pk)
            for charge_id in installment.charges.filter(settled_at__isnull=True).values_list(
                "pk", flat=True
            ):
                _settle(charge_id, as_of)
            plan.refresh_from_db()


def _plans_with_unpaid(*, due_before: date) -> list[int]:
    """Active plans with an unpaid installment due before the date, in id order."""
    return list(
        Installment.objects.filter(
            plan__status=PaymentPlanStatus.ACTIVE, status__in=UNPAID, due_date__lt=due_before
        )
        .values_list("plan_id", flat=True)
        .distinct()
        .order_by("plan_id")
    )


def _charges_run(as_of: date, result: PlansRunResult) -> None:
    """Settle succeeded charges (answered now, or resolved since by billing's check or a
    webhook), then charge what the schedules say is due today."""
    unsettled = InstallmentCharge.objects.filter(
        settled_at__isnull=True, attempt__status=AttemptStatus.SUCCEEDED
    ).order_by("pk")
    for charge_id in unsettled.values_list("pk", flat=True):
        try:
            if _settle(charge_id, as_of):
                result.settled.append(charge_id)
        except Exception as exc:
            logger.exception("Installment charge %s could not be settled", charge_id)
            result.failures[charge_id] = str(exc)
    for plan_id in _plans_with_unpaid(due_before=as_of + timedelta(days=1)):
        try:
            _charge_plan(plan_id, as_of, result)
        except Exception as exc:  # a refusal or an outage is reported; the others go on
            logger.exception("Automatic charge of payment plan %s failed", plan_id)
            result.failures[plan_id] = str(exc)


def payment_plans_run(
    *,
    as_of: date | None = None,
    reminder_days_before: int = REMINDER_DAYS_BEFORE,
    default_after_days: int = DEFAULT_AFTER_DAYS,
) -> PlansRunResult:
    """Daily: reminders for installments due within ``reminder_days_before`` days (each
    once), automatic charges of installments due (and their retries), installments past due
    marked overdue, plans with one unpaid too long defaulted.
    Safe to repeat for the same or a past day; one plan failing does not stop the others."""
    as_of = as_of or timezone.localdate()
    result = PlansRunResult(as_of=as_of)
    to_remind = Installment.objects.filter(
        plan__status=PaymentPlanStatus.ACTIVE,
        status=InstallmentStatus.SCHEDULED,
        due_date__gte=as_of,
        due_date__lte=as_of + timedelta(days=reminder_days_before),
        reminders__isnull=True,
    ).order_by("due_date", "pk")
    for installment_id in to_remind.values_list("pk", flat=True):
        try:
            if _remind(installment_id, as_of):
                result.reminders.append(installment_id)
        except Exception as exc:  # one failure is reported, the others go on
            logger.exception("Reminder for installment %s failed", installment_id)
            result.failures[installment_id] = str(exc)
    _charges_run(as_of, result)
    for plan_id in _plans_with_unpaid(due_before=as_of):
        try:
            overdue, defaulted = _mark_late(plan_id, as_of, default_after_days)
        except Exception as exc:
            logger.exception("Payment plan %s failed in the run", plan_id)
            result.failures[plan_id] = str(exc)
            continue
        result.overdue.extend(overdue)
        if defaulted:
            result.defaulted.append(plan_id)
    return result
