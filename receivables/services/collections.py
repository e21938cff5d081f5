"""The daily collections run: dunning steps and late fees for every open invoice, and the
pauses and promises to pay that hold them back.

Safe to repeat and to overlap: invoices are handled in chunks, each in one transaction under
their row locks, read in bulk, their fees issued as one block and their timeline rows written
at once; unique constraints allow one event per (invoice, step) and one fee per (invoice, fee
number). A run for a past day finds its work already done. One invoice failing is reported
and does not stop the others (a chunk that fails as a whole is done again invoice by invoice).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone
from djmoney.money import Money
from simple_history.utils import bulk_create_with_history

from billing.documents import company_details
from billing.enums import InvoiceStatus, SubscriptionStatus
from billing.models import Customer, Invoice, Subscription
from billing.services.billing_run import InvoiceSpec, invoices_issue_batch
from billing.services.links import invoice_url
from billing.services.subscriptions import subscription_pause
from core.exceptions import DomainError, PermissionDeniedError
from core.ledger.enums import AccountRole
from core.money import format_amount
from receivables.enums import CollectionEventOutcome, DunningAction, LateFeeStatus, PauseKind
from receivables.models import (
    CollectionEvent,
    CollectionPause,
    DunningPolicy,
    DunningStep,
    LateFee,
)
from receivables.selectors import (
    collection_pauses_active,
    dunning_policies_by_customer,
    invoices_held_from_dunning,
)
from receivables.services.late_fees import (
    fee_base,
    fee_terms,
    fees_due_count,
    late_fee_amount,
    late_fee_charge,
    late_fee_fields,
    late_fee_line,
    late_fee_memo,
)

logger = logging.getLogger(__name__)

SUBJECTS = {
    "reminder": "Reminder: invoice {number} is due on {due_date}",
    "due": "Invoice {number} is due today",
    "overdue": "Invoice {number} is overdue",
    "final_notice": "Final notice: invoice {number} is {days} days overdue",
    "escalation": "Invoice {number}: account escalated",
}


class CollectionsError(DomainError):
    code = "collections_error"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One thing the run does (or would do, in a dry run) for one invoice."""

    invoice_id: int
    invoice_number: str
    kind: str  # "step", "skip" or "late_fee"
    description: str
    step_id: int | None = None
    scheduled_date: date | None = None
    fee_sequence: int | None = None
    amount: str = ""


@dataclass
class CollectionsRunResult:
    as_of: date
    dry_run: bool
    actions: list[PlannedAction] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)
    invoices_seen: int = 0


# --- Planning (reads only) --------------------------------------------------------------------


def _plan_invoice(
    invoice: Invoice,
    policy: DunningPolicy,
    as_of: date,
    *,
    is_fee_invoice: bool,
    done: set[int] | None = None,
    charged: int | None = None,
) -> list[PlannedAction]:
    """What is due on ``as_of`` and not yet done: late fees first, then the steps.

    Of the email steps whose day has come, only the latest is sent; earlier ones (their day
    passed during a pause or a missed run) are recorded as skipped. Suspension and hand-over
    are always performed. Late-fee invoices are not chased step by step nor charged fees.
    """
    actions: list[PlannedAction] = []
    if is_fee_invoice or invoice.due_date is None:
        return actions
    number = invoice.number or str(invoice.pk)
    days_overdue = (as_of - invoice.due_date).days
    if policy.late_fees_enabled:
        pct, grace = fee_terms(policy)
        due_count = fees_due_count(days_overdue=days_overdue, grace_days=grace)
        if charged is None:
            charged = max(invoice.late_fees.values_list("sequence", flat=True), default=0)
        if due_count > charged and pct > 0:
            base = fee_base(invoice=invoice, compound=policy.compound_fees)
            amount = late_fee_amount(base=base, percentage=pct, currency=invoice.currency)
            for sequence in range(charged + 1, due_count + 1):
                if amount <= 0:
                    break
                actions.append(
                    PlannedAction(
                        invoice_id=invoice.pk,
                        invoice_number=number,
                        kind="late_fee",
                        fee_sequence=sequence,
                        description=(
                            f"late fee {sequence}: {pct.normalize():f}% of "
                            f"{format_amount(base, invoice.currency)}"
                        ),
                        amount=format_amount(amount, invoice.currency),
                    )
                )
                if not policy.compound_fees:
                    continue
                base += amount
                amount = late_fee_amount(base=base, percentage=pct, currency=invoice.currency)
    if done is None:
        done = set(invoice.collection_events.values_list("step_id", flat=True))
    due_steps = [
        s
        for s in sorted(policy.steps.all(), key=lambda s: s.offset_days)
        if s.pk not in done and invoice.due_date + timedelta(days=s.offset_days) <= as_of
    ]
    emails = [s for s in due_steps if s.action == DunningAction.EMAIL]
    latest_email = emails[-1] if emails else None
    for step in due_steps:
        scheduled = invoice.due_date + timedelta(days=step.offset_days)
        skip = step.action == DunningAction.EMAIL and step is not latest_email
        # An email made redundant by a later escalation that is due as well is skipped.
        if step is latest_email and due_steps[-1] is not step:
            skip = True
        actions.append(
            PlannedAction(
                invoice_id=invoice.pk,
                invoice_number=number,
                kind="skip" if skip else "step",
                step_id=step.pk,
                scheduled_date=scheduled,
                description=f"{'skip ' if skip else ''}{step.name} (due {scheduled.isoformat()})",
            )
        )
    return actions


