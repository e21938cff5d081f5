"""Stripe payouts imported, checked and reconciled against their bank deposit: one entry
(Dr bank, Dr processor fees / Cr processor clearing) that brings the clearing account of the
payout's card payments back to zero; exceptions for payouts that do not add up; the matching
engine's payout grouping; undo; the API and its permissions; the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from itertools import count

import pytest
from django.utils import timezone

from billing.checks import ar_subledger_check
from billing.models import Customer, Invoice, Payment
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from billing.services.refunds import refund_issue
from core.exceptions import PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.selectors import account_balances, trial_balance
from core.roles import Role
from reconciliation import matching
from reconciliation.enums import (
    AuditAction,
    ExceptionKind,
    MatchStatus,
    PayoutStatus,
    StatementLineStatus,
)
from reconciliation.models import (
    AuditEvent,
    BankAccount,
    Match,
    Payout,
    PayoutItem,
    ReconciliationException,
    Statement,
    StatementLine,
)
from reconciliation.payouts.stripe_payouts import StripeConfig
from reconciliation.services_matching import match_undo, reconcile
from reconciliation.services_payouts import (
    PayoutConflict,
    PayoutRefused,
    payout_reconcile,
    payouts_import,
    settlement_amounts,
)
from tests.reconciliation.fakes.stripe_payouts_server import (
    API_KEY,
    FakeStripePayouts,
    balance_transaction,
    payout_object,
    running_fake_stripe_payouts,
)

D = Decimal
pytestmark = pytest.mark.django_db
_positions = count(1)
TODAY = dt.date.today()  # noqa: DTZ011 (payments and lines are dated today)
ARRIVAL = int(dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC).timestamp())
PAYOUT_ID = "po_1Test0000Payout"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeStripePayouts]:
    with running_fake_stripe_payouts() as fake:
        yield fake


@pytest.fixture
def stripe_settings(settings, fake):
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return settings


def config(fake: FakeStripePayouts) -> StripeConfig:
    return StripeConfig(
        api_key=API_KEY, api_base=fake.url, timeout_seconds=5.0, max_network_retries=0
    )


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
def make_line(usd_account):
    statement = Statement.objects.create(
        bank_account=usd_account,
        format="csv",
        currency="USD",
        control="none",
        file_sha256="b" * 64,
        fingerprint="b" * 64,
    )

    def make(amount: str, *, booking_date: dt.date | None = None, **kw) -> StatementLine:
        n = next(_positions)
        return StatementLine.objects.create(
            statement=statement,
            bank_account=usd_account,
            position=n,
            booking_date=booking_date or TODAY,
            amount=D(amount),
            currency="USD",
            fingerprint=f"{n:064d}",
            **kw,
        )

    return make


def _invoice(clerk, customer: Customer, amount: str, capture) -> Invoice:
    with capture(execute=False):
        return invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            lines=[
                LineInput(description="Service", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
            ],
            issue=True,
        )


def card_payment(customer: Customer, invoice: Invoice, charge_id: str) -> Payment:
    """A card payment as billing's Stripe path records it (Dr processor clearing / Cr AR)."""
    return payment_record(
        actor=None,
        customer_id=customer.pk,
        amount=invoice.total.amount,
        currency="USD",
        method="credit_card",
        reference=f"Stripe pi_{charge_id[3:]}",
        allocations=[AllocationInput(invoice.pk, invoice.total.amount)],
        processor="stripe",
        processor_charge_id=charge_id,
    )


def charge_source(charge_id: str, amount: int) -> dict:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "currency": "usd",
        "customer": "cus_Acme0001",
        "payment_intent": f"pi_{charge_id[3:]}",
        "status": "succeeded",
    }


