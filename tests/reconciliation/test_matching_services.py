"""Matching against the database: applying (payments through billing, rule postings, links),
suggestions accepted or rejected, learning, manual matches, undo, idempotent runs, and
refusals that change nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import count

import pytest
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Payment
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import payment_record
from core.exceptions import PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import trial_balance
from core.roles import Role
from reconciliation.enums import MatchStatus, ReconciliationRunStatus, StatementLineStatus
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import (
    BankAccount,
    CounterpartyAlias,
    Match,
    MatchRule,
    ReconciliationRun,
    Statement,
    StatementLine,
)
from reconciliation.services_matching import (
    match_accept,
    match_manual,
    match_reject,
    match_undo,
    reconcile,
    reconciliation_run_execute,
)

D = Decimal
pytestmark = pytest.mark.django_db
_positions = count(1)


@pytest.fixture
def clerk(make_user):
    return make_user(Role.AR_CLERK)


@pytest.fixture
def usd_account(make_bank_account) -> BankAccount:
    return make_bank_account("USD", name="US operating")


@pytest.fixture
def customer(clerk) -> Customer:
    return customer_create(actor=clerk, name="Acme Corp", email="ap@acme.example", currency="USD")


@pytest.fixture
def make_invoice(clerk, customer, django_capture_on_commit_callbacks):
    def make(amount: str, *, on: Customer | None = None) -> Invoice:
        with django_capture_on_commit_callbacks(execute=False):
            return invoice_create(
                actor=clerk,
                customer_id=(on or customer).pk,
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

    return make


@pytest.fixture
def make_line(usd_account):
    statement = Statement.objects.create(
        bank_account=usd_account,
        format="csv",
        currency="USD",
        control="none",
        file_sha256="a" * 64,
        fingerprint="a" * 64,
    )

    def make(amount: str, *, booking_date: date | None = None, **kw) -> StatementLine:
        n = next(_positions)
        return StatementLine.objects.create(
            statement=statement,
            bank_account=usd_account,
            position=n,
            booking_date=booking_date or date.today(),  # noqa: DTZ011 (invoices are due today+)
            amount=D(amount),
            currency="USD",
            fingerprint=f"{n:064d}",
            **kw,
        )

    return make


def state() -> dict:
    """The ledger's trial balance (net per account and currency, functional too) and every
    invoice's amount due and status."""
    return {
        "trial_balance": sorted(
            (
                row.account.code,
                row.currency,
                row.debit - row.credit,
                row.functional_debit - row.functional_credit,
            )
            for row in trial_balance().rows
            if row.debit != row.credit or row.functional_debit != row.functional_credit
        ),
        "invoices": sorted((i.pk, i.amount_due.amount, i.status) for i in Invoice.objects.all()),
        "entries": JournalEntry.objects.count(),
    }


def statuses(*lines: StatementLine) -> list[str]:
    return [StatementLine.objects.get(pk=x.pk).status for x in lines]


def test_reference_match_is_applied_as_a_payment_through_billing(
    usd_account, make_invoice, make_line
) -> None:
    # given
    invoice = make_invoice("120.00")
    bank_line = make_line("120.00", description=f"Payment {invoice.number}", bank_reference="BR-1")
    # when
    result = reconcile(bank_account_id=usd_account.pk)
    # then
    assert (result.auto_matched, result.suggested, result.unmatched) == (1, 0, 0)
    match = Match.objects.get()
    invoice.refresh_from_db()
    payment = Payment.objects.get()
    assert (match.status, match.payment_id, match.rule) == (
        MatchStatus.APPLIED,
        payment.pk,
        "reference",
    )
    assert (payment.amount, payment.reference, payment.method, payment.received_date) == (
        Money("120.00", "USD"),
        "BR-1",
        "wire_transfer",
        bank_line.booking_date,
    )
    assert (invoice.status, invoice.amount_due) == (InvoiceStatus.PAID, Money(0, "USD"))
    assert list(match.journal_entries.all()) == [payment.ledger_entry]
    assert statuses(bank_line) == [StatementLineStatus.MATCHED]


def test_running_twice_matches_no_line_twice(usd_account, make_invoice, make_line) -> None:
    invoice = make_invoice("80.00")
    make_line("80.00", description=invoice.number)
    make_line("55.00", counterparty_name="Nobody")
    reconcile(bank_account_id=usd_account.pk)
    before = state()
    # when
    again = reconcile(bank_account_id=usd_account.pk)
    # then
    assert (again.auto_matched, again.suggested, again.unmatched) == (0, 0, 1)
    assert (Match.objects.count(), Payment.objects.count()) == (1, 1)
    assert state() == before