def _candidates(as_of: date) -> tuple[list[Invoice], dict[int, DunningPolicy], set[int]]:
    """Open invoices that may have something due on ``as_of``, their policies, and which
    of them are late-fee invoices."""
    lead = max([-s.offset_days for s in DunningStep.objects.all()] + [0])
    invoices = list(
        Invoice.objects.filter(
            status=InvoiceStatus.OPEN,
            issue_date__lte=as_of,
            due_date__lte=as_of + timedelta(days=lead),
        )
        .select_related("customer")
        .order_by("due_date", "pk")
    )
    policies = dunning_policies_by_customer({i.customer_id for i in invoices})
    paused_customers, paused_invoices = collection_pauses_active(as_of=as_of)
    held = invoices_held_from_dunning([i.pk for i in invoices])
    kept = [
        i
        for i in invoices
        if i.customer_id in policies
        and i.customer_id not in paused_customers
        and i.pk not in paused_invoices
        and i.pk not in held
        and i.amount_due.amount > 0
    ]
    fee_invoices = set(
        Invoice.objects.filter(
            pk__in=[i.pk for i in kept], late_fee_charge__isnull=False
        ).values_list("pk", flat=True)
    )
    return kept, policies, fee_invoices


# --- Performing -------------------------------------------------------------------------------


def _send_email(invoice: Invoice, step: DunningStep, as_of: date) -> tuple[str, str, str]:
    """Render and send the step's email; returns (to, subject, body) for the timeline."""
    message = _email_for(invoice, step, as_of)
    _deliver(message, invoice)
    return ", ".join(message.to + message.cc), message.subject, message.body


def _deliver(message: EmailMessage, invoice: Invoice) -> None:
    """Hand one dunning email to the mail server; raises when it is refused."""
    message.send(fail_silently=False)


def _email_for(invoice: Invoice, step: DunningStep, as_of: date) -> EmailMessage:
    """The step's email for the invoice, rendered from its template, not sent."""
    customer: Customer = invoice.customer
    company = company_details()
    days = (as_of - invoice.due_date).days if invoice.due_date else 0
    # Read with the run's chunk when it handles the invoice; else here.
    open_fees = getattr(invoice, "_open_fees", None)
    if open_fees is None:
        open_fees = [
            f.fee_invoice
            for f in invoice.late_fees.filter(status=LateFeeStatus.CHARGED).select_related(
                "fee_invoice"
            )
            if f.fee_invoice.status == InvoiceStatus.OPEN
        ]
    context = {
        "invoice": invoice,
        "customer": customer,
        "company": company,
        "step": step,
        "amount_due": format_amount(invoice.amount_due.amount, invoice.currency),
        "due_date": invoice.due_date,
        "days_overdue": days,
        "late_fees": [
            {"number": f.number, "amount": format_amount(f.amount_due.amount, f.currency)}
            for f in open_fees
        ],
        "pay_url": invoice_url(invoice_id=invoice.pk),
    }
    subject = SUBJECTS[step.template].format(
        number=invoice.number, due_date=invoice.due_date, days=days
    )
    body = render_to_string(f"receivables/email/{step.template}.txt", context)
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[customer.email],
        cc=[e for e in customer.cc_emails or [] if e],
        reply_to=[company["email"]] if company.get("email") else None,
    )


