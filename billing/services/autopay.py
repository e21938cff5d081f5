"""Autopay: each invoice issued to a customer (or subscription) set to charge automatically is
charged on the customer's default saved method, and a declined charge is tried again on a
schedule that depends on why it was declined.

- ``autopay_schedule`` is called by both issue paths (``invoice_issue`` and the billing run's
  batch) in the issuing transaction: the invoice gets its ``InvoiceAutopay`` row, due at once.
  After commit a task charges it (``autopay_charge``); the periodic run (``autopay_run``)
  takes whatever is due, retries included.
- A run works the due rows ``CHUNK`` at a time (``_claim``, then ``_charge``): under the
  rows' locks (rows another worker holds are skipped) each row's next step is decided; the
  tries to make are claimed (their number written, the row leased) and their pending
  ``ProcessorAttempt``s opened in the same transaction, keyed ``autopay_key(invoice, try)``.
  The processor (Stripe, or PayPal for a saved wallet) is then asked outside any
  transaction, from a pool of threads, and the successes are recorded together
  (``attempts_charge``). A repeated run, an overlapping worker or a
  crash after the processor charged never charges twice: an attempt without an answer is
  UNKNOWN (or stays pending) and ``processor_attempts_resolve`` finds out what became of it;
  the schedule waits for that, and makes the next try at once if the processor never had it.
- What comes next is decided from the latest try alone (``_next_step``), whenever the row
  is looked at: a success ends it, a hard decline (the card is lost, stolen, closed...) stops
  it and asks the customer for another method, a soft one (insufficient funds, processing
  error...) is tried again ``retry_days`` after the first try, at a time in the customer's
  working day spread by invoice; the last retry declined ends it and collections take over.
  While a try is scheduled, collections send no overdue email
  (``billing.selectors.autopay_holds``).
"""

from __future__ import annotations

import calendar
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from billing.documents import customer_email
from billing.enums import InvoiceStatus
from billing.exceptions import BillingError
from billing.models import (
    CardExpiryReminder,
    Invoice,
    InvoiceAutopay,
    PaymentMethod,
    ProcessorAttempt,
)
from billing.models.autopay import AutopayStatus, autopay_key
from billing.models.processors import OPEN_ATTEMPT, AttemptStatus
from billing.selectors import payment_methods_chargeable
from billing.services.bulk import update_with_history
from billing.services.links import invoice_url
from billing.services.processor_payments import (
    CHARGEABLE_PROCESSORS,
    NO_RECORD,
    ChargeRequest,
    attempts_charge,
    attempts_open,
    processors_configured,
)
from core.commit import after_commit
from core.company import company_details
from core.money import format_amount
from core.system_settings import system_settings

logger = logging.getLogger(__name__)

# Declines no retry can mend: the card or account is gone, or the issuer refuses outright.
# The customer is asked for another method at once. Every other code is tried again
# (insufficient_funds, processing_error, try_again_later, issuer_not_available, ...).
HARD_DECLINES = frozenset(
    {
        "account_closed",
        "card_not_supported",
        "currency_not_supported",
        "do_not_honor",
        "do_not_try_again",
        "expired_card",
        "fraudulent",
        "incorrect_number",
        "invalid_account",
        "invalid_number",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "no_account",
        "pickup_card",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "transaction_not_allowed",
        # PayPal (a saved wallet): the payer's account is closed or restricted, or the
        # billing agreement behind the wallet was cancelled.
        "agreement_already_cancelled",
        "billing_agreement_not_found",
        "payer_account_locked_or_closed",
        "payer_account_restricted",
        "payer_cannot_pay",
        "payer_action_required",
    }
)
# A try in flight (pending or unknown) is looked at again after this long.
RECHECK_AFTER = timedelta(minutes=15)
# Without a card processor configured, the schedule looks again this much later.
NOT_CONFIGURED_WAIT = timedelta(hours=1)
# A claimed try whose process died before the attempt was written is made again after this.
CLAIM_LEASE = timedelta(minutes=10)
# Rows one run takes at most (the next run, minutes later, takes the rest).
RUN_BATCH = 5_000
# Rows claimed, charged and recorded together.
CHUNK = 100

EMAIL_TEMPLATE = "billing/autopay_failed_email.txt"
EXPIRY_TEMPLATE = "billing/card_expiry_email.txt"


def is_hard_decline(code: str) -> bool:
    return code in HARD_DECLINES