@pytest.fixture
def paid(clerk, finance_admin, customer, django_capture_on_commit_callbacks):
    """Three invoices paid by card (100.00, 25.00, 50.00) and 15.00 of the first refunded."""
    capture = django_capture_on_commit_callbacks
    invoices = [_invoice(clerk, customer, a, capture) for a in ("100.00", "25.00", "50.00")]
    payments = [
        card_payment(customer, inv, f"ch_A00{n}") for n, inv in enumerate(invoices, start=1)
    ]
    refund = refund_issue(
        actor=finance_admin,
        customer_id=customer.pk,
        amount=D("15.00"),
        reason="Partly unhappy",
        payment_id=payments[0].pk,
        processor_refund_id="re_A001",
    )
    return {"invoices": invoices, "payments": payments, "refund": refund}


def serve_payout(
    fake: FakeStripePayouts,
    *,
    payout_id: str = PAYOUT_ID,
    amount: int = 15402,
    status: str = "paid",
    arrival: int = ARRIVAL,
    unknown_charge: bool = False,
) -> None:
    """The payout of ``paid``: charges 175.00 with fees 5.98, the 15.00 refund; net 154.02."""
    fake.add_source(
        charge_source("ch_A001", 10000),
        charge_source("ch_A002", 2500),
        charge_source("ch_A003", 5000),
        {
            "id": "re_A001",
            "object": "refund",
            "amount": 1500,
            "charge": "ch_A001",
            "currency": "usd",
            "status": "succeeded",
        },
    )
    rows = [
        balance_transaction("txn_c1", "charge", 10000, 320, source="ch_A001"),
        balance_transaction("txn_c2", "charge", 2500, 103, source="ch_A002"),
        balance_transaction("txn_c3", "charge", 5000, 175, source="ch_A003"),
        balance_transaction("txn_r1", "refund", -1500, 0, source="re_A001"),
    ]
    if unknown_charge:
        fake.add_source(charge_source("ch_Z999", 1000))
        rows.append(balance_transaction("txn_c9", "charge", 1000, 59, source="ch_Z999"))
    fake.add_payout(payout_object(payout_id, amount, arrival_date=arrival, status=status), rows)


def account(role: str) -> Account:
    return Account.objects.get(role=role)


def balance(role_or_account: str | Account) -> Decimal:
    acct = role_or_account if isinstance(role_or_account, Account) else account(role_or_account)
    found = account_balances(account=acct).get("USD")
    return found.balance if found else D(0)


def ledger_state() -> list[tuple]:
    return sorted(
        (row.account.code, row.currency, row.debit - row.credit)
        for row in trial_balance().rows
        if row.debit != row.credit
    )


# --- the must-have -----------------------------------------------------------------------------