def _suspend_subscriptions(invoice: Invoice) -> str:
    paused = []
    for sub_id in Subscription.objects.filter(
        customer_id=invoice.customer_id,
        status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE],
    ).values_list("pk", flat=True):
        subscription_pause(actor=None, subscription_id=sub_id)
        paused.append(str(sub_id))
    return f"subscriptions paused: {', '.join(paused) or 'none'}"


def _event_new(
    action: PlannedAction, invoice: Invoice, step: DunningStep, as_of: date, actor: Any
) -> CollectionEvent:
    """The (unsaved) timeline row of a step done or skipped by the run."""
    skip = action.kind == "skip"
    return CollectionEvent(
        invoice=invoice,
        step=step,
        action=step.action,
        scheduled_date=action.scheduled_date,
        run_date=as_of,
        actor=actor if getattr(actor, "pk", None) else None,
        outcome=CollectionEventOutcome.SKIPPED if skip else CollectionEventOutcome.DONE,
        detail="superseded by a later step due the same run" if skip else "",
    )


def _perform(
    action: PlannedAction, invoice: Invoice, policy: DunningPolicy, as_of: date, actor: Any
) -> None:
    if action.kind == "late_fee":
        pct, _grace = fee_terms(policy)
        base = fee_base(invoice=invoice, compound=policy.compound_fees)
        late_fee_charge(
            invoice=invoice,
            sequence=action.fee_sequence or 0,
            base=base,
            percentage=pct,
            days_overdue=(as_of - invoice.due_date).days if invoice.due_date else 0,
            on_date=as_of,
        )
        return
    step = next(s for s in policy.steps.all() if s.pk == action.step_id)
    event = _event_new(action, invoice, step, as_of, actor)
    if action.kind == "skip":
        event.save()
        return
    # Inserted before the email goes: an overlapping run blocks on the unique index here,
    # and a failed send rolls the row back so the next run sends it.
    event.save()
    details = []
    if step.action == DunningAction.SUSPEND:
        details.append(_suspend_subscriptions(invoice))
    elif step.action == DunningAction.HAND_OVER:
        details.append("flagged for hand-over to collections agency")
    event.email_to, event.email_subject, event.email_body = _send_email(invoice, step, as_of)
    event.detail = "; ".join(details)[:500]
    event.save(update_fields=["email_to", "email_subject", "email_body", "detail"])