def test_suggestion_waits_then_accept_applies_and_teaches(
    usd_account, make_invoice, make_line, clerk, customer
) -> None:
    # given a line whose counterparty name is only similar, and a second one later
    invoice = make_invoice("310.00")
    first = make_line("310.00", counterparty_name="ACMEE")
    reconcile(bank_account_id=usd_account.pk)
    match = Match.objects.get()
    assert (match.status, match.rule) == (MatchStatus.PROPOSED, "fuzzy_name")
    assert match.confidence < D("0.95")
    assert statuses(first) == [StatementLineStatus.SUGGESTED]
    assert Payment.objects.count() == 0
    # when a clerk accepts it
    match_accept(match_id=match.pk, actor=clerk)
    # then it is applied and the counterparty is learned
    match.refresh_from_db()
    invoice.refresh_from_db()
    assert (match.status, match.applied_by, invoice.status) == (
        MatchStatus.APPLIED,
        clerk,
        InvoiceStatus.PAID,
    )
    alias = CounterpartyAlias.objects.get()
    assert (alias.key, alias.customer_id, alias.taught_by, alias.confirmations) == (
        "ACMEE",
        customer.pk,
        clerk,
        1,
    )
    # and the next line from them is matched with a higher confidence, saying why
    second = make_invoice("75.00")
    make_line("75.00", counterparty_name="Acmee Inc.", booking_date=second.due_date)
    reconcile(bank_account_id=usd_account.pk)
    learned = Match.objects.exclude(pk=match.pk).get()
    assert learned.confidence == D("0.97")
    assert learned.status == MatchStatus.APPLIED
    assert f"learned from {clerk.username}'s match of " in learned.reason


def test_reject_unmatches_and_is_not_proposed_again(
    usd_account, make_invoice, make_line, clerk
) -> None:
    make_invoice("310.00")
    bank_line = make_line("310.00", counterparty_name="ACMEE")
    reconcile(bank_account_id=usd_account.pk)
    match = Match.objects.get()
    # when
    match_reject(match_id=match.pk, actor=clerk, reason="not theirs")
    again = reconcile(bank_account_id=usd_account.pk)
    # then
    match.refresh_from_db()
    assert (match.status, match.rejected_by) == (MatchStatus.REJECTED, clerk)
    assert statuses(bank_line) == [StatementLineStatus.UNMATCHED]
    assert (again.suggested, Match.objects.count()) == (0, 1)


def test_rule_posts_to_its_account_and_undo_reverses_it(
    usd_account, make_line, finance_admin, clerk
) -> None:
    # given a bank-fee rule
    fees = Account.objects.get(role=AccountRole.BANK_FEES)
    MatchRule.objects.create(
        name="Bank fees", priority=1, text_contains="BANK FEE", sign="debit", account=fees
    )
    bank_line = make_line("-12.50", description="Bank fee March")
    before = state()
    # when
    reconcile(bank_account_id=usd_account.pk)
    # then Dr bank fees / Cr the bank's cash account
    match = Match.objects.get()
    (entry,) = match.journal_entries.all()
    assert sorted(
        (line.account_id, line.debit, line.credit) for line in entry.lines.all()
    ) == sorted([(fees.pk, D("12.50"), D(0)), (usd_account.ledger_account_id, D(0), D("12.50"))])
    assert entry.idempotency_key == f"reconciliation.match:{match.pk}:line:{bank_line.pk}"
    assert statuses(bank_line) == [StatementLineStatus.MATCHED]
    # when undone
    match_undo(match_id=match.pk, actor=clerk, reason="not a fee")
    # then the ledger nets back to where it was and the line is unmatched
    match.refresh_from_db()
    after = state()
    assert match.status == MatchStatus.UNDONE
    assert statuses(bank_line) == [StatementLineStatus.UNMATCHED]
    assert after["invoices"] == before["invoices"]
    assert after["entries"] == before["entries"] + 2
    assert after["trial_balance"] == before["trial_balance"]


def test_manual_match_to_several_invoices_and_refusals_change_nothing(
    usd_account, make_invoice, make_line, clerk, make_user
) -> None:
    # given
    a, b = make_invoice("100.00"), make_invoice("50.00")
    bank_line = make_line(
        "150.00", counterparty_name="A Stranger", counterparty_account="DE12 3456"
    )
    before = state()
    # refused: an auditor may not match
    with pytest.raises(PermissionDeniedError):
        match_manual(actor=make_user(Role.AUDITOR), line_ids=[bank_line.pk], invoice_ids=[a.pk])
    # refused: two kinds of target
    with pytest.raises(ReconciliationError):
        match_manual(actor=clerk, line_ids=[bank_line.pk], invoice_ids=[a.pk], payment_id=1)
    assert state() == before
    assert (Match.objects.count(), CounterpartyAlias.objects.count()) == (0, 0)
    # when
    match = match_manual(actor=clerk, line_ids=[bank_line.pk], invoice_ids=[a.pk, b.pk])
    # then
    a.refresh_from_db()
    b.refresh_from_db()
    assert (match.status, match.confidence, a.status, b.status) == (
        MatchStatus.APPLIED,
        D(1),
        InvoiceStatus.PAID,
        InvoiceStatus.PAID,
    )
    assert sorted(CounterpartyAlias.objects.values_list("kind", "key")) == [
        ("account", "DE123456"),
        ("name", "A STRANGER"),
    ]
    # a matched line cannot be matched again
    with pytest.raises(ReconciliationError) as refused:
        match_manual(actor=clerk, line_ids=[bank_line.pk], invoice_ids=[a.pk])
    assert refused.value.code == "line_not_unmatched"