def autopay_applies(invoice: Invoice) -> bool:
    """Whether the invoice is charged automatically: its subscription's setting, else its
    customer's (both loaded by the caller)."""
    sub = invoice.subscription if invoice.subscription_id else None
    if sub is not None and sub.autopay is not None:
        return bool(sub.autopay)
    return bool(invoice.customer.autopay)


def autopay_schedule(invoices: Iterable[Invoice], *, now: datetime | None = None) -> list[int]:
    """In the issuing transaction: an autopay row, due now, for each of the (just issued)
    invoices that is charged automatically and has something due. Returns their ids."""
    now = now or timezone.now()
    ids = [
        i.pk
        for i in invoices
        if i.status == InvoiceStatus.OPEN and i.amount_due.amount > 0 and autopay_applies(i)
    ]
    if not ids:
        return []
    known = set(
        InvoiceAutopay.objects.filter(invoice_id__in=ids).values_list("invoice_id", flat=True)
    )
    rows = [
        InvoiceAutopay(invoice_id=pk, next_attempt_at=now, created_at=now, updated_at=now)
        for pk in ids
        if pk not in known
    ]
    bulk_create_with_history(rows, InvoiceAutopay)  # its history begins with it
    return [row.invoice_id for row in rows]


def autopay_queue(invoice_ids: list[int]) -> None:
    """After commit: charge the newly scheduled invoices now (one task for one invoice, the
    run for a batch)."""
    if not invoice_ids:
        return
    from billing.tasks import autopay_charge_task, autopay_run_task

    if len(invoice_ids) == 1:
        autopay_charge_task.delay(invoice_id=invoice_ids[0])
    else:
        autopay_run_task.delay()


def retry_at(*, first_try: datetime, days: int, invoice_id: int, time_zone: str) -> datetime:
    """When a retry ``days`` after the first try is made: that day in the customer's time zone,
    at a minute of its working day (``window_start_hour``..``window_end_hour``) picked by the
    invoice id, so a day's retries are spread rather than all made at once."""
    conf = system_settings().autopay
    zone = _zone(time_zone)
    day = first_try.astimezone(zone).date() + timedelta(days=days)
    minutes = (conf.window_end_hour - conf.window_start_hour) * 60
    offset = (invoice_id * 7919) % minutes
    local = datetime.combine(day, time(conf.window_start_hour), tzinfo=zone)
    return local + timedelta(minutes=offset)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


@dataclass(frozen=True, slots=True)
class _Step:
    """What the schedule does next: ``charge`` try ``number``, ``wait`` until ``at``, or
    ``end`` with ``status`` (and ``reason``, told to the customer when ``notify``)."""

    kind: str
    number: int = 0
    at: datetime | None = None
    status: str = ""
    reason: str = ""
    notify: bool = False
    failure_code: str = ""


def _next_step(
    row: InvoiceAutopay, invoice: Invoice, now: datetime, attempts: dict[str, ProcessorAttempt]
) -> _Step:
    """Decided from the invoice and the latest try alone (``attempts``: the row's tries by
    key, the first and the latest at least), so a crash anywhere only delays it."""
    latest = attempts.get(autopay_key(row.invoice_id, row.tries)) if row.tries else None
    if latest is not None and latest.status == AttemptStatus.SUCCEEDED:
        return _Step("end", status=AutopayStatus.PAID)
    if latest is not None and latest.status in OPEN_ATTEMPT:
        return _Step("wait", at=now + RECHECK_AFTER)
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due.amount <= 0:
        return _Step("end", status=AutopayStatus.CLOSED, reason="nothing is left to charge")
    if row.tries and latest is None:
        return _Step("charge", number=row.tries)  # claimed, never reached the processor
    if latest is None:
        return _Step("charge", number=1)
    code = latest.failure_code or "declined"
    if code == NO_RECORD:
        # Stripe never had it (the process died before asking): made again at once.
        return _Step("charge", number=row.tries + 1)
    if is_hard_decline(code):
        return _Step(
            "end",
            status=AutopayStatus.STOPPED,
            reason=f"the payment method was declined ({code})",
            notify=True,
            failure_code=code,
        )
    retry_days = system_settings().autopay.retry_days
    if row.tries > len(retry_days):
        return _Step(
            "end",
            status=AutopayStatus.EXHAUSTED,
            reason=f"the payment method was declined ({code}) on every try",
            notify=True,
            failure_code=code,
        )
    first = attempts.get(autopay_key(row.invoice_id, 1))
    at = retry_at(
        first_try=first.created_at if first is not None else row.created_at,
        days=retry_days[row.tries - 1],
        invoice_id=row.invoice_id,
        time_zone=invoice.customer.time_zone,
    )
    if at > now:
        return _Step("wait", at=at, failure_code=code)
    return _Step("charge", number=row.tries + 1, failure_code=code)


