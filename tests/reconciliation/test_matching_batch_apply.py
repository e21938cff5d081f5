"""``reconcile`` applies its automatic matches in chunks (payments through billing's batch,
rule postings through the ledger's batch, links by updates) with the same results, match by
match, as ``match_apply`` one by one: payments, allocations, ledger entries, match and line
states, audit events. Refusals leave their match a suggestion; a signed-off period's lines
are not applied; a second run applies nothing twice; the AR sub-ledger agrees."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Payment, PaymentAllocation
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import trial_balance
from core.roles import Role
from reconciliation import services_matching
from reconciliation.enums import AuditAction, MatchStatus, SignOffStatus, StatementLineStatus
from reconciliation.models import (
    AuditEvent,
    BankAccount,
    Match,
    MatchRule,
    SignOff,
    Statement,
    StatementLine,
)
from reconciliation.services_matching import ReconcileResult, reconcile

D = Decimal
pytestmark = pytest.mark.django_db
_positions = count(1)
NAMES = (
    "Alder Freight",
    "Birchwood Dental",
    "Cobalt Analytics",
    "Dunmore Bakery",
    "Elmstead Clinic",
    "Fenwick Tooling",
    "Garnet Studios",
    "Hollis Marine",
)


class Rollback(Exception):
    """Raised to roll a savepoint back after taking a picture of what it wrote."""


@pytest.fixture
def clerk(make_user):
    return make_user(Role.AR_CLERK)


@pytest.fixture
def account(make_bank_account) -> BankAccount:
    return make_bank_account("USD", name="US operating")


@pytest.fixture
def make_line(account):
    statement = Statement.objects.create(
        bank_account=account,
        format="csv",
        currency="USD",
        control="none",
        file_sha256="b" * 64,
        fingerprint="b" * 64,
    )

    def make(amount: D | str, *, booking_date: date | None = None, **kw) -> StatementLine:
        n = next(_positions)
        return StatementLine.objects.create(
            statement=statement,
            bank_account=account,
            position=n,
            booking_date=booking_date or timezone.localdate(),
            amount=D(amount),
            currency="USD",
            fingerprint=f"{n:064d}",
            **kw,
        )

    return make


@pytest.fixture
def world(clerk, make_line, django_capture_on_commit_callbacks) -> dict[str, Any]:
    """A few hundred lines: most pay an invoice by its number (some with more, some with
    less), bank fees a rule posts, deposits of payments already recorded, and strangers."""
    customers = [
        customer_create(actor=clerk, name=name, email=f"c{n}@x.example", currency="USD")
        for n, name in enumerate(NAMES)
    ]
    invoices = []
    for n in range(150):
        amount = D(1000 + n * 37) / 100
        with django_capture_on_commit_callbacks(execute=False):
            invoices.append(
                invoice_create(
                    actor=clerk,
                    customer_id=customers[n % len(customers)].pk,
                    lines=[
                        LineInput(
                            description="Service", quantity=D(1), unit_price=amount, tax_rate=D(0)
                        )
                    ],
                    issue=True,
                )
            )
    lines = []
    for n, invoice in enumerate(invoices):
        due = invoice.amount_due.amount
        paid = due + D(5) if n % 25 == 3 else due - D(1) if n % 25 == 7 else due
        lines.append(
            make_line(
                paid,
                description=f"PAYMENT {invoice.number} THANK YOU"
                + (" SEPA CREDIT" if n % 2 else ""),
                counterparty_name=NAMES[n % len(NAMES)].upper(),
                bank_reference=f"BR{n:06d}" if n % 3 else "",
                end_to_end_id=f"E2E{n:06d}" if n % 3 == 1 else "",
            )
        )
    fees = Account.objects.get(role=AccountRole.BANK_FEES)
    MatchRule.objects.create(
        name="Bank fees", priority=1, text_contains="BANK FEE", sign="debit", account=fees
    )
    for n in range(40):
        lines.append(make_line(-D(250 + n) / 100, description=f"BANK FEE {n}"))
    # Deposits of payments recorded before (no invoices left to pay: all become credit).
    for n in range(30):
        customer = customers[n % len(customers)]
        payment_record(
            actor=clerk,
            customer_id=customer.pk,
            amount=D(7000 + n) / 100,
            currency="USD",
            method="ach",
            reference=f"CHK-{n:05d}",
            allocations=[],
        )
        lines.append(make_line(D(7000 + n) / 100, description=f"deposit CHK-{n:05d}"))
    for n in range(30):
        lines.append(make_line(D(33333 + n * 11) / 100, counterparty_name=f"ZZ STRANGER {n}"))
    return {"customers": customers, "invoices": invoices, "lines": lines}


def picture(result: ReconcileResult) -> dict[str, Any]:
    """What the run wrote, per match (keyed by its lines), with the ids of what it created
    (matches, payments, entries) left out."""
    matches = {}
    for match in Match.objects.prefetch_related("lines", "targets", "journal_entries__lines"):
        key = tuple(sorted(ml.line_id for ml in match.lines.all()))
        payment = Payment.objects.filter(pk=match.payment_id).first()

        def plain(text: str, payment: Payment | None = payment, match: Match = match) -> str:
            text = text.replace(f"reconciliation.match:{match.pk}", "reconciliation.match:#")
            if payment is None:
                return text
            text = text.replace(f"billing.payment:{payment.pk}", "billing.payment:#")
            return text.replace(f"Payment {payment.pk} ", "Payment # ")

        entries = sorted(
            (
                e.entry_date,
                plain(e.description),
                plain(e.source),
                plain(e.idempotency_key or ""),
                sorted(
                    (
                        *(x.account_id, x.currency, x.debit, x.credit),
                        *(x.functional_debit, x.functional_credit, x.memo),
                    )
                    for x in e.lines.all()
                ),
            )
            for e in match.journal_entries.all()
        )
        if payment is not None:
            assert payment.ledger_entry_id in {e.pk for e in match.journal_entries.all()}
        events = [
            (e.action, e.actor_id, e.bank_account_id, e.reason, e.details | {"payment": None})
            for e in AuditEvent.objects.filter(subject=f"match:{match.pk}").order_by("pk")
        ]
        assert all(
            e.details["payment"] == match.payment_id
            for e in AuditEvent.objects.filter(subject=f"match:{match.pk}")
        )
        matches[key] = {
            "match": (
                match.status,
                match.rule,
                match.confidence,
                match.amount,
                match.reason,
                match.applied_at is not None,
                match.applied_by_id,
            ),
            "targets": sorted(
                (t.kind, t.invoice_id, t.payment_id, t.account_id, t.amount)
                for t in match.targets.all()
            ),
            "payment": None
            if payment is None
            else (
                payment.customer_id,
                payment.amount,
                payment.amount_allocated,
                payment.method,
                payment.status,
                payment.received_date,
                payment.reference,
                sorted(
                    PaymentAllocation.objects.filter(payment=payment).values_list(
                        "invoice_id", "amount"
                    )
                ),
                list(payment.history.order_by("history_id").values_list("history_type", "status")),
            ),
            "entries": entries,
            "events": events,
            "history": list(
                match.history.order_by("history_id").values_list("history_type", "status")
            ),
            "lines": sorted(StatementLine.objects.filter(pk__in=key).values_list("pk", "status")),
        }
    return {
        "result": result,
        "matches": matches,
        "invoices": sorted(
            (pk, paid, status, closed is None)
            for pk, paid, status, closed in Invoice.objects.values_list(
                "pk", "amount_paid", "status", "closed_at"
            )
        ),
        "credit": sorted(Customer.objects.values_list("pk", "credit_balance")),
        "counts": (
            Payment.objects.count(),
            JournalEntry.objects.count(),
            AuditEvent.objects.count(),
            Invoice.history.count(),
            Customer.history.count(),
        ),
        "unmatched": sorted(
            StatementLine.objects.filter(status=StatementLineStatus.UNMATCHED).values_list(
                "pk", flat=True
            )
        ),
    }


def both_ways(account: BankAccount, monkeypatch, **kw) -> tuple[dict, dict]:
    """The run applied one by one (``match_apply`` for every match, as before), rolled back,
    then applied in chunks: a picture of each."""
    with monkeypatch.context() as patched:
        patched.setattr(services_matching, "_apply_chunk", lambda ids: (0, 0, list(ids)))
        try:
            with transaction.atomic():
                before = picture(reconcile(bank_account_id=account.pk, **kw))
                books_agree()
                raise Rollback
        except Rollback:
            pass
    # Chunks of 64: several transactions in one run.
    monkeypatch.setattr(services_matching, "APPLY_CHUNK", 64)
    after = picture(reconcile(bank_account_id=account.pk, **kw))
    books_agree()
    return before, after


def same(got: dict, expected: dict) -> None:
    """Match by match first: a difference names its lines."""
    assert got["result"] == expected["result"]
    assert sorted(got["matches"]) == sorted(expected["matches"])
    for key, value in expected["matches"].items():
        assert (key, got["matches"][key]) == (key, value)
    assert got == expected


def books_agree() -> None:
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_chunks_apply_exactly_what_match_apply_applies_one_by_one(
    account, world, monkeypatch
) -> None:
    # when the same run is applied one by one, then (on the same data) in chunks
    before, after = both_ways(account, monkeypatch)
    # then every match, payment, entry, event and line is the same
    same(after, before)
    result = after["result"]
    assert result.auto_matched > 150
    assert result.failed_to_apply == 0
    rules = {value["match"][1] for value in after["matches"].values()}
    assert rules == {"reference", "user_rule"}
    applied = [v for v in after["matches"].values() if v["match"][0] == MatchStatus.APPLIED]
    assert {t[0] for v in applied for t in v["targets"]} == {"invoice", "account", "payment"}
    assert all(v["events"][0][0] == AuditAction.MATCH_APPLIED for v in applied)
    assert sum(1 for v in applied if v["payment"]) == sum(
        1 for v in applied if v["targets"][0][0] == "invoice"
    )


def test_running_again_applies_nothing_twice(account, world) -> None:
    first = reconcile(bank_account_id=account.pk)
    counts = (
        Payment.objects.count(),
        JournalEntry.objects.count(),
        AuditEvent.objects.count(),
        Match.objects.count(),
    )
    # when
    again = reconcile(bank_account_id=account.pk)
    # then
    assert first.auto_matched > 150
    assert (again.auto_matched, again.suggested, again.failed_to_apply) == (0, 0, 0)
    assert again.unmatched == first.unmatched
    assert (
        Payment.objects.count(),
        JournalEntry.objects.count(),
        AuditEvent.objects.count(),
        Match.objects.count(),
    ) == counts
    books_agree()


def test_a_match_refused_in_the_batch_stays_proposed_and_the_others_apply(
    account, world, clerk, monkeypatch
) -> None:
    # given an invoice paid by hand between the proposal and its application
    invoice = world["invoices"][0]
    store = services_matching.proposals_store

    def store_then_pay(**kw: Any) -> list[Match]:
        stored = store(**kw)
        payment_record(
            actor=clerk,
            customer_id=invoice.customer_id,
            amount=invoice.amount_due.amount,
            currency="USD",
            method="ach",
            allocations=[AllocationInput(invoice.pk, invoice.amount_due.amount)],
        )
        return stored

    monkeypatch.setattr(services_matching, "proposals_store", store_then_pay)
    payments = Payment.objects.count()
    # when
    result = reconcile(bank_account_id=account.pk)
    # then its match waits as a suggestion, with its line suggested and nothing posted
    refused = Match.objects.get(lines__line=world["lines"][0])
    assert (refused.status, refused.payment_id) == (MatchStatus.PROPOSED, None)
    assert not refused.journal_entries.exists()
    assert not AuditEvent.objects.filter(subject=f"match:{refused.pk}").exists()
    assert StatementLine.objects.get(pk=world["lines"][0].pk).status == (
        StatementLineStatus.SUGGESTED
    )
    assert result.failed_to_apply == 1
    # and every other automatic match is applied
    applied = Match.objects.filter(status=MatchStatus.APPLIED)
    assert applied.count() == result.auto_matched > 150
    assert Payment.objects.count() == payments + 1 + applied.filter(payment__isnull=False).count()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, invoice.total)
    books_agree()


def test_a_chunk_that_fails_as_a_whole_is_applied_one_by_one(account, world, monkeypatch) -> None:
    # given a bulk path that fails (a database error in the middle of a chunk)
    from django.db import DatabaseError

    def broken(done: list) -> None:
        raise DatabaseError("simulated")

    monkeypatch.setattr(services_matching, "_mark_applied", broken)
    calls = []
    real_apply = services_matching.match_apply

    def counting(**kw: Any) -> Match:
        calls.append(kw["match_id"])
        return real_apply(**kw)

    monkeypatch.setattr(services_matching, "match_apply", counting)
    # when
    result = reconcile(bank_account_id=account.pk)
    # then every automatic match went through match_apply and is applied once
    assert len(calls) == result.auto_matched + result.failed_to_apply > 150
    assert Match.objects.filter(status=MatchStatus.APPLIED).count() == result.auto_matched
    books_agree()


def test_lines_of_a_signed_off_period_are_not_applied(
    account, clerk, make_line, django_capture_on_commit_callbacks, finance_admin
) -> None:
    # given October signed off, and lines from October and from today paying invoices
    customer = customer_create(
        actor=clerk, name="Alder Freight", email="a@x.example", currency="USD"
    )
    invoices = []
    for amount in ("120.00", "80.00", "55.00"):
        with django_capture_on_commit_callbacks(execute=False):
            invoices.append(
                invoice_create(
                    actor=clerk,
                    customer_id=customer.pk,
                    lines=[
                        LineInput(
                            description="Service",
                            quantity=D(1),
                            unit_price=D(amount),
                            tax_rate=D(0),
                        )
                    ],
                    issue=True,
                )
            )
    end = timezone.localdate().replace(day=1) - timedelta(days=1)
    old = [
        make_line(inv.total.amount, description=f"PAYMENT {inv.number}", booking_date=end)
        for inv in invoices[:2]
    ]
    new = make_line(invoices[2].total.amount, description=f"PAYMENT {invoices[2].number}")
    SignOff.objects.create(
        bank_account=account,
        period_start=end.replace(day=1),
        period_end=end,
        currency="USD",
        statement_balance=D(0),
        book_balance=D(0),
        status=SignOffStatus.SIGNED,
        signed_by=finance_admin,
    )
    # when
    result = reconcile(bank_account_id=account.pk)
    # then the old lines' matches wait as suggestions and the new one is applied
    assert (result.auto_matched, result.failed_to_apply, result.suggested) == (1, 2, 2)
    statuses = dict(Match.objects.values_list("lines__line_id", "status"))
    assert statuses == {
        old[0].pk: MatchStatus.PROPOSED,
        old[1].pk: MatchStatus.PROPOSED,
        new.pk: MatchStatus.APPLIED,
    }
    assert [StatementLine.objects.get(pk=x.pk).status for x in (*old, new)] == [
        StatementLineStatus.SUGGESTED,
        StatementLineStatus.SUGGESTED,
        StatementLineStatus.MATCHED,
    ]
    assert Payment.objects.count() == 1
    assert Invoice.objects.get(pk=invoices[0].pk).amount_paid == Money(0, "USD")
    books_agree()


def test_reasons_stay_each_events_own(account, world) -> None:
    reconcile(bank_account_id=account.pk)
    for match in Match.objects.filter(status=MatchStatus.APPLIED)[:50]:
        (event,) = AuditEvent.objects.filter(subject=f"match:{match.pk}")
        assert event.reason == match.reason
        assert re.fullmatch(r"match:\d+", event.subject)