def _handle_invoice(invoice_id: int, policy: DunningPolicy, as_of: date, actor: Any) -> list:
    """One invoice under its row lock: plan again (another run may have acted) and perform."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice_id)
        if invoice.status != InvoiceStatus.OPEN:
            return []
        is_fee = hasattr(invoice, "late_fee_charge")
        actions = _plan_invoice(invoice, policy, as_of, is_fee_invoice=is_fee)
        for action in actions:
            _perform(action, invoice, policy, as_of, actor)
            invoice.refresh_from_db()
        return actions


# --- The run in chunks ---------------------------------------------------------------------------

# Invoices handled per transaction. A chunk that fails as a whole is handled again one
# invoice at a time, so one bad invoice never holds back the others.
CHUNK_SIZE = 500


def _chunk_reads(
    ids: list[int],
) -> tuple[dict[int, set[int]], dict[int, int], set[int], dict[int, list[Invoice]]]:
    """For a chunk of invoices, in one query each: the steps done, the last fee charged,
    which are fee invoices themselves, and the open fee invoices of each."""
    done: dict[int, set[int]] = defaultdict(set)
    for invoice_id, step_id in CollectionEvent.objects.filter(invoice_id__in=ids).values_list(
        "invoice_id", "step_id"
    ):
        done[invoice_id].add(step_id)
    charged = dict(
        LateFee.objects.filter(invoice_id__in=ids)
        .values("invoice_id")
        .annotate(last=Max("sequence"))
        .values_list("invoice_id", "last")
    )
    fee_invoices = set(
        LateFee.objects.filter(fee_invoice_id__in=ids).values_list("fee_invoice_id", flat=True)
    )
    open_fees: dict[int, list[Invoice]] = defaultdict(list)
    for fee in (
        LateFee.objects.filter(
            invoice_id__in=ids,
            status=LateFeeStatus.CHARGED,
            fee_invoice__status=InvoiceStatus.OPEN,
        )
        .select_related("fee_invoice")
        .order_by("pk")
    ):
        open_fees[fee.invoice_id].append(fee.fee_invoice)
    return done, charged, fee_invoices, open_fees


def _charge_fees(
    fees: list[tuple[Invoice, PlannedAction]],
    policies: dict[int, DunningPolicy],
    as_of: date,
) -> dict[int, list[Invoice]]:
    """Charge the chunk's planned fees at once: the fee invoices issued as one block (their
    numbers, postings and rows written in bulk by billing), one LateFee row each with its
    history. Returns the new fee invoices of each invoice."""
    specs, rows = [], []
    for invoice, action in fees:
        pct, _grace = fee_terms(policies[invoice.customer_id])
        base = fee_base(invoice=invoice, compound=False)
        amount = late_fee_amount(base=base, percentage=pct, currency=invoice.currency)
        days = (as_of - invoice.due_date).days if invoice.due_date else 0
        sequence = action.fee_sequence or 0
        specs.append(
            InvoiceSpec(
                customer=invoice.customer,
                currency=invoice.currency,
                memo=late_fee_memo(invoice, sequence),
                lines=[late_fee_line(invoice, base, pct, days, amount)],
            )
        )
        rows.append(late_fee_fields(invoice, sequence, base, pct, days, amount, as_of))
    issued = invoices_issue_batch(
        specs=specs, on_date=as_of, income_role=AccountRole.LATE_FEE_INCOME
    )
    bulk_create_with_history(
        [LateFee(**row, fee_invoice=fee) for row, fee in zip(rows, issued, strict=True)], LateFee
    )
    new: dict[int, list[Invoice]] = defaultdict(list)
    for (invoice, _action), fee in zip(fees, issued, strict=True):
        new[invoice.pk].append(fee)
    return new


def _handle_chunk(
    ids: list[int], policies: dict[int, DunningPolicy], as_of: date, actor: Any
) -> tuple[list[PlannedAction], dict[int, str]]:
    """A chunk of invoices in one transaction, under their row locks (taken in id order):
    read in bulk, every fee of the chunk charged as one block, the steps' timeline rows
    inserted at once before their emails go. A refused email takes that invoice's steps out
    again (the next run sends it) and nothing else: a fee charged or a suspension stands.
    Invoices whose fees compound go one at a time, each in a savepoint."""
    actions: list[PlannedAction] = []
    failures: dict[int, str] = {}
    with transaction.atomic():
        invoices = list(
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk__in=ids, status=InvoiceStatus.OPEN)
            .order_by("pk")
        )
        done, charged, fee_invoices, open_fees = _chunk_reads([i.pk for i in invoices])
        planned: list[tuple[Invoice, list[PlannedAction]]] = []
        fees: list[tuple[Invoice, PlannedAction]] = []
        for invoice in invoices:
            policy = policies[invoice.customer_id]
            plan = _plan_invoice(
                invoice,
                policy,
                as_of,
                is_fee_invoice=invoice.pk in fee_invoices,
                done=done[invoice.pk],
                charged=charged.get(invoice.pk, 0),
            )
            if policy.compound_fees:
                planned.append((invoice, plan))  # each fee's base needs the one before
                continue
            fees.extend((invoice, a) for a in plan if a.kind == "late_fee")
            planned.append((invoice, [a for a in plan if a.kind != "late_fee"]))
        for invoice_id, new_fees in _charge_fees(fees, policies, as_of).items():
            open_fees[invoice_id].extend(new_fees)
        actions.extend(a for _invoice, a in fees)
        emails: list[tuple[Invoice, list[CollectionEvent], list[EmailMessage]]] = []
        for invoice, plan in planned:
            policy = policies[invoice.customer_id]
            steps = {s.pk: s for s in policy.steps.all()}
            if not policy.compound_fees:
                invoice._open_fees = open_fees[invoice.pk]  # type: ignore[attr-defined]
                events, messages = _email_events(invoice, plan, steps, as_of, actor)
                if events:
                    emails.append((invoice, events, messages))
                actions.extend(plan)
                continue
            # Fees that compound (each fee's base needs the one before): one by one.
            try:
                with transaction.atomic():
                    for action in plan:
                        _perform(action, invoice, policy, as_of, actor)
            except Exception as exc:  # this invoice's steps are undone; the chunk goes on
                logger.exception("collections run: invoice %s failed", invoice.pk)
                failures[invoice.pk] = f"{type(exc).__name__}: {exc}"
                continue
            actions.extend(plan)
        failures.update(_record_and_send(emails))
    failed = set(failures)
    return [a for a in actions if a.invoice_id not in failed or a.kind == "late_fee"], failures


def _email_events(
    invoice: Invoice,
    plan: list[PlannedAction],
    steps: dict[int, DunningStep],
    as_of: date,
    actor: Any,
) -> tuple[list[CollectionEvent], list[EmailMessage]]:
    """The invoice's timeline rows for its steps, with each email rendered (not sent); an
    escalation pauses the customer's subscriptions here (it stands if the email is then
    refused, like a fee)."""
    events, messages = [], []
    for action in plan:
        step = steps[action.step_id or 0]
        event = _event_new(action, invoice, step, as_of, actor)
        if action.kind != "skip":
            if step.action == DunningAction.SUSPEND:
                event.detail = _suspend_subscriptions(invoice)[:500]
            elif step.action == DunningAction.HAND_OVER:
                event.detail = "flagged for hand-over to collections agency"
            message = _email_for(invoice, step, as_of)
            event.email_to = ", ".join(message.to + message.cc)
            event.email_subject = message.subject
            event.email_body = message.body
            messages.append(message)
        events.append(event)
    return events, messages


def _record_and_send(
    emails: list[tuple[Invoice, list[CollectionEvent], list[EmailMessage]]],
) -> dict[int, str]:
    """Insert the chunk's timeline rows (append-only) before any email goes, as the
    one-by-one path does: an overlapping run blocks on the unique index. Then send; an
    invoice whose email is refused has its rows taken out again, so the next run sends it.
    Returns the invoices that failed."""
    CollectionEvent.objects.bulk_create([e for _i, events, _m in emails for e in events])
    failures: dict[int, str] = {}
    for invoice, events, messages in emails:
        try:
            for message in messages:
                _deliver(message, invoice)
        except Exception as exc:
            logger.exception("collections run: invoice %s failed", invoice.pk)
            failures[invoice.pk] = f"{type(exc).__name__}: {exc}"
            CollectionEvent.objects.filter(pk__in=[e.pk for e in events]).delete()
    return failures


def collections_invoice_handle(
    *, invoice_id: int, policy: DunningPolicy, as_of: date, actor: Any = None
) -> list[PlannedAction]:
    """One invoice's steps and fees due on ``as_of``, under its row lock in a transaction of
    its own: the path the run takes for an invoice its batch could not handle."""
    return _handle_invoice(invoice_id, policy, as_of, actor)


def _one_by_one(
    invoices: list[Invoice], policies: dict[int, DunningPolicy], as_of: date, actor: Any
) -> tuple[list[PlannedAction], dict[int, str]]:
    actions: list[PlannedAction] = []
    failures: dict[int, str] = {}
    for invoice in invoices:
        try:
            actions.extend(_handle_invoice(invoice.pk, policies[invoice.customer_id], as_of, actor))
        except Exception as exc:  # one invoice's failure is reported, the run goes on
            logger.exception("collections run: invoice %s failed", invoice.pk)
            failures[invoice.pk] = f"{type(exc).__name__}: {exc}"
    return actions, failures


def collections_run(
    *,
    as_of: date | None = None,
    dry_run: bool = False,
    actor: Any = None,
    chunk_size: int | None = None,
) -> CollectionsRunResult:
    """Perform every dunning step and late fee due on ``as_of`` (today by default); with
    ``dry_run``, list them and write nothing. ``actor=None`` is the scheduled run."""
    if actor is not None and not (
        actor.has_perm("receivables.run_collections")
        or (dry_run and actor.has_perm("receivables.view_collectionevent"))
    ):
        raise PermissionDeniedError("Your role does not allow running collections.")
    as_of = as_of or timezone.localdate()
    chunk_size = chunk_size or getattr(settings, "RECEIVABLES_COLLECTIONS_CHUNK_SIZE", CHUNK_SIZE)
    invoices, policies, fee_invoices = _candidates(as_of)
    result = CollectionsRunResult(as_of=as_of, dry_run=dry_run, invoices_seen=len(invoices))
    if dry_run:
        for invoice in invoices:
            result.actions.extend(
                _plan_invoice(
                    invoice,
                    policies[invoice.customer_id],
                    as_of,
                    is_fee_invoice=invoice.pk in fee_invoices,
                )
            )
        return result
    # The chunk path issues late fees in bulk, written by PostgreSQL's COPY and sequences;
    # elsewhere (the quick-start SQLite database) each invoice is handled on its own.
    bulk = connection.vendor == "postgresql"
    for start in range(0, len(invoices), chunk_size):
        chunk = invoices[start : start + chunk_size]
        if not bulk:
            actions, failures = _one_by_one(chunk, policies, as_of, actor)
            result.actions.extend(actions)
            result.failures.update(failures)
            continue
        try:
            actions, failures = _handle_chunk([i.pk for i in chunk], policies, as_of, actor)
        except Exception:  # the chunk as a whole failed: one invoice at a time instead
            logger.exception("collections run: a chunk failed, handling it invoice by invoice")
            actions, failures = _one_by_one(chunk, policies, as_of, actor)
        result.actions.extend(actions)
        result.failures.update(failures)
    return result


# --- Pauses and promises ----------------------------------------------------------------------


def _require(actor: Any, perm: str, what: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow you to {what}.")


def collection_pause_create(
    *,
    actor: Any,
    reason: str,
    customer_id: int | None = None,
    invoice_id: int | None = None,
    until_date: date | None = None,
    start_date: date | None = None,
) -> CollectionPause:
    """Hold dunning and late fees for a customer or one invoice, through ``until_date``
    (empty: until lifted)."""
    _require(actor, "receivables.add_collectionpause", "pause collections")
    if not reason.strip():
        raise CollectionsError("A pause needs a reason.", code="reason_required", field="reason")
    if (customer_id is None) == (invoice_id is None):
        raise CollectionsError("Pause either a customer or one invoice.", field="invoice")
    start = start_date or timezone.localdate()
    if until_date is not None and until_date < start:
        raise CollectionsError("The pause ends before it starts.", field="until_date")
    return CollectionPause.objects.create(
        kind=PauseKind.PAUSE,
        customer_id=customer_id,
        invoice_id=invoice_id,
        reason=reason.strip(),
        start_date=start,
        until_date=until_date,
        created_by=actor if getattr(actor, "pk", None) else None,
    )


def promise_to_pay_record(
    *,
    actor: Any,
    invoice_id: int,
    promised_date: date,
    reason: str = "",
    amount: Any = None,
    start_date: date | None = None,
) -> CollectionPause:
    """The customer promised to pay by ``promised_date``: no steps or fees on the invoice
    through that day; if it is still open afterwards, dunning resumes."""
    _require(actor, "receivables.add_collectionpause", "record promises to pay")
    invoice = Invoice.objects.get(pk=invoice_id)
    start = start_date or timezone.localdate()
    if promised_date < start:
        raise CollectionsError("The promised date has passed.", field="promised_date")
    return CollectionPause.objects.create(
        kind=PauseKind.PROMISE,
        invoice=invoice,
        reason=reason.strip() or f"promise to pay by {promised_date.isoformat()}",
        start_date=start,
        until_date=promised_date,
        currency=invoice.currency if amount is not None else "",
        promised_amount=Money(amount, invoice.currency) if amount is not None else None,
        created_by=actor if getattr(actor, "pk", None) else None,
    )


def collection_pause_lift(*, actor: Any, pause_id: int) -> CollectionPause:
    """End a pause or promise now; the next run resumes dunning."""
    _require(actor, "receivables.change_collectionpause", "lift pauses")
    with transaction.atomic():
        pause = CollectionPause.objects.select_for_update().get(pk=pause_id)
        if pause.lifted_at is None:
            pause.lifted_at = timezone.now()
            pause.lifted_by = actor if getattr(actor, "pk", None) else None
            pause.save(update_fields=["lifted_at", "lifted_by"])
    return pause