def test_stripe_payout_with_fees_and_a_refund_reconciles_to_the_penny(
    fake, paid, usd_account, make_line, clerk
) -> None:
    # given: billing put 175.00 of card payments in clearing and took 15.00 back out
    serve_payout(fake)
    clearing_before = balance(AccountRole.PROCESSOR_CLEARING)
    assert clearing_before == D("160.00")
    cash_before = balance(usd_account.ledger_account)
    fees_before = balance(AccountRole.PROCESSOR_FEES)
    result = payouts_import(actor=clerk, config=config(fake))
    deposit = make_line("154.02", description=f"STRIPE TRANSFER {PAYOUT_ID}")

    # when
    payout = payout_reconcile(payout_id=Payout.objects.get().pk, line_id=deposit.pk, actor=clerk)

    # then: imported with its four items linked to billing's payments
    assert (result.fetched, result.created, result.exceptions) == (1, 1, 0)
    items = list(PayoutItem.objects.filter(payout=payout).order_by("balance_transaction_id"))
    assert [(i.balance_transaction_id, i.category, i.amount, i.fee, i.net) for i in items] == [
        ("txn_c1", "charge", D("100.00"), D("3.20"), D("96.80")),
        ("txn_c2", "charge", D("25.00"), D("1.03"), D("23.97")),
        ("txn_c3", "charge", D("50.00"), D("1.75"), D("48.25")),
        ("txn_r1", "refund", D("-15.00"), D("0.00"), D("-15.00")),
    ]
    payments = paid["payments"]
    assert [i.payment_id for i in items] == [p.pk for p in payments] + [payments[0].pk]
    assert (payout.charges, payout.refunds, payout.fees, payout.amount) == (
        D("175.00"),
        D("-15.00"),
        D("5.98"),
        D("154.02"),
    )
    # one balanced entry dated the deposit's booking date
    entry = JournalEntry.objects.get(pk=payout.journal_entry_id)
    assert entry.entry_date == deposit.booking_date
    assert sorted(
        (line.account.role or "bank", line.debit, line.credit)
        for line in JournalLine.objects.filter(entry=entry).select_related("account")
    ) == sorted(
        [
            (usd_account.ledger_account.role or "bank", D("154.02"), D(0)),
            (AccountRole.PROCESSOR_FEES, D("5.98"), D(0)),
            (AccountRole.PROCESSOR_CLEARING, D(0), D("160.00")),
        ]
    )
    assert balance(usd_account.ledger_account) - cash_before == D("154.02")
    assert balance(AccountRole.PROCESSOR_FEES) - fees_before == D("5.98")
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)
    tb = trial_balance()
    assert sum((r.debit - r.credit for r in tb.rows), D(0)) == D(0)
    assert ar_subledger_check() == []
    # the payout and the line are reconciled through an applied match
    assert payout.status == PayoutStatus.RECONCILED
    assert payout.statement_line_id == deposit.pk
    assert payout.reconciled_by == clerk
    deposit.refresh_from_db()
    assert deposit.status == StatementLineStatus.MATCHED
    match = Match.objects.get(lines__line=deposit)
    assert match.status == MatchStatus.APPLIED
    assert [(t.kind, t.payout_id, t.amount) for t in match.targets.all()] == [
        ("payout", payout.pk, D("154.02"))
    ]
    assert list(match.journal_entries.values_list("pk", flat=True)) == [entry.pk]


# --- import -------------------------------------------------------------------------------------


def test_importing_the_same_payout_twice_stores_nothing_new(fake, paid, clerk) -> None:
    # given
    serve_payout(fake, status="in_transit")
    payouts_import(actor=clerk, config=config(fake))

    # when
    again = payouts_import(actor=clerk, config=config(fake))

    # then
    assert (again.fetched, again.created, again.updated, again.unchanged) == (1, 0, 0, 1)
    assert Payout.objects.count() == 1
    assert PayoutItem.objects.count() == 4
    assert Payout.objects.get().provider_status == "in_transit"


def test_a_payout_whose_status_changed_updates_its_status_only(fake, paid, clerk) -> None:
    # given
    serve_payout(fake, status="in_transit")
    payouts_import(actor=clerk, config=config(fake))
    before = Payout.objects.values().get()
    fake.payouts[PAYOUT_ID]["status"] = "paid"

    # when
    result = payouts_import(actor=clerk, config=config(fake))

    # then
    after = Payout.objects.values().get()
    assert result.updated == 1
    assert after["provider_status"] == "paid"
    assert {k: v for k, v in after.items() if k != "provider_status"} == {
        k: v for k, v in before.items() if k != "provider_status"
    }
    assert PayoutItem.objects.count() == 4


def test_a_payout_that_does_not_add_up_is_an_exception_with_its_difference(
    fake, paid, clerk, make_line
) -> None:
    # given: Stripe says 155.00, the transactions net to 154.02
    serve_payout(fake, amount=15500)

    # when
    result = payouts_import(actor=clerk, config=config(fake))

    # then
    payout = Payout.objects.get()
    assert result.exceptions == 1
    assert payout.status == PayoutStatus.EXCEPTION
    assert "net to 154.02 USD, the payout is 155.00 USD" in payout.problem
    exc = ReconciliationException.objects.get()
    assert exc.kind == ExceptionKind.PAYOUT_MISMATCH
    assert exc.key == f"payout_mismatch:{PAYOUT_ID}"
    assert exc.payout_id == payout.pk
    assert (exc.amount, exc.difference, exc.currency) == (D("155.00"), D("-0.98"), "USD")
    # and it cannot be reconciled, nothing posted
    entries = JournalEntry.objects.count()
    line = make_line("155.00", description=f"STRIPE {PAYOUT_ID}")
    with pytest.raises(PayoutConflict) as refused:
        payout_reconcile(payout_id=payout.pk, line_id=line.pk, actor=clerk)
    assert refused.value.code == "payout_exception"
    assert JournalEntry.objects.count() == entries
    assert not Match.objects.exists()