def _end(row: InvoiceAutopay, step: _Step, now: datetime) -> None:
    row.status = step.status
    row.next_attempt_at = None
    row.stop_reason = step.reason
    row.last_failure_code = step.failure_code or row.last_failure_code
    row.updated_at = now
    if step.notify and row.customer_notified_at is None:
        after_commit(_queue_failure_email, row.pk)


def _queue_failure_email(autopay_id: int) -> None:
    from billing.tasks import autopay_failure_email_task

    autopay_failure_email_task.delay(autopay_id=autopay_id)


@dataclass(slots=True)
class _Claim:
    """What one claim took: how many rows, what it did instead of charging (invoice id ->
    outcome), and the tries to make (row, pending attempt, description)."""

    rows: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)
    charges: list[tuple[InvoiceAutopay, ProcessorAttempt, str]] = field(default_factory=list)


def _claim(
    now: datetime,
    *,
    size: int,
    invoice_ids: list[int] | None = None,
    charge: bool = True,
    processors: frozenset[str] = frozenset(CHARGEABLE_PROCESSORS),
) -> _Claim:
    """Under the rows' locks (rows another worker holds are skipped), for up to ``size`` due
    rows: each one's next step. A try to make is claimed (its number written, the row leased)
    and its pending attempt opened in the same transaction, before Stripe is called; a row
    that waits or ends is moved on. With ``charge`` False a try due is left due (the next
    claim makes it)."""
    claim = _Claim()
    with transaction.atomic():
        due = InvoiceAutopay.objects.select_for_update(skip_locked=True).filter(
            status=AutopayStatus.SCHEDULED, next_attempt_at__lte=now
        )
        if invoice_ids is not None:
            due = due.filter(invoice_id__in=invoice_ids)
        rows = list(due.order_by("next_attempt_at", "pk")[:size])
        claim.rows = len(rows)
        if not rows:
            return claim
        invoices = {
            i.pk: i
            for i in Invoice.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk__in=[r.invoice_id for r in rows])
            .order_by("pk")
        }
        keys = [autopay_key(r.invoice_id, n) for r in rows for n in {1, r.tries} if n]
        attempts = {
            a.idempotency_key: a
            for a in ProcessorAttempt.objects.filter(idempotency_key__in=keys).only(
                "idempotency_key", "status", "failure_code", "created_at"
            )
        }
        in_flight = set(
            ProcessorAttempt.objects.filter(
                invoice_id__in=list(invoices), status__in=OPEN_ATTEMPT
            ).values_list("invoice_id", flat=True)
        )
        methods = payment_methods_chargeable(
            customer_ids={i.customer_id for i in invoices.values()}
        )
        requests: list[ChargeRequest] = []
        claimed: list[InvoiceAutopay] = []
        descriptions: list[str] = []
        for row in rows:
            invoice = invoices[row.invoice_id]
            step = _next_step(row, invoice, now, attempts)
            method = methods.get(invoice.customer_id)
            waiting = "waiting"
            if step.kind == "charge" and invoice.pk in in_flight:
                step = _Step("wait", at=now + RECHECK_AFTER)  # a clerk's charge decides
            elif step.kind == "charge" and method is None:
                step = _Step(
                    "end",
                    status=AutopayStatus.STOPPED,
                    reason="there is no saved card or PayPal wallet to charge",
                    notify=True,
                )
            elif step.kind == "charge" and method and method.processor not in processors:
                # Its processor is not configured here (yet): no try is spent.
                step = _Step("wait", at=now + NOT_CONFIGURED_WAIT)
                waiting = "not_configured"
            elif step.kind == "charge" and not charge:
                step = _Step("wait", at=now)
            row.updated_at = now
            if step.kind == "end":
                _end(row, step, now)
                claim.outcomes[row.invoice_id] = str(step.status)
            elif step.kind == "wait":
                row.next_attempt_at = step.at
                row.last_failure_code = step.failure_code or row.last_failure_code
                claim.outcomes[row.invoice_id] = waiting
            else:
                assert method is not None  # noqa: S101 - checked above
                row.tries = step.number
                row.next_attempt_at = now + CLAIM_LEASE
                requests.append(
                    ChargeRequest(invoice, method, autopay_key(row.invoice_id, step.number))
                )
                claimed.append(row)
                descriptions.append(f"Invoice {invoice.number} (autopay, try {step.number})")
        update_with_history(InvoiceAutopay, rows, ROW_FIELDS)
        opened = attempts_open(requests)
    claim.charges = list(zip(claimed, opened, descriptions, strict=True))
    return claim