def test_existing_payment_is_linked_and_undo_only_unlinks(
    usd_account, make_invoice, make_line, clerk, customer
) -> None:
    invoice = make_invoice("60.00")
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("60.00"), currency="USD",
        method="ach", reference="CHK-99812",
    )  # fmt: skip
    bank_line = make_line("60.00", description="deposit CHK-99812")
    entries = JournalEntry.objects.count()
    reconcile(bank_account_id=usd_account.pk)
    match = Match.objects.get()
    assert (match.status, match.payment_id, JournalEntry.objects.count()) == (
        MatchStatus.APPLIED,
        None,
        entries,
    )
    assert match.targets.get().payment_id == payment.pk
    match_undo(match_id=match.pk, actor=clerk, reason="wrong deposit")
    invoice.refresh_from_db()
    assert (invoice.status, JournalEntry.objects.count()) == (InvoiceStatus.PAID, entries)
    assert statuses(bank_line) == [StatementLineStatus.UNMATCHED]


def test_undo_restores_ledger_and_open_items_exactly(
    usd_account, make_invoice, make_line, clerk, customer
) -> None:
    # given invoices, one paid in full by reference, one by a line paying more (credit left)
    a, b, c = make_invoice("40.00"), make_invoice("70.00"), make_invoice("15.00")
    first = make_line("40.00", description=a.number)
    second = make_line("100.00", description=b.number)
    before = state()
    credit_before = Customer.objects.get(pk=customer.pk).credit_balance
    reconcile(bank_account_id=usd_account.pk)
    matches = list(Match.objects.order_by("pk"))
    assert [m.status for m in matches] == [MatchStatus.APPLIED, MatchStatus.PROPOSED]
    # apply the over-payment suggestion by hand so both recorded a payment
    for m in matches:
        if m.status == MatchStatus.PROPOSED:
            match_accept(match_id=m.pk, actor=clerk)
    assert Payment.objects.count() == 2
    assert state() != before
    # when both are undone
    for m in matches:
        match_undo(match_id=m.pk, actor=clerk, reason="matched to the wrong customer")
    # then the trial balance and every invoice's amount due are as before
    after = state()
    assert after["trial_balance"] == before["trial_balance"]
    assert after["invoices"] == before["invoices"]
    assert Customer.objects.get(pk=customer.pk).credit_balance == credit_before
    assert statuses(first, second) == [StatementLineStatus.UNMATCHED] * 2
    assert sorted(Payment.objects.values_list("failure_code", "amount_allocated")) == [
        ("reversed", D(0)),
        ("reversed", D(0)),
    ]
    assert c.pk in {pk for pk, *_ in after["invoices"]}
    # undoing twice is refused and changes nothing
    with pytest.raises(ReconciliationError) as refused:
        match_undo(match_id=matches[0].pk, actor=clerk, reason="again")
    assert refused.value.code == "match_not_applied"
    assert state() == after
    # and the lines can be matched again
    again = reconcile(bank_account_id=usd_account.pk)
    assert again.auto_matched + again.suggested == 2


def test_decisions_need_the_role(usd_account, make_invoice, make_line, make_user) -> None:
    make_invoice("310.00")
    make_line("310.00", counterparty_name="ACMEE")
    reconcile(bank_account_id=usd_account.pk)
    match = Match.objects.get()
    for role in (Role.AUDITOR, Role.APPROVER, Role.INTEGRATION):
        with pytest.raises(PermissionDeniedError):
            match_accept(match_id=match.pk, actor=make_user(role))
        with pytest.raises(PermissionDeniedError):
            match_reject(match_id=match.pk, actor=make_user(role))
    match.refresh_from_db()
    assert (match.status, Payment.objects.count()) == (MatchStatus.PROPOSED, 0)


def test_run_is_idempotent_and_records_failures(
    usd_account, make_invoice, make_line, monkeypatch
) -> None:
    invoice = make_invoice("80.00")
    make_line("80.00", description=invoice.number)
    run = ReconciliationRun.objects.create(bank_account=usd_account)
    # when executed, then delivered again
    first = reconciliation_run_execute(run_id=run.pk)
    again = reconciliation_run_execute(run_id=run.pk)
    # then the second delivery does nothing new
    assert (first.status, first.auto_matched, again.attempts) == (
        ReconciliationRunStatus.DONE,
        1,
        1,
    )
    assert (Match.objects.count(), Payment.objects.count()) == (1, 1)
    # a failing run is recorded as failed with its error
    failing = ReconciliationRun.objects.create(bank_account=usd_account)

    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("reconciliation.services_matching.reconcile", boom)
    with pytest.raises(RuntimeError):
        reconciliation_run_execute(run_id=failing.pk)
    failing.refresh_from_db()
    assert (failing.status, failing.error) == (
        ReconciliationRunStatus.FAILED,
        "RuntimeError: database went away",
    )