def test_a_charge_billing_never_recorded_makes_the_payout_an_exception_until_it_is(
    fake, paid, clerk, customer, clerk_invoice
) -> None:
    # given: a 10.00 charge (fee 0.59) of which billing knows nothing yet
    serve_payout(fake, amount=15402 + 941, unknown_charge=True)

    # when
    payouts_import(actor=clerk, config=config(fake))

    # then
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.EXCEPTION
    assert "ch_Z999" in payout.problem
    assert "no payment recorded in billing" in payout.problem
    exc = ReconciliationException.objects.get()
    assert exc.status == "open"

    # when billing records it (the webhook arrives late) and the next import runs
    card_payment(customer, clerk_invoice("10.00"), "ch_Z999")
    again = payouts_import(actor=clerk, config=config(fake))

    # then the payout adds up and the exception is resolved
    payout.refresh_from_db()
    exc.refresh_from_db()
    assert again.updated == 1
    assert (payout.status, payout.problem) == (PayoutStatus.IMPORTED, "")
    assert exc.status == "resolved"
    assert PayoutItem.objects.get(balance_transaction_id="txn_c9").payment.processor_charge_id == (
        "ch_Z999"
    )


@pytest.fixture
def clerk_invoice(clerk, customer, django_capture_on_commit_callbacks):
    def make(amount: str) -> Invoice:
        return _invoice(clerk, customer, amount, django_capture_on_commit_callbacks)

    return make


def test_import_picks_the_bank_account_of_the_payout_currency(
    fake, paid, clerk, usd_account, make_bank_account
) -> None:
    # given: one USD account (and a EUR one)
    make_bank_account("EUR", name="Euro account")
    serve_payout(fake)

    # when
    payouts_import(actor=clerk, config=config(fake))

    # then
    assert Payout.objects.get().bank_account == usd_account


def test_import_needs_the_permission(fake, make_user) -> None:
    # given
    auditor = make_user(Role.AUDITOR)
    serve_payout(fake)

    # when / then
    with pytest.raises(PermissionDeniedError):
        payouts_import(actor=auditor, config=config(fake))
    assert not Payout.objects.exists()
    assert fake.requests == []


# --- reconcile ---------------------------------------------------------------------------------


def test_reconcile_is_refused_for_a_line_of_another_amount(fake, paid, clerk, make_line) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    payout = Payout.objects.get()
    line = make_line("154.20", description=f"STRIPE {PAYOUT_ID}")
    before = ledger_state()

    # when
    with pytest.raises(PayoutRefused) as refused:
        payout_reconcile(payout_id=payout.pk, line_id=line.pk, actor=clerk)

    # then nothing changed
    assert refused.value.code == "payout_amount_differs"
    assert ledger_state() == before
    payout.refresh_from_db()
    line.refresh_from_db()
    assert (payout.status, payout.statement_line_id) == (PayoutStatus.IMPORTED, None)
    assert line.status == StatementLineStatus.UNMATCHED
    assert not Match.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.PAYOUT_RECONCILED).exists()


def test_reconcile_twice_is_refused(fake, paid, clerk, make_line) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    payout = Payout.objects.get()
    payout_reconcile(payout_id=payout.pk, line_id=make_line("154.02").pk, actor=clerk)
    entries = JournalEntry.objects.count()

    # when / then
    with pytest.raises(PayoutConflict) as refused:
        payout_reconcile(payout_id=payout.pk, line_id=make_line("154.02").pk, actor=clerk)
    assert refused.value.code == "payout_reconciled"
    assert JournalEntry.objects.count() == entries


