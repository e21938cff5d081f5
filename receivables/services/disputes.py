"""Disputes: open, review, resolve; and card chargebacks from Stripe's ``charge.dispute.*``
webhook events, which billing stores and this module applies (billing never imports
receivables).

Each write locks the dispute row and checks the transition, so two concurrent resolves make
one state change and the other is refused with 409. Chargeback events are applied once:
a ChargebackEvent row per stored webhook event, written in the same transaction as the
effects, and the reversal and the fee carry the Stripe dispute id (one Refund per
processor refund id, one journal entry per idempotency key).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed
from djmoney.money import Money

from billing.models import Invoice, Payment, WebhookEvent
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.refunds import refund_issue
from billing.tax import line_amounts
from core.exceptions import Conflict, DomainError, NotFound, PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec, journal_post
from core.money import check_amount, format_amount, minor_unit_exponent
from receivables.models_disputes import ChargebackEvent, Dispute, DisputeStatus

logger = logging.getLogger(__name__)

STRIPE = "stripe"
UPHELD = "upheld"
REJECTED = "rejected"
OUTCOMES = (UPHELD, REJECTED)
ZERO = Decimal(0)


class DisputeError(DomainError):
    code = "dispute_error"


class DisputeConflict(Conflict):
    code = "invalid_transition"


def _require(actor: Any, perm: str, what: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow {what}.")


def _locked(dispute_id: int) -> Dispute:
    found = Dispute.objects.select_for_update().filter(pk=dispute_id).first()
    if found is None:
        raise NotFound(f"Dispute {dispute_id} does not exist.")
    return found


def dispute_open(*, actor: Any, invoice_id: int, amount: Decimal, reason: str) -> Dispute:
    """Open a dispute on an issued invoice for at most its total; the invoice's dunning
    pauses until it is resolved."""
    _require(actor, "receivables.add_dispute", "opening disputes")
    if not reason.strip():
        raise DisputeError("A dispute needs a reason.", code="reason_required", field="reason")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} does not exist.")
        return _create(actor=actor, invoice=invoice, amount=amount, reason=reason)


def _create(*, actor: Any, invoice: Invoice, amount: Decimal, **fields: Any) -> Dispute:
    currency = invoice.currency
    if invoice.status not in ("open", "paid"):
        raise DisputeConflict(
            f"Invoice {invoice} is {invoice.status}; only open or paid invoices are disputed.",
            code="invoice_not_disputable",
        )
    check_amount(amount, currency)
    if amount <= 0:
        raise DisputeError("A disputed amount must be positive.", field="amount")
    if amount > invoice.total.amount:
        raise DisputeError(
            f"{format_amount(amount, currency)} is more than the invoice's total of "
            f"{format_amount(invoice.total.amount, currency)}.",
            code="over_dispute",
            field="amount",
        )
    return Dispute.objects.create(
        invoice=invoice,
        customer_id=invoice.customer_id,
        currency=currency,
        amount=Money(amount, currency),
        opened_by=actor if getattr(actor, "pk", None) else None,
        **fields,
    )


def dispute_review(*, actor: Any, dispute_id: int) -> Dispute:
    """Open -> under review."""
    _require(actor, "receivables.review_dispute", "reviewing disputes")
    with transaction.atomic():
        dispute = _locked(dispute_id)
        _review(dispute, actor)
    return dispute


def _review(dispute: Dispute, actor: Any) -> None:
    if not can_proceed(dispute.review):
        raise DisputeConflict(f"Dispute {dispute.pk} is {dispute.status}; it cannot go to review.")
    dispute.review(by=actor if getattr(actor, "pk", None) else None)
    dispute.save(update_fields=["status", "reviewed_at", "reviewed_by"])


def dispute_resolve(*, actor: Any, dispute_id: int, outcome: str, note: str = "") -> Dispute:
    """Under review -> upheld (a credit note for the disputed amount) or rejected (nothing
    posted). A second resolve, concurrent or later, is refused with 409."""
    _require(actor, "receivables.resolve_dispute", "resolving disputes")
    if outcome not in OUTCOMES:
        raise DisputeError(f"Outcome must be one of {', '.join(OUTCOMES)}.", field="outcome")
    with transaction.atomic():
        dispute = _locked(dispute_id)
        transition = dispute.uphold if outcome == UPHELD else dispute.reject
        if not can_proceed(transition):
            raise DisputeConflict(
                f"Dispute {dispute.pk} is {dispute.status}; only a dispute under review is "
                "resolved."
            )
        transition(by=actor if getattr(actor, "pk", None) else None, note=note)
        fields = ["status", "resolved_at", "resolved_by", "resolution_note"]
        if outcome == UPHELD and dispute.stripe_dispute_id is None:
            dispute.credit_note = credit_note_issue(
                actor=actor,
                invoice_id=dispute.invoice_id,
                reason=f"Dispute {dispute.pk} upheld: {dispute.reason}"[:300],
                lines=_credit_lines(dispute),
            )
            fields.append("credit_note")
        dispute.save(update_fields=fields)
    return dispute


def _credit_lines(dispute: Dispute) -> list[CreditLineInput] | None:
    """Credit lines whose total (net plus tax) is exactly the disputed amount: the whole
    invoice's own lines when all of it is disputed, else one line at the invoice's rate."""
    invoice = dispute.invoice
    amount, currency = dispute.amount.amount, dispute.currency
    if amount == invoice.total.amount and not invoice.credit_notes.exists():
        return None
    rates = set(invoice.lines.values_list("tax_rate", flat=True))
    if len(rates) != 1:
        raise DisputeError(
            f"Invoice {invoice} has several tax rates; credit part of it by hand.",
            code="credit_split_impossible",
        )
    rate = rates.pop()
    description = f"Dispute {dispute.pk}: {dispute.reason}"[:200]
    step = Decimal(1).scaleb(-minor_unit_exponent(currency))
    first = (amount / (1 + rate)).quantize(step)
    for net in (first, first - step, first + step, first - 2 * step, first + 2 * step):
        parts = line_amounts(quantity=Decimal(1), unit_price=net, tax_rate=rate, currency=currency)
        if parts.amount + parts.tax == amount:
            return [CreditLineInput(description=description, amount=net, tax_rate=rate)]
    raise DisputeError(
        f"{format_amount(amount, currency)} cannot be split into net and tax at "
        f"{rate}; credit it by hand.",
        code="credit_split_impossible",
    )


# --- chargebacks --------------------------------------------------------------------------


@dataclass(slots=True)
class ChargebackRun:
    applied: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def chargeback_events_apply(*, limit: int = 500) -> ChargebackRun:
    """Apply the stored Stripe ``charge.dispute.*`` events not applied yet, oldest first,
    each in its own transaction. Safe to repeat and to overlap (skip-locked rows and a
    unique marker per event); one failing event is reported and tried again next run."""
    run = ChargebackRun()
    pending = list(
        WebhookEvent.objects.filter(
            provider=STRIPE, type__startswith="charge.dispute.", chargeback_applied__isnull=True
        )
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in pending:
        try:
            with transaction.atomic():
                event = (
                    WebhookEvent.objects.select_for_update(skip_locked=True)
                    .filter(pk=event_id)
                    .first()
                )
                if event is None or ChargebackEvent.objects.filter(webhook_event=event).exists():
                    continue
                dispute, outcome = _chargeback_apply(event)
                ChargebackEvent.objects.create(
                    webhook_event=event, dispute=dispute, outcome=outcome[:500]
                )
                run.applied += 1
        except DomainError as exc:
            logger.error("Chargeback event %s not applied: %s", event_id, exc.message)
            run.failures[str(event_id)] = f"{exc.code}: {exc.message}"
    return run


def _major(minor: Any, currency: str) -> Decimal:
    return Decimal(int(minor or 0)).scaleb(-minor_unit_exponent(currency))


def _stamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _chargeback_apply(event: WebhookEvent) -> tuple[Dispute | None, str]:
    obj = (event.payload.get("data") or {}).get("object") or {}
    dispute_id = str(obj.get("id") or "")
    if not dispute_id.startswith("dp_") and obj.get("object") != "dispute":
        return None, "ignored: not a dispute"
    dispute = Dispute.objects.select_for_update().filter(stripe_dispute_id=dispute_id).first()
    if dispute is None:
        dispute = _chargeback_open(obj, dispute_id)
        if dispute is None:
            return None, "ignored: not a charge of ours"
    status = str(obj.get("status") or "")
    due = _stamp((obj.get("evidence_details") or {}).get("due_by"))
    if dispute.status in (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW):
        dispute.processor_status = status
        dispute.evidence_due_by = due or dispute.evidence_due_by
        dispute.save(update_fields=["processor_status", "evidence_due_by"])
    if status in ("under_review", "warning_under_review") and dispute.status == "open":
        _review(dispute, None)
        return dispute, f"dispute {dispute.pk} under review"
    if event.type == "charge.dispute.closed" or status in ("won", "lost", "warning_closed"):
        return dispute, _chargeback_close(dispute, obj, status)
    return dispute, f"dispute {dispute.pk} {dispute.status} (stripe: {status})"


def _chargeback_open(obj: dict[str, Any], dispute_id: str) -> Dispute | None:
    charge = str(obj.get("charge") or "")
    intent = str(obj.get("payment_intent") or "")
    ids = [i for i in (charge, intent) if i]
    payment = (
        Payment.objects.select_for_update()
        .filter(processor=STRIPE, processor_charge_id__in=ids)
        .first()
        if ids
        else None
    )
    if payment is None:
        return None
    allocation = payment.allocations.order_by("-pk").first()
    if allocation is None:
        raise DisputeError(f"Payment {payment.pk} paid no invoice; dispute {dispute_id} unmatched.")
    invoice = Invoice.objects.select_for_update().get(pk=allocation.invoice_id)
    currency = str(obj.get("currency") or payment.currency).upper()
    if currency != invoice.currency:
        raise DisputeError(
            f"Stripe disputes {currency} on an invoice in {invoice.currency}.",
            code="currency_mismatch",
        )
    reason = f"Chargeback ({obj.get('reason') or 'unknown reason'})"
    return _create(
        actor=None,
        invoice=invoice,
        amount=_major(obj.get("amount"), currency),
        reason=reason,
        stripe_dispute_id=dispute_id,
        payment=payment,
        processor_status=str(obj.get("status") or ""),
        evidence_due_by=_stamp((obj.get("evidence_details") or {}).get("due_by")),
    )


def _chargeback_close(dispute: Dispute, obj: dict[str, Any], status: str) -> str:
    """Lost: upheld, the payment reversed (Dr AR at the invoice's rate / Cr processor
    clearing, the invoice open again for that much) and the dispute fee posted (Dr processor
    fees / Cr processor clearing), each once. Won: rejected, nothing posted."""
    if status not in ("won", "lost"):
        return f"dispute {dispute.pk} closed by stripe as {status!r}: left as {dispute.status}"
    if dispute.status == DisputeStatus.OPEN:
        _review(dispute, None)
    if dispute.status != DisputeStatus.UNDER_REVIEW:
        return f"dispute {dispute.pk} already {dispute.status}"
    note = f"Stripe closed the chargeback: {status}."
    if status == "won":
        dispute.reject(note=note)
        dispute.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        return f"dispute {dispute.pk} rejected (chargeback won)"
    dispute.uphold(note=note)
    refund = refund_issue(
        actor=None,
        customer_id=dispute.customer_id,
        amount=dispute.amount.amount,
        reason=f"Chargeback {dispute.stripe_dispute_id} lost",
        payment_id=dispute.payment_id,
        processor_refund_id=dispute.stripe_dispute_id,
        # Taken back for what it paid on the disputed invoice, which opens again; an
        # overpayment left on the credit balance is reversed only after.
        invoices_first=True,
        invoice_id=dispute.invoice_id,
    )
    dispute.reversal = refund
    dispute.fee_entry = _fee_post(dispute, obj)
    dispute.save(
        update_fields=[
            "status",
            "resolved_at",
            "resolved_by",
            "resolution_note",
            "reversal",
            "fee_entry",
        ]
    )
    return f"dispute {dispute.pk} upheld (chargeback lost): refund {refund.pk}"


def _fee_post(dispute: Dispute, obj: dict[str, Any]) -> Any:
    """The dispute fee Stripe withheld, in its balance currency; None when there is none."""
    fees: dict[str, Decimal] = {}
    for txn in obj.get("balance_transactions") or []:
        if txn.get("reporting_category") != "dispute":
            continue
        currency = str(txn.get("currency") or dispute.currency).upper()
        fees[currency] = fees.get(currency, ZERO) + _major(txn.get("fee"), currency)
    fees = {c: a for c, a in fees.items() if a > 0}
    if not fees:
        return None
    accounts = {a.role: a for a in Account.objects.exclude(role=None)}
    lines = []
    for currency, amount in sorted(fees.items()):
        lines.append(LineSpec(accounts[AccountRole.PROCESSOR_FEES], currency, debit=amount))
        lines.append(LineSpec(accounts[AccountRole.PROCESSOR_CLEARING], currency, credit=amount))
    return journal_post(
        lines=lines,
        entry_date=timezone.localdate(),
        description=f"Stripe dispute fee {dispute.stripe_dispute_id} (dispute {dispute.pk})",
        source=f"receivables.dispute:{dispute.pk}",
        idempotency_key=f"receivables.dispute_fee:{dispute.stripe_dispute_id}",
    )