# What working a row changes on it.
ROW_FIELDS = (
    "status",
    "tries",
    "next_attempt_at",
    "stop_reason",
    "last_failure_code",
    "updated_at",
)


def _charge(claim: _Claim, now: datetime, result: AutopayRunResult) -> list[int]:
    """Make the claimed tries (``attempts_charge``) and move their rows on: a success ends
    the row (paid), a try still open is looked at again later. Returns the invoices whose try
    was declined: their row decides what comes next (``_claim`` again)."""
    if not claim.charges:
        return []
    outcomes = attempts_charge(
        [attempt for _, attempt, _ in claim.charges],
        descriptions=[description for _, _, description in claim.charges],
    )
    moved: dict[int, tuple[str, datetime | None]] = {}
    declined: list[int] = []
    for (row, _, _), outcome in zip(claim.charges, outcomes, strict=True):
        if isinstance(outcome, Exception):
            # Left pending: billing's resolver finds out what became of it.
            result.failures[row.invoice_id] = str(outcome)
            moved[row.pk] = (AutopayStatus.SCHEDULED, now + RECHECK_AFTER)
            continue
        result.by_invoice[row.invoice_id] = str(outcome.status)
        if outcome.status == AttemptStatus.SUCCEEDED:
            moved[row.pk] = (AutopayStatus.PAID, None)
        elif outcome.status in OPEN_ATTEMPT:
            moved[row.pk] = (AutopayStatus.SCHEDULED, now + RECHECK_AFTER)
        else:
            moved[row.pk] = (AutopayStatus.SCHEDULED, now)
            declined.append(row.invoice_id)
    with transaction.atomic():
        rows = list(
            InvoiceAutopay.objects.select_for_update()
            .filter(pk__in=list(moved), status=AutopayStatus.SCHEDULED)
            .order_by("pk")
        )
        for row in rows:
            row.status, row.next_attempt_at = moved[row.pk]
            row.updated_at = now
        update_with_history(InvoiceAutopay, rows, ROW_FIELDS)
    return declined


@dataclass
class AutopayRunResult:
    # What was done, by invoice: the try's status, or "waiting" or the schedule's end.
    by_invoice: dict[int, str] = field(default_factory=dict)
    # Invoices whose try failed unexpectedly (left to billing's resolver), and why.
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.by_invoice.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts


def autopay_run(
    *, now: datetime | None = None, limit: int = RUN_BATCH, invoice_ids: list[int] | None = None
) -> AutopayRunResult:
    """Every few minutes: work each autopay that is due (first tries, retries, checks of
    tries in flight), oldest first, ``CHUNK`` at a time: claimed together, charged at Stripe
    together, recorded together. Workers running at once take different rows."""
    now = now or timezone.now()
    result = AutopayRunResult()
    processors = processors_configured()
    if not processors:  # before any claim: without a processor no try is spent
        due = InvoiceAutopay.objects.filter(
            status=AutopayStatus.SCHEDULED, next_attempt_at__lte=now
        )
        if invoice_ids is not None:
            due = due.filter(invoice_id__in=invoice_ids)
        for invoice_id in due.values_list("invoice_id", flat=True)[:limit]:
            result.by_invoice[invoice_id] = "not_configured"
        due.filter(invoice_id__in=list(result.by_invoice)).update(
            next_attempt_at=now + NOT_CONFIGURED_WAIT, updated_at=now
        )
        return result
    seen = 0
    while seen < limit:
        claim = _claim(
            now, size=min(CHUNK, limit - seen), invoice_ids=invoice_ids, processors=processors
        )
        if not claim.rows:
            break
        seen += claim.rows
        result.by_invoice.update(claim.outcomes)
        declined = _charge(claim, now, result)
        if declined:  # a hard decline ends now, a soft one waits for its retry day
            _claim(
                now, size=len(declined), invoice_ids=declined, charge=False, processors=processors
            )
    return result


def autopay_charge(*, invoice_id: int, now: datetime | None = None) -> str:
    """Work one invoice's autopay if it is due (after issue): charge the try the schedule
    says, or wait, or end it. Returns what happened: the attempt's status, "waiting",
    "not_due", "not_configured", or the schedule's end (paid, closed, stopped, exhausted)."""
    result = autopay_run(now=now, limit=1, invoice_ids=[invoice_id])
    if invoice_id in result.failures:
        raise BillingError(f"Autopay of invoice {invoice_id} failed: {result.failures[invoice_id]}")
    return result.by_invoice.get(invoice_id, "not_due")


