"""Payments: recorded, allocated to invoices (explicitly or oldest due first), the rest to
the customer's credit balance, posted to the ledger with realized FX. The customer row is
locked first, then the invoices in id order: concurrent payments never overpay an invoice.
``payments_record_batch`` records many the same way at once, in bulk (the bank
reconciliation's automatic matches)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Model
from django.utils import timezone
from djmoney.money import Money

from billing.enums import AllocationOrder, InvoiceStatus, PaymentMethodType
from billing.exceptions import BillingError, CurrencyMismatch, OverAllocation
from billing.models import Customer, Invoice, Payment, PaymentAllocation
from billing.postings import ar_functional_change, invoice_settled, payment_lines
from billing.services.bulk import copy_insert, db_rows, history_rows, update_rows
from core.dates import DateKind, date_check
from core.events.services import events_batch, events_muted
from core.exceptions import DomainError, NotFound, PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.models import Account
from core.ledger.services import EntrySpec, journal_post, journal_post_batch
from core.money import check_amount, format_amount, round_storage
from core.system_settings import system_settings

ZERO = Decimal(0)
PROCESSOR_METHODS = {PaymentMethodType.CREDIT_CARD, PaymentMethodType.CRYPTOCURRENCY}


@dataclass(frozen=True, slots=True)
class AllocationInput:
    invoice_id: int
    amount: Decimal


ALLOCATION_ORDERS = {
    AllocationOrder.OLDEST_DUE: ("due_date", "issue_date", "pk"),
    AllocationOrder.NEWEST_DUE: ("-due_date", "-issue_date", "-pk"),
    AllocationOrder.SMALLEST: ("due", "due_date", "pk"),
    AllocationOrder.LARGEST: ("-due", "due_date", "pk"),
}


def _open_invoices_for_update(customer: Customer, currency: str) -> list[Invoice]:
    """The customer's open invoices in the currency, locked, in the customer's order
    (oldest due first unless the customer's settings say otherwise)."""
    order = ALLOCATION_ORDERS.get(
        customer.payment_allocation_order, ALLOCATION_ORDERS[AllocationOrder.OLDEST_DUE]
    )
    return list(
        Invoice.objects.select_for_update()
        .filter(customer=customer, currency=currency, status=InvoiceStatus.OPEN)
        .annotate(due=F("total") - F("amount_paid") - F("amount_credited"))
        .order_by(*order)
    )


def _plan(
    customer: Customer,
    currency: str,
    amount: Decimal,
    allocations: Sequence[AllocationInput] | None,
) -> list[tuple[Invoice, Decimal]]:
    if allocations is None:
        plan = []
        left = amount
        for invoice in _open_invoices_for_update(customer, currency):
            if left <= 0:
                break
            part = min(left, invoice.amount_due.amount)
            if part > 0:
                plan.append((invoice, part))
                left -= part
        return plan
    ids = [a.invoice_id for a in allocations]
    _check_once(ids)
    invoices = {
        i.pk: i for i in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    return _explicit_plan(customer, currency, amount, allocations, invoices)


def _check_once(ids: Sequence[int]) -> None:
    if len(set(ids)) != len(ids):
        raise BillingError("An invoice appears twice in the allocations.", field="allocations")


def _explicit_plan(
    customer: Customer,
    currency: str,
    amount: Decimal,
    allocations: Sequence[AllocationInput],
    invoices: dict[int, Invoice],
) -> list[tuple[Invoice, Decimal]]:
    """The allocations checked against the (locked) invoices as they stand."""
    plan = []
    for index, a in enumerate(allocations):
        invoice = invoices.get(a.invoice_id)
        if invoice is None or invoice.customer_id != customer.pk:
            raise BillingError(
                f"Invoice {a.invoice_id} is not an invoice of this customer.", field="allocations"
            )
        if invoice.currency != currency:
            raise CurrencyMismatch(
                f"Invoice {invoice.number} is in {invoice.currency}, the payment in {currency}."
            )
        if invoice.status != InvoiceStatus.OPEN:
            raise OverAllocation(f"Invoice {invoice} is {invoice.status}; it takes no payment.")
        check_amount(a.amount, currency, field=f"allocations[{index}].amount")
        if a.amount <= 0:
            raise BillingError(
                "Allocations must be positive.", field=f"allocations[{index}].amount"
            )
        if a.amount > invoice.amount_due.amount:
            raise OverAllocation(
                f"{format_amount(a.amount, currency)} is more than the "
                f"{format_amount(invoice.amount_due.amount, currency)} due on invoice "
                f"{invoice.number}.",
                invoice=invoice.pk,
                amount_due=invoice.amount_due.amount,
            )
        plan.append((invoice, a.amount))
    allocated = sum((part for _, part in plan), ZERO)
    if allocated > amount:
        raise OverAllocation(
            f"The allocations ({format_amount(allocated, currency)}) exceed the payment "
            f"({format_amount(amount, currency)})."
        )
    return plan


def _check_payment(method: str, amount: Decimal, currency: str, enabled: Sequence[str]) -> None:
    if method not in PaymentMethodType.values:
        raise BillingError(f"Unknown payment method {method!r}.", field="method")
    if method != PaymentMethodType.CHECK and method not in enabled:
        raise BillingError(f"Payment method {method!r} is not enabled.", field="method")
    check_amount(amount, currency, field="amount")
    if amount <= 0:
        raise BillingError("A payment amount must be positive.", field="amount")


def _credit_check(customer: Customer, currency: str, to_credit: Decimal) -> None:
    if to_credit and currency != customer.currency:
        raise CurrencyMismatch(
            f"{format_amount(to_credit, currency)} would be left as credit, but the "
            f"customer's credit balance is kept in {customer.currency}; allocate the whole "
            "payment."
        )


def payment_record(
    *,
    actor: Any,
    customer_id: int,
    amount: Decimal,
    currency: str,
    method: str,
    received_date: date | None = None,
    reference: str = "",
    allocations: Sequence[AllocationInput] | None = None,
    processor: str = "",
    processor_charge_id: str | None = None,
) -> Payment:
    """Record a received payment and apply it; nothing is recorded if any allocation is
    refused. A processor charge id is recorded once: a retry returns the first payment."""
    if actor is not None and not actor.has_perm("billing.record_payment"):
        raise PermissionDeniedError("Your role does not allow recording payments.")
    _check_payment(method, amount, currency, system_settings().payment_methods)
    if received_date is not None and actor is not None:
        # People and integrations: a payment is received on or before today, after the
        # books start. The system's own callers (processor events) carry the processor's date.
        date_check(received_date, field="received_date", kind=DateKind.RECEIVED)
    received_date = received_date or timezone.localdate()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if processor_charge_id:
            existing = Payment.objects.filter(processor_charge_id=processor_charge_id).first()
            if existing is not None:
                return existing
        plan = _plan(customer, currency, amount, allocations)
        ar_functional = _ar_functional(plan)
        to_invoices = sum((part for _, part in plan), ZERO)
        to_credit = amount - to_invoices
        _credit_check(customer, currency, to_credit)
        payment = Payment.objects.create(
            customer=customer,
            currency=currency,
            amount=Money(amount, currency),
            amount_allocated=Money(to_invoices, currency),
            method=method,
            received_date=received_date,
            reference=reference,
            processor=processor,
            processor_charge_id=processor_charge_id,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        payment.succeed()
        PaymentAllocation.objects.bulk_create(
            [
                PaymentAllocation(
                    payment=payment, invoice=inv, currency=currency, amount=Money(part, currency)
                )
                for inv, part in plan
            ]
        )
        for invoice, part in plan:
            invoice.amount_paid = invoice.amount_paid + Money(part, currency)
            if invoice.amount_due.amount == 0:
                invoice.mark_paid()
            invoice.save(update_fields=["amount_paid", "status", "closed_at"])
        if to_credit:
            customer.credit_balance = customer.credit_balance + Money(to_credit, currency)
            customer.save(update_fields=["credit_balance"])
        payment.ledger_entry = _post(payment, plan, to_credit, ar_functional)
        payment.save(update_fields=["status", "ledger_entry"])
    return payment


def _ar_functional(plan: list[tuple[Invoice, Decimal]]) -> Decimal:
    """The AR (functional) the plan takes off, read from the invoices before it is applied."""
    return sum(
        (
            ar_functional_change(
                settled_before=invoice_settled(invoice),
                settled_after=invoice_settled(invoice) + part,
                rate=invoice.fx_rate,
            )
            for invoice, part in plan
        ),
        ZERO,
    )


def _post(
    payment: Payment,
    plan: list[tuple[Invoice, Decimal]],
    to_credit: Decimal,
    ar_functional: Decimal,
) -> Any:
    functional = system_settings().functional_currency
    rate = fx_rate_get(base=payment.currency, quote=functional, on_date=payment.received_date)
    accounts = {a.role: a for a in Account.objects.exclude(role=None)}
    spec = _entry(payment, to_credit, ar_functional, rate=rate, accounts=accounts)
    return journal_post(
        lines=spec.lines,
        entry_date=spec.entry_date,
        description=spec.description,
        source=spec.source,
        idempotency_key=spec.idempotency_key,
        actor=payment.created_by,
    )


def _entry(
    payment: Payment,
    to_credit: Decimal,
    ar_f: Decimal,
    *,
    rate: Decimal,
    accounts: dict[str, Account],
) -> EntrySpec:
    """Cash at the payment date's rate (``rate``), AR as the invoices carry it (``ar_f``, see
    ``ar_functional_change``), the difference to realized FX gain/loss."""
    currency = payment.currency
    cash_f = round_storage(payment.amount.amount * rate)
    credit_f = round_storage(to_credit * rate)
    return EntrySpec(
        lines=payment_lines(
            currency=currency,
            amount=payment.amount.amount,
            to_invoices=payment.amount_allocated.amount,
            to_credit=to_credit,
            cash_functional=cash_f,
            invoices_functional=ar_f,
            credit_functional=credit_f,
            via_processor=payment.method in PROCESSOR_METHODS,
            accounts=accounts,
        ),
        entry_date=payment.received_date,
        description=f"Payment {payment.pk} from {payment.customer.name}"
        + (f" ({payment.reference})" if payment.reference else ""),
        source=f"billing.payment:{payment.pk}",
        idempotency_key=f"billing.payment:{payment.pk}",
    )


# --- many at once --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchPaymentInput:
    """One payment of ``payments_record_batch``. Allocations are explicit; what they leave
    of the amount becomes customer credit (none at all: all of it)."""

    customer_id: int
    amount: Decimal
    currency: str
    method: str
    allocations: Sequence[AllocationInput] = ()
    received_date: date | None = None
    reference: str = ""
    # A processor's charge (autopay): recorded as ``payment_record`` records it.
    processor: str = ""
    processor_charge_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentBatch:
    # One per item, in the items' order: the payment recorded, or None where refused.
    payments: list[Payment | None]
    # Item index -> what ``payment_record`` would have raised for it.
    refused: dict[int, DomainError]

    @property
    def recorded(self) -> list[Payment]:
        return [p for p in self.payments if p is not None]


@dataclass(slots=True)
class _Planned:
    index: int
    item: BatchPaymentInput
    customer: Customer
    # The invoices are the attempt's working copies: only their ids and rates are used.
    plan: list[tuple[Invoice, Decimal]]
    to_invoices: Decimal
    to_credit: Decimal
    received_date: date
    rate: Decimal
    # The AR (functional) it takes off, from the working copies before it was applied.
    ar_functional: Decimal


def payments_record_batch(*, actor: Any, items: Sequence[BatchPaymentInput]) -> PaymentBatch:
    """Record many payments in one transaction with what ``payment_record`` writes for each
    in turn (payment, allocations, invoices paid, credit, one ledger entry, history rows),
    in bulk: rows by COPY, invoices and credit balances by one UPDATE each, entries through
    ``journal_post_batch``. Customers, then invoices, are locked in id order and every item
    is checked against them as the items before it left them; an item ``payment_record``
    would refuse (the ledger's refusals included) is left out and reported, not raised."""
    if actor is not None and not actor.has_perm("billing.record_payment"):
        raise PermissionDeniedError("Your role does not allow recording payments.")
    enabled = system_settings().payment_methods
    refused: dict[int, DomainError] = {}
    for n, item in enumerate(items):
        try:
            _check_payment(item.method, item.amount, item.currency, enabled)
            _check_once([a.invoice_id for a in item.allocations])
        except DomainError as exc:
            refused[n] = exc
    payments: list[Payment | None] = [None] * len(items)
    todo = [n for n in range(len(items)) if n not in refused]
    if not todo:
        return PaymentBatch(payments, refused)
    user = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        customers = {
            c.pk: c
            for c in Customer.objects.select_for_update()
            .filter(pk__in={items[n].customer_id for n in todo})
            .order_by("pk")
        }
        invoices = {
            i.pk: i
            for i in Invoice.objects.select_for_update()
            .filter(pk__in={a.invoice_id for n in todo for a in items[n].allocations})
            .order_by("pk")
        }
        accounts = {a.role: a for a in Account.objects.exclude(role=None)}
        rates = _Rates(system_settings().functional_currency)
        pks = _next_ids(Payment, len(todo))
        # A refusal by the ledger leaves its item out and plans the others again: the
        # items after it may now find more due on an invoice they share.
        by_ledger: dict[int, DomainError] = {}
        while True:
            plan_refused: dict[int, DomainError] = {}
            planned = _batch_plan(
                items,
                [n for n in todo if n not in by_ledger],
                customers,
                invoices,
                rates,
                plan_refused,
            )
            new = [
                _new_payment(p, pk, user)
                for p, pk in zip(planned, pks[: len(planned)], strict=True)
            ]
            specs = [
                _entry(payment, p.to_credit, p.ar_functional, rate=p.rate, accounts=accounts)
                for payment, p in zip(new, planned, strict=True)
            ]
            try:
                entries = journal_post_batch(entries=specs, actor=user)
            except DomainError as exc:
                index = exc.details.get("batch_index")
                if index is None:
                    raise
                by_ledger[planned[index].index] = exc
                continue
            break
        refused.update(plan_refused)
        refused.update(by_ledger)
        if planned:
            with events_batch():
                _batch_write(planned, new, entries, customers, invoices, user)
    for p, payment in zip(planned, new, strict=True):
        payments[p.index] = payment
    return PaymentBatch(payments, dict(sorted(refused.items())))


class _Rates:
    """FX rates of one batch, each looked up once (a missing rate refuses its items)."""

    def __init__(self, functional: str) -> None:
        self.functional = functional
        self._found: dict[tuple[str, date], Decimal | DomainError] = {}

    def get(self, currency: str, on_date: date) -> Decimal:
        key = (currency, on_date)
        if key not in self._found:
            try:
                self._found[key] = fx_rate_get(
                    base=currency, quote=self.functional, on_date=on_date
                )
            except DomainError as exc:
                self._found[key] = exc
        found = self._found[key]
        if isinstance(found, DomainError):
            raise found
        return found


def _batch_plan(
    items: Sequence[BatchPaymentInput],
    indexes: list[int],
    customers: dict[int, Customer],
    invoices: dict[int, Invoice],
    rates: _Rates,
    refused: dict[int, DomainError],
) -> list[_Planned]:
    """Each item checked and planned as ``payment_record`` would, after the items before
    it, on working copies of the invoices (the locked rows stay as read)."""
    working = {pk: copy.copy(inv) for pk, inv in invoices.items()}
    with events_muted():  # the working copies' transitions: the real rows report theirs
        return _batch_plan_items(items, indexes, customers, working, rates, refused)


def _batch_plan_items(
    items: Sequence[BatchPaymentInput],
    indexes: list[int],
    customers: dict[int, Customer],
    working: dict[int, Invoice],
    rates: _Rates,
    refused: dict[int, DomainError],
) -> list[_Planned]:
    today = timezone.localdate()
    planned = []
    for n in indexes:
        item = items[n]
        try:
            customer = customers.get(item.customer_id)
            if customer is None:
                raise NotFound(f"No customer {item.customer_id}.")
            plan = _explicit_plan(customer, item.currency, item.amount, item.allocations, working)
            to_invoices = sum((part for _, part in plan), ZERO)
            to_credit = item.amount - to_invoices
            _credit_check(customer, item.currency, to_credit)
            received_date = item.received_date or today
            rate = rates.get(item.currency, received_date)
        except DomainError as exc:
            refused[n] = exc
            continue
        ar_functional = _ar_functional(plan)
        for invoice, part in plan:
            _pay(invoice, part, item.currency)
        planned.append(
            _Planned(
                n, item, customer, plan, to_invoices, to_credit, received_date, rate, ar_functional
            )
        )
    return planned


def _pay(invoice: Invoice, part: Decimal, currency: str) -> None:
    invoice.amount_paid = invoice.amount_paid + Money(part, currency)
    if invoice.amount_due.amount == 0:
        invoice.mark_paid()


def _new_payment(p: _Planned, pk: int, user: Any) -> Payment:
    currency = p.item.currency
    return Payment(
        pk=pk,
        customer=p.customer,
        currency=currency,
        amount=Money(p.item.amount, currency),
        amount_allocated=Money(p.to_invoices, currency),
        method=p.item.method,
        received_date=p.received_date,
        reference=p.item.reference,
        processor=p.item.processor,
        processor_charge_id=p.item.processor_charge_id or None,
        created_by=user,
    )


def _batch_write(
    planned: list[_Planned],
    payments: list[Payment],
    entries: list[Any],
    customers: dict[int, Customer],
    invoices: dict[int, Invoice],
    user: Any,
) -> None:
    """The rows and history ``payment_record`` writes, for every planned item: the payment
    created (pending) then succeeded with its entry, each invoice and credit change as a
    history row of its own."""
    fields, created = db_rows(Payment, payments, add=True)
    history_rows(Payment, fields, created, history_type="+", actor=user)
    for payment, entry in zip(payments, entries, strict=True):
        payment.succeed()
        payment.ledger_entry = entry
    copy_insert(Payment, payments, with_pk=True, history_type="~", actor=user)
    copy_insert(
        PaymentAllocation,
        [
            PaymentAllocation(
                payment=payment,
                invoice_id=invoice.pk,
                currency=p.item.currency,
                amount=Money(part, p.item.currency),
            )
            for payment, p in zip(payments, planned, strict=True)
            for invoice, part in p.plan
        ],
        with_pk=False,
    )
    invoice_rows: list[list[Any]] = []
    paid: dict[int, list[Any]] = {}
    customer_rows: list[list[Any]] = []
    credited: dict[int, list[Any]] = {}
    for p in planned:
        for working, part in p.plan:
            invoice = invoices[working.pk]
            _pay(invoice, part, p.item.currency)
            (row,) = db_rows(Invoice, [invoice], add=False)[1]
            invoice_rows.append(row)
            paid[invoice.pk] = row
        if p.to_credit:
            customer = customers[p.customer.pk]
            customer.credit_balance = customer.credit_balance + Money(p.to_credit, p.item.currency)
            (row,) = db_rows(Customer, [customer], add=False)[1]
            customer_rows.append(row)
            credited[customer.pk] = row
    update_rows(Invoice, ("amount_paid", "status", "closed_at"), list(paid.values()))
    history_rows(
        Invoice, list(Invoice._meta.concrete_fields), invoice_rows, history_type="~", actor=user
    )
    if credited:
        update_rows(Customer, ("credit_balance",), list(credited.values()))
        history_rows(
            Customer,
            list(Customer._meta.concrete_fields),
            customer_rows,
            history_type="~",
            actor=user,
        )


def _next_ids(model: type[Model], count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]