def test_reconcile_needs_the_decide_permission(fake, paid, clerk, make_user, make_line) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    line = make_line("154.02")

    # when / then
    with pytest.raises(PermissionDeniedError):
        payout_reconcile(
            payout_id=Payout.objects.get().pk, line_id=line.pk, actor=make_user(Role.AUDITOR)
        )
    assert Payout.objects.get().status == PayoutStatus.IMPORTED


# --- the matching engine ----------------------------------------------------------------------


def test_the_engine_auto_applies_a_deposit_naming_the_payout(
    fake, paid, clerk, usd_account, make_line
) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    deposit = make_line("154.02", description=f"TRANSFER FROM STRIPE {PAYOUT_ID}")

    # when
    result = reconcile(bank_account_id=usd_account.pk)

    # then
    assert result.auto_matched == 1
    match = Match.objects.get()
    assert (match.rule, match.confidence, match.status) == ("payout", D("0.99"), "applied")
    assert f"payout {PAYOUT_ID}" in match.reason
    assert "payout id in the bank text" in match.reason
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.RECONCILED
    assert payout.statement_line_id == deposit.pk
    assert payout.reconciled_by is None  # the system
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)


def test_the_engine_matches_a_stripe_deposit_by_amount_and_date(
    fake, paid, clerk, usd_account, make_line
) -> None:
    # given: no payout id in the text, but Stripe named and the amount exact
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    make_line("154.02", counterparty_name="STRIPE", booking_date=TODAY + dt.timedelta(days=1))

    # when
    result = reconcile(bank_account_id=usd_account.pk)

    # then
    match = Match.objects.get()
    assert result.auto_matched == 1
    assert (match.rule, match.confidence) == ("payout", matching.C_PAYOUT_AMOUNT)
    assert "processor named" in match.reason


def test_two_payouts_of_the_same_amount_are_only_suggested(
    fake, paid, clerk, usd_account, make_line
) -> None:
    # given
    serve_payout(fake)
    serve_payout(fake, payout_id="po_1Other000Payout", arrival=ARRIVAL - 86_400)
    payouts_import(actor=clerk, config=config(fake))
    line = make_line("154.02", counterparty_name="Stripe Payments")

    # when
    result = reconcile(bank_account_id=usd_account.pk)

    # then
    match = Match.objects.get()
    assert (result.auto_matched, result.suggested) == (0, 1)
    assert match.confidence == matching.C_PAYOUT_AMBIGUOUS
    assert match.targets.get().payout.external_id == PAYOUT_ID  # the closest arrival
    line.refresh_from_db()
    assert line.status == StatementLineStatus.SUGGESTED

    # when a person reconciles that payout with that line, the suggestion is accepted
    payout_reconcile(payout_id=match.targets.get().payout_id, line_id=line.pk, actor=clerk)

    # then
    match.refresh_from_db()
    assert match.status == MatchStatus.APPLIED
    assert Match.objects.count() == 1


def test_the_engine_ignores_a_deposit_that_names_no_processor() -> None:
    # given
    payout = matching.OpenPayout(1, "po_123456", "USD", D("154.02"), TODAY)
    line = matching.BankLine(7, D("154.02"), "USD", TODAY, counterparty_name="Acme Corp")

    # when
    proposals = matching.match_lines([line], payouts=[payout])

    # then
    assert proposals == []


def test_undo_of_a_payout_match_reverses_exactly(fake, paid, clerk, make_line) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    payout = Payout.objects.get()
    before = ledger_state()
    line = make_line("154.02", description=PAYOUT_ID)
    payout_reconcile(payout_id=payout.pk, line_id=line.pk, actor=clerk)
    match = Match.objects.get()
    entry_id = Payout.objects.get().journal_entry_id

    # when
    match_undo(match_id=match.pk, actor=clerk, reason="wrong deposit")

    # then
    assert ledger_state() == before
    assert JournalEntry.objects.filter(reversal_of_id=entry_id).count() == 1
    payout.refresh_from_db()
    line.refresh_from_db()
    assert payout.status == PayoutStatus.IMPORTED
    assert (payout.statement_line_id, payout.journal_entry_id, payout.reconciled_at) == (
        None,
        None,
        None,
    )
    assert line.status == StatementLineStatus.UNMATCHED

    # and it can be reconciled again (a new entry)
    again = payout_reconcile(payout_id=payout.pk, line_id=line.pk, actor=clerk)
    assert again.status == PayoutStatus.RECONCILED
    assert again.journal_entry_id not in (None, entry_id)
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)