def autopay_failure_email(*, autopay_id: int) -> bool:
    """Tell the customer autopay could not pay the invoice and what to do; once (stamped
    under the row's lock after the mail server accepted it). Returns whether it was sent."""
    with transaction.atomic():
        row = (
            InvoiceAutopay.objects.select_for_update()
            .select_related("invoice__customer")
            .get(pk=autopay_id)
        )
        if row.customer_notified_at is not None:
            return False
        invoice = row.invoice
        customer = invoice.customer
        company = company_details()
        context: dict[str, Any] = {
            "company": company,
            "customer_name": customer.name,
            "number": invoice.number,
            "amount_due": format_amount(invoice.amount_due.amount, invoice.currency),
            "due_date": invoice.due_date,
            "reason": row.stop_reason,
            "exhausted": row.status == AutopayStatus.EXHAUSTED,
            "pay_url": invoice_url(invoice_id=invoice.pk),
        }
        customer_email(
            customer,
            subject=f"We could not collect payment for invoice {invoice.number}",
            body=render_to_string(EMAIL_TEMPLATE, context),
            company=company,
        ).send(fail_silently=False)
        row.customer_notified_at = timezone.now()
        row.save(update_fields=["customer_notified_at"])
    return True


def _card_expires_on(year: int, month: int) -> date:
    """A card is valid to the end of its expiry month."""
    return date(year, month, calendar.monthrange(year, month)[1])


@dataclass
class ExpiryRemindersResult:
    sent: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)


def card_expiry_reminders_send(*, today: date | None = None) -> ExpiryRemindersResult:
    """Daily: tell each customer on autopay whose default card expires within one of the
    ``card_expiry_reminder_days`` (30 and 7 by default) that it does, once per threshold
    (a run that missed the 30-day one and finds 5 days left sends the 7-day one only).
    Safe to repeat; one failure does not stop the others."""
    today = today or timezone.localdate()
    thresholds = system_settings().autopay.card_expiry_reminder_days
    result = ExpiryRemindersResult()
    if not thresholds:
        return result
    horizon = today + timedelta(days=max(thresholds))
    cards = (
        PaymentMethod.objects.filter(
            is_default=True,
            detached_at__isnull=True,
            customer__autopay=True,
            card_exp_year__isnull=False,
            card_exp_month__isnull=False,
        )
        # Coarse in the database (the expiry month is today's to the horizon's), exact below.
        .filter(
            Q(card_exp_year__gt=today.year)
            | Q(card_exp_year=today.year, card_exp_month__gte=today.month)
        )
        .filter(
            Q(card_exp_year__lt=horizon.year)
            | Q(card_exp_year=horizon.year, card_exp_month__lte=horizon.month)
        )
        .order_by("pk")
        .values_list("pk", "card_exp_year", "card_exp_month")
    )
    for card_id, year, month in cards:
        if year is None or month is None:
            continue  # filtered out above; said again for the type checker
        expires_on = _card_expires_on(year, month)
        left = (expires_on - today).days
        due = [d for d in thresholds if 0 <= left <= d]
        if not due:
            continue
        days = min(due)
        try:
            if _expiry_remind(card_id, expires_on, days, left):
                result.sent.append(card_id)
        except Exception as exc:  # one failure is reported, the others go on
            logger.exception("Expiry reminder for payment method %s failed", card_id)
            result.failures[card_id] = str(exc)
    return result


def _expiry_remind(card_id: int, expires_on: date, days: int, left: int) -> bool:
    """Send and record one reminder, unless one as urgent or more was sent for this expiry.
    The row is written under the card's lock and the email sent before commit: a mail
    server refusing rolls the row back, and the next run tries again."""
    with transaction.atomic():
        card = PaymentMethod.objects.select_for_update().select_related("customer").get(pk=card_id)
        if CardExpiryReminder.objects.filter(
            payment_method=card, expires_on=expires_on, days_before__lte=days
        ).exists():
            return False
        CardExpiryReminder.objects.create(
            payment_method=card, expires_on=expires_on, days_before=days
        )
        customer = card.customer
        company = company_details()
        context = {
            "company": company,
            "customer_name": customer.name,
            "card": str(card),
            "expires_on": expires_on,
            "days_left": left,
        }
        customer_email(
            customer,
            subject=f"Your card ending {card.card_last4} expires on {expires_on:%Y-%m-%d}",
            body=render_to_string(EXPIRY_TEMPLATE, context),
            company=company,
        ).send(fail_silently=False)
    return True
