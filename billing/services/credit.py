"""Credit limits and holds: the check every new invoice and subscription passes.

Exposure is what the customer owes us net of what we owe them, in the customer's currency:
the amount due on its open invoices (those in another currency converted at today's rate
with ``core.fx``) minus its credit balance. A new document is refused when exposure plus its
amount would exceed the customer's ``credit_limit`` (empty: no limit), unless an actor holding
``billing.override_credit_limit`` overrides; a credit hold refuses every new document and is
not overridable (lift the hold instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Sum
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError
from billing.models import Customer, Invoice
from core.exceptions import Conflict, PermissionDeniedError
from core.fx import fx_convert
from core.money import minor_unit_exponent, round_money

ZERO = Decimal(0)
CREDIT_FIELDS = ("credit_limit", "credit_hold", "credit_hold_reason")
OVERRIDE_PERM = "billing.override_credit_limit"
MANAGE_PERM = "billing.manage_credit"


class CreditLimitExceeded(Conflict):
    code = "credit_limit_exceeded"


class CreditHoldActive(Conflict):
    code = "credit_hold"


@dataclass(frozen=True, slots=True)
class Exposure:
    """A customer's exposure in its currency, and the parts it is made of."""

    currency: str
    open_amount: Decimal
    credit_balance: Decimal
    # Currencies of open invoices converted at ``rate_date``'s rate (empty: none converted).
    converted_from: tuple[str, ...]
    rate_date: date

    @property
    def total(self) -> Decimal:
        """Net exposure; negative when the customer's credit exceeds what it owes."""
        return self.open_amount - self.credit_balance


def customer_exposure(*, customer: Customer, on_date: date | None = None) -> Exposure:
    """Open AR of ``customer`` net of its credit balance, in its currency (one query per
    call plus the rates of other currencies)."""
    on = on_date or timezone.localdate()
    due = ExpressionWrapper(
        F("total") - F("amount_paid") - F("amount_credited"),
        output_field=DecimalField(max_digits=19, decimal_places=4),
    )
    rows = (
        Invoice.objects.filter(customer_id=customer.pk, status=InvoiceStatus.OPEN)
        .order_by()
        .values("currency")
        .annotate(due=Sum(due))
    )
    open_amount = ZERO
    converted = []
    for row in rows:
        amount = row["due"] or ZERO
        if row["currency"] != customer.currency:
            converted.append(row["currency"])
            amount = fx_convert(
                amount=amount,
                from_currency=row["currency"],
                to_currency=customer.currency,
                on_date=on,
            )
        open_amount += amount
    return Exposure(
        currency=customer.currency,
        open_amount=round_money(open_amount, customer.currency),
        credit_balance=customer.credit_balance.amount,
        converted_from=tuple(sorted(converted)),
        rate_date=on,
    )


def _fmt(value: Decimal, currency: str) -> str:
    return f"{round_money(value, currency):f}"


def credit_check(
    *,
    customer_id: int,
    amount: Decimal,
    currency: str,
    actor: Any,
    override: bool = False,
    what: str = "This invoice",
) -> Any:
    """Refuse a new document of ``amount`` (in ``currency``) that the customer's credit does
    not allow. Locks the customer row (call inside the issuing transaction) so concurrent
    issues are checked one after the other. Returns the overriding user when an override was
    needed and given, else None."""
    if override and (actor is None or not actor.has_perm(OVERRIDE_PERM)):
        raise PermissionDeniedError("Your role does not allow overriding credit limits.")
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    if customer.credit_hold:
        raise CreditHoldActive(
            f"{customer.name} is on credit hold: {customer.credit_hold_reason}",
            reason=customer.credit_hold_reason,
        )
    if customer.credit_limit is None:
        return None
    exposure = customer_exposure(customer=customer)
    added = amount
    if currency != customer.currency:
        added = fx_convert(
            amount=amount,
            from_currency=currency,
            to_currency=customer.currency,
            on_date=exposure.rate_date,
        )
    if exposure.total + added <= customer.credit_limit:
        return None
    if override:
        return actor
    c = customer.currency
    raise CreditLimitExceeded(
        f"{what} would take {customer.name}'s exposure to "
        f"{_fmt(exposure.total + added, c)} {c}, above its credit limit of "
        f"{_fmt(customer.credit_limit, c)} {c}; an approver may override.",
        limit=_fmt(customer.credit_limit, c),
        exposure=_fmt(exposure.total, c),
        amount=_fmt(added, c),
        currency=c,
    )


def credit_fields_clean(
    *, actor: Any, fields: dict[str, Any], currency: str, current: Customer | None = None
) -> dict[str, Any]:
    """Validate the credit fields of a customer create (``current`` None) or update: only
    ``billing.manage_credit`` may change them (a clerk raising a limit would defeat it;
    sending them back unchanged is fine), limits are rounded to the currency, and a hold
    needs a reason (lifting one clears it)."""
    given = {k: fields[k] for k in CREDIT_FIELDS if k in fields}
    if not given:
        return fields
    if "credit_limit" in given and given["credit_limit"] is not None:
        if given["credit_limit"] < 0:
            raise BillingError("A credit limit must not be negative.", field="credit_limit")
        minor_unit_exponent(currency)
        fields["credit_limit"] = round_money(Decimal(given["credit_limit"]), currency)
    hold = fields.get("credit_hold", current.credit_hold if current else False)
    if hold:
        reason = fields.get("credit_hold_reason", current.credit_hold_reason if current else "")
        if not (reason or "").strip():
            raise BillingError("A credit hold needs a reason.", field="credit_hold_reason")
        if "credit_hold_reason" in fields:
            fields["credit_hold_reason"] = reason.strip()
    elif "credit_hold" in given:
        fields["credit_hold_reason"] = ""
    before = {
        "credit_limit": current.credit_limit if current else None,
        "credit_hold": current.credit_hold if current else False,
        "credit_hold_reason": current.credit_hold_reason if current else "",
    }
    changed = any(fields[k] != before[k] for k in CREDIT_FIELDS if k in fields)
    if changed and (actor is None or not actor.has_perm(MANAGE_PERM)):
        raise PermissionDeniedError("Your role does not allow setting credit limits or holds.")
    return fields


def customer_credit_set(
    *,
    actor: Any,
    customer_id: int,
    credit_limit: Decimal | None,
    credit_hold: bool,
    credit_hold_reason: str = "",
) -> Customer:
    """Set a customer's credit limit and hold: only ``billing.manage_credit`` (finance_admin,
    approver), who need not otherwise change customers. Same rules as a customer update
    (no negative limit, a hold needs a reason); the change is in the customer's history."""
    if actor is not None and not actor.has_perm(MANAGE_PERM):
        raise PermissionDeniedError("Your role does not allow setting credit limits or holds.")
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        fields = credit_fields_clean(
            actor=actor,
            fields={
                "credit_limit": credit_limit,
                "credit_hold": credit_hold,
                "credit_hold_reason": credit_hold_reason,
            },
            currency=customer.currency,
            current=customer,
        )
        changed = [name for name in CREDIT_FIELDS if getattr(customer, name) != fields[name]]
        if changed:
            for name in changed:
                setattr(customer, name, fields[name])
            customer.save(update_fields=changed)
    return customer