# --- disputes ------------------------------------------------------------------------------------


def test_dispute_fees_stay_in_clearing_for_receivables_to_book() -> None:
    # given: a payout with a lost dispute (-25.00, fee 15.00) and a charge (100.00, fee 3.20)
    payout = Payout.objects.create(
        external_id="po_dispute",
        amount=D("56.80"),
        currency="USD",
        arrival_date=TODAY,
        charges=D("100.00"),
        disputes=D("-25.00"),
        fees=D("18.20"),
    )
    PayoutItem.objects.create(
        payout=payout,
        balance_transaction_id="txn_1",
        category="charge",
        amount=D("100.00"),
        fee=D("3.20"),
        net=D("96.80"),
        currency="USD",
    )
    PayoutItem.objects.create(
        payout=payout,
        balance_transaction_id="txn_2",
        category="dispute",
        amount=D("-25.00"),
        fee=D("15.00"),
        net=D("-40.00"),
        currency="USD",
    )

    # when
    fees, clearing = settlement_amounts(payout)

    # then: only the charge fee is expensed; the dispute's net (-40.00) stays in clearing,
    # where receivables' chargeback reversal (25.00) and dispute fee (15.00) meet it
    assert (fees, clearing) == (D("3.20"), D("60.00"))
    assert payout.amount + fees == clearing


# --- API ------------------------------------------------------------------------------------------


def test_api_lists_and_shows_payouts_by_role(
    fake, paid, clerk, client_for, integration_client
) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    payout = Payout.objects.get()

    # when
    listed = client_for(Role.AUDITOR).get("/api/reconciliation/payouts?status=imported")
    filtered = client_for(Role.AUDITOR).get("/api/reconciliation/payouts?currency=EUR")
    bad = client_for(Role.AUDITOR).get("/api/reconciliation/payouts?status=nope")
    detail = integration_client.get(f"/api/reconciliation/payouts/{payout.pk}")
    missing = integration_client.get("/api/reconciliation/payouts/999999")

    # then
    assert listed.status_code == 200
    assert [(p["external_id"], p["amount"], p["fees"]) for p in listed.json()["results"]] == [
        (PAYOUT_ID, "154.02", "5.98")
    ]
    assert filtered.json()["results"] == []
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    assert detail.status_code == 200
    body = detail.json()
    assert body["status"] == "imported"
    assert [(i["category"], i["amount"], i["fee"], i["net"]) for i in body["items"]] == [
        ("charge", "100.00", "3.20", "96.80"),
        ("charge", "25.00", "1.03", "23.97"),
        ("charge", "50.00", "1.75", "48.25"),
        ("refund", "-15.00", "0.00", "-15.00"),
    ]
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (None, 403),
        (Role.AUDITOR, 403),
        (Role.APPROVER, 403),
        (Role.AR_CLERK, 200),
        (Role.CONTROLLER, 200),
    ],
)
def test_api_import_permissions(stripe_settings, fake, client_for, role, expected) -> None:
    # given
    from rest_framework.test import APIClient

    client = client_for(role) if role else APIClient()

    # when
    response = client.post("/api/reconciliation/payouts/import", {}, format="json")

    # then
    assert response.status_code in ((401, 403) if expected == 403 else (expected,))
    if expected == 200:
        assert response.json() == {
            "fetched": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "exceptions": 0,
        }


def test_api_import_by_integration_counts(stripe_settings, fake, paid, integration_client) -> None:
    # given
    serve_payout(fake)

    # when
    response = integration_client.post("/api/reconciliation/payouts/import", {}, format="json")

    # then
    assert response.status_code == 200
    assert response.json()["created"] == 1


def test_api_import_answers_502_when_stripe_fails(stripe_settings, fake, client_for) -> None:
    # given: Stripe fails more often than the client retries reads (twice)
    fake.queue_error("server_error", "server_error", "server_error")

    # when
    failed = client_for(Role.AR_CLERK).post("/api/reconciliation/payouts/import", {})
    stripe_settings.STRIPE_SECRET_KEY = "sk_test_wrong"
    refused = client_for(Role.AR_CLERK).post("/api/reconciliation/payouts/import", {})

    # then
    assert (failed.status_code, failed.json()["code"]) == (502, "provider_unavailable")
    assert (refused.status_code, refused.json()["code"]) == (502, "invalid_credentials")
    assert not Payout.objects.exists()


def test_api_reconcile(fake, paid, clerk, make_line, client_for) -> None:
    # given
    serve_payout(fake)
    payouts_import(actor=clerk, config=config(fake))
    payout = Payout.objects.get()
    wrong = make_line("154.00")
    right = make_line("154.02")
    url = f"/api/reconciliation/payouts/{payout.pk}/reconcile"

    # when
    forbidden = client_for(Role.AUDITOR).post(url, {"line": right.pk}, format="json")
    invalid = client_for(Role.AR_CLERK).post(url, {}, format="json")
    differs = client_for(Role.AR_CLERK).post(url, {"line": wrong.pk}, format="json")
    ok = client_for(Role.AR_CLERK).post(url, {"line": right.pk}, format="json")
    twice = client_for(Role.AR_CLERK).post(url, {"line": right.pk}, format="json")
    missing = client_for(Role.AR_CLERK).post(
        "/api/reconciliation/payouts/999999/reconcile", {"line": right.pk}, format="json"
    )

    # then
    assert forbidden.status_code == 403
    assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid")
    assert (differs.status_code, differs.json()["code"]) == (400, "payout_amount_differs")
    assert ok.status_code == 200
    assert (ok.json()["status"], ok.json()["statement_line"]) == ("reconciled", right.pk)
    assert (twice.status_code, twice.json()["code"]) == (409, "payout_reconciled")
    assert missing.status_code == 404


# --- audit ---------------------------------------------------------------------------------------


def test_import_and_reconcile_are_audited(fake, paid, clerk, make_line, usd_account) -> None:
    # given
    serve_payout(fake)

    # when
    payouts_import(actor=clerk, config=config(fake))
    payout = Payout.objects.get()
    line = make_line("154.02")
    payout_reconcile(payout_id=payout.pk, line_id=line.pk, actor=clerk)

    # then
    imported = AuditEvent.objects.filter(action=AuditAction.PAYOUT_IMPORTED).order_by("pk")
    assert [(e.subject, e.actor) for e in imported] == [
        (f"payout:{payout.pk}", clerk),
        ("stripe:payouts", clerk),
    ]
    assert imported[0].details["external_id"] == PAYOUT_ID
    assert imported[1].details["created"] == 1
    reconciled = AuditEvent.objects.get(action=AuditAction.PAYOUT_RECONCILED)
    assert (reconciled.subject, reconciled.actor, reconciled.bank_account_id) == (
        f"payout:{payout.pk}",
        clerk,
        usd_account.pk,
    )
    assert D(reconciled.details["fees"]) == D("5.98")
    assert D(reconciled.details["clearing"]) == D("160.00")
    assert AuditEvent.objects.filter(action=AuditAction.MATCH_MANUAL).count() == 1


def test_the_task_imports_as_the_system(stripe_settings, fake, paid) -> None:
    # given
    from reconciliation.tasks import payouts_import_task

    serve_payout(fake)

    # when
    result = payouts_import_task.apply(kwargs={"since": (TODAY - dt.timedelta(days=3)).isoformat()})

    # then
    assert result.get()["created"] == 1
    assert Payout.objects.get().imported_by is None
    assert timezone.now() >= Payout.objects.get().imported_at
