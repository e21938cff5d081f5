"""Disputes: transitions and refusals, dunning paused while open, concurrent resolves (L5),
the API, and Stripe chargebacks end to end with real signatures."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from billing.checks import ar_subledger_check
from billing.models import CreditNote, Invoice, Refund, WebhookEvent
from billing.services.payments import AllocationInput, payment_record
from core.exceptions import Conflict, DomainError, PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import account_balances
from receivables.models import CollectionEvent, LateFee
from receivables.models_disputes import ChargebackEvent, Dispute
from receivables.selectors import invoice_in_dispute
from receivables.services.collections import collections_run
from receivables.services.disputes import (
    chargeback_events_apply,
    dispute_open,
    dispute_resolve,
    dispute_review,
)
from tests.billing.fakes.stripe_server import intent_event, sign
from tests.conftest import verified_client
from tests.receivables.test_late_fees import DUE, make_invoice

D = Decimal
pytestmark = pytest.mark.django_db
SECRET = "whsec_test_secret"
WEBHOOK_URL = "/api/billing/webhooks/stripe"
CHARGE = "ch_fakefakefakefakefake0001"


@pytest.fixture
def admin(make_user):
    return make_user("finance_admin")


@pytest.fixture
def clerk(make_user):
    return make_user("ar_clerk")


@pytest.fixture
def controller(make_user):
    return make_user("controller")


def state(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return (
        list(Dispute.objects.values_list("pk", "status", "resolved_at")),
        JournalEntry.objects.count(),
        CreditNote.objects.count(),
        invoice.status,
        invoice.amount_due.amount,
    )


def reviewed(admin, clerk, invoice: Invoice, amount: str = "40.00") -> Dispute:
    dispute = dispute_open(actor=clerk, invoice_id=invoice.pk, amount=D(amount), reason="Damaged")
    return dispute_review(actor=clerk, dispute_id=dispute.pk)


# --- transitions ------------------------------------------------------------------------------


def test_open_review_uphold_issues_a_credit_note_for_the_disputed_amount(admin, clerk, controller):
    # given
    invoice = make_invoice(admin, "100.00")
    dispute = dispute_open(actor=clerk, invoice_id=invoice.pk, amount=D("40.00"), reason="Broken")
    assert (dispute.status, dispute.opened_by, dispute.customer_id) == (
        "open",
        clerk,
        invoice.customer_id,
    )
    dispute = dispute_review(actor=clerk, dispute_id=dispute.pk)
    assert dispute.status == "under_review"
    # when
    dispute = dispute_resolve(
        actor=controller, dispute_id=dispute.pk, outcome="upheld", note="Photos confirm"
    )
    # then
    dispute.refresh_from_db()
    invoice.refresh_from_db()
    assert (dispute.status, dispute.resolved_by, dispute.resolution_note) == (
        "resolved_upheld",
        controller,
        "Photos confirm",
    )
    assert dispute.credit_note.total.amount == D("40.00")
    assert invoice.amount_due.amount == D("60.00")
    assert invoice.status == "open"
    assert [h.status for h in dispute.history.order_by("history_date")] == [
        "open",
        "under_review",
        "resolved_upheld",
    ]
    assert ar_subledger_check() == []


def test_uphold_of_the_whole_invoice_credits_it_in_full(admin, clerk):
    invoice = make_invoice(admin, "100.00")
    dispute = reviewed(admin, clerk, invoice, "100.00")
    dispute_resolve(actor=admin, dispute_id=dispute.pk, outcome="upheld")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due.amount) == ("paid", D("0"))
    assert ar_subledger_check() == []


def test_reject_posts_nothing(admin, clerk):
    # given
    invoice = make_invoice(admin, "100.00")
    dispute = reviewed(admin, clerk, invoice)
    entries = JournalEntry.objects.count()
    # when
    dispute = dispute_resolve(actor=admin, dispute_id=dispute.pk, outcome="rejected", note="No")
    # then
    invoice.refresh_from_db()
    assert dispute.status == "resolved_rejected"
    assert dispute.credit_note is None
    assert JournalEntry.objects.count() == entries
    assert CreditNote.objects.count() == 0
    assert invoice.amount_due.amount == D("100.00")
    assert ar_subledger_check() == []


def test_resolving_an_open_dispute_is_refused_and_changes_nothing(admin, clerk):
    invoice = make_invoice(admin, "100.00")
    dispute = dispute_open(actor=clerk, invoice_id=invoice.pk, amount=D("40.00"), reason="x")
    before = state(invoice)
    with pytest.raises(Conflict) as exc:
        dispute_resolve(actor=admin, dispute_id=dispute.pk, outcome="upheld")
    assert exc.value.code == "invalid_transition"
    assert state(invoice) == before


def test_a_resolved_dispute_cannot_be_reviewed_or_resolved_again(admin, clerk):
    invoice = make_invoice(admin, "100.00")
    dispute = reviewed(admin, clerk, invoice)
    dispute_resolve(actor=admin, dispute_id=dispute.pk, outcome="rejected")
    before = state(invoice)
    with pytest.raises(Conflict):
        dispute_resolve(actor=admin, dispute_id=dispute.pk, outcome="upheld")
    with pytest.raises(Conflict):
        dispute_review(actor=admin, dispute_id=dispute.pk)
    assert state(invoice) == before


@pytest.mark.parametrize(
    ("amount", "reason", "code"),
    [("100.01", "Too much", "over_dispute"), ("0", "Nothing", "invalid"), ("5.00", " ", "reason")],
)
def test_open_refusals_write_nothing(admin, clerk, amount, reason, code):
    invoice = make_invoice(admin, "100.00")
    before = state(invoice)
    with pytest.raises(DomainError):
        dispute_open(actor=clerk, invoice_id=invoice.pk, amount=D(amount), reason=reason)
    assert state(invoice) == before


def test_roles_open_clerk_resolve_admin_and_controller_only(admin, clerk, make_user):
    invoice = make_invoice(admin, "100.00")
    with pytest.raises(PermissionDeniedError):
        dispute_open(
            actor=make_user("controller"), invoice_id=invoice.pk, amount=D("1.00"), reason="x"
        )
    dispute = reviewed(admin, clerk, invoice)
    before = state(invoice)
    for role in ("ar_clerk", "auditor", "approver"):
        with pytest.raises(PermissionDeniedError):
            dispute_resolve(actor=make_user(role), dispute_id=dispute.pk, outcome="rejected")
    assert state(invoice) == before


# --- dunning --------------------------------------------------------------------------------


def test_dunning_is_paused_while_a_dispute_is_open_or_under_review(admin, clerk):
    # given: an invoice past the grace period
    invoice = make_invoice(admin, "100.00")
    dispute = dispute_open(actor=clerk, invoice_id=invoice.pk, amount=D("10.00"), reason="x")
    # when: the run goes over the whole dunning period while the dispute is open / reviewed
    assert invoice_in_dispute(invoice)
    for offset in range(-5, 15):
        collections_run(as_of=DUE + timedelta(days=offset))
    dispute_review(actor=clerk, dispute_id=dispute.pk)
    assert invoice_in_dispute(invoice)
    for offset in range(15, 20):
        collections_run(as_of=DUE + timedelta(days=offset))
    # then
    assert CollectionEvent.objects.filter(invoice=invoice).count() == 0
    assert LateFee.objects.filter(invoice=invoice).count() == 0
    # and dunning resumes once it is resolved
    dispute_resolve(actor=admin, dispute_id=dispute.pk, outcome="rejected")
    assert not invoice_in_dispute(invoice)
    collections_run(as_of=DUE + timedelta(days=20))
    assert CollectionEvent.objects.filter(invoice=invoice).count() > 0
    assert ar_subledger_check() == []


# --- L5: concurrent resolves ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_resolves_make_exactly_one_state_change(admin, clerk, make_user):
    # given
    invoice = make_invoice(admin, "100.00")
    dispute = reviewed(admin, clerk, invoice)
    other = make_user("controller")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def resolve(actor, outcome):
        try:
            barrier.wait(timeout=10)
            dispute_resolve(actor=actor, dispute_id=dispute.pk, outcome=outcome)
            results.append("ok")
        except Conflict as exc:
            results.append(exc.code)
        finally:
            connection.close()

    # when
    threads = [
        threading.Thread(target=resolve, args=(admin, "upheld")),
        threading.Thread(target=resolve, args=(other, "rejected")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # then
    assert sorted(results) == ["invalid_transition", "ok"]
    dispute.refresh_from_db()
    changes = [h.status for h in dispute.history.order_by("history_date")]
    assert changes[-1] == dispute.status
    assert changes.count(dispute.status) == 1
    assert CreditNote.objects.count() == (1 if dispute.status == "resolved_upheld" else 0)
    assert ar_subledger_check() == []


# --- API ------------------------------------------------------------------------------------


def test_api_open_list_review_resolve(admin, clerk, client_for):
    # given
    invoice = make_invoice(admin, "100.00")
    clerk_api = verified_client(clerk)
    # when
    created = clerk_api.post(
        "/api/accounts/disputes",
        {"invoice": invoice.pk, "amount": "25.50", "reason": "Wrong quantity"},
        format="json",
    )
    # then
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["amount"], body["currency"], body["status"], body["invoice"]) == (
        "25.50",
        "USD",
        "open",
        invoice.pk,
    )
    pk = body["id"]
    listed = clerk_api.get("/api/accounts/disputes", {"status": "open"})
    assert [d["id"] for d in listed.json()["results"]] == [pk]
    assert (
        clerk_api.get("/api/accounts/disputes", {"status": "under_review"}).json()["results"] == []
    )
    other = clerk_api.get("/api/accounts/disputes", {"customer": invoice.customer_id + 999})
    assert other.json()["results"] == []
    assert clerk_api.post(f"/api/accounts/disputes/{pk}/review").json()["status"] == "under_review"
    # a clerk may not resolve
    refused = clerk_api.post(
        f"/api/accounts/disputes/{pk}/resolve", {"outcome": "upheld"}, format="json"
    )
    assert refused.status_code == 403
    admin_api = verified_client(admin)
    resolved = admin_api.post(
        f"/api/accounts/disputes/{pk}/resolve",
        {"outcome": "upheld", "note": "Agreed"},
        format="json",
    )
    assert resolved.status_code == 200, resolved.json()
    assert resolved.json()["status"] == "resolved_upheld"
    assert resolved.json()["credit_note"] is not None
    again = admin_api.post(
        f"/api/accounts/disputes/{pk}/resolve", {"outcome": "rejected"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition" or "invalid_transition" in str(again.json())
    assert ar_subledger_check() == []


def test_api_refuses_anonymous_and_auditors_writes(admin, client_for):
    invoice = make_invoice(admin, "100.00")
    body = {"invoice": invoice.pk, "amount": "5.00", "reason": "x"}
    assert APIClient().post("/api/accounts/disputes", body, format="json").status_code in (
        401,
        403,
    )
    auditor = client_for("auditor")
    assert auditor.post("/api/accounts/disputes", body, format="json").status_code == 403
    assert auditor.get("/api/accounts/disputes").status_code == 200
    assert Dispute.objects.count() == 0


# --- chargebacks ----------------------------------------------------------------------------


@pytest.fixture
def stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    return settings


def paid_by_card(admin, amount: str = "100.00") -> tuple[Invoice, object]:
    invoice = make_invoice(admin, amount)
    payment = payment_record(
        actor=None,
        customer_id=invoice.customer_id,
        amount=D(amount),
        currency="USD",
        method="credit_card",
        processor="stripe",
        processor_charge_id=CHARGE,
        allocations=[AllocationInput(invoice_id=invoice.pk, amount=D(amount))],
    )
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    return invoice, payment


def dispute_object(shared_data, status: str, *, lost: bool = False) -> dict:
    raw = json.loads((shared_data / "stripe" / "dispute_funds_reinstated_full.json").read_text())
    obj = copy.deepcopy(raw)
    obj["status"] = status
    if lost:
        # Lost: the withdrawal (amount and fee) stands; no reinstatement.
        obj["balance_transactions"] = obj["balance_transactions"][:1]
    return obj


def deliver(client: APIClient, obj: dict, type_: str, event_id: str) -> None:
    body = json.dumps(intent_event(obj, type_, event_id=event_id), separators=(",", ":"))
    response = client.generic(
        "POST",
        WEBHOOK_URL,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, SECRET),
    )
    assert response.status_code == 200, response.content


def balance(role: str) -> Decimal:
    account = Account.objects.get(role=role)
    balances = account_balances(account=account)
    return balances["USD"].balance if "USD" in balances else D("0")


@pytest.mark.corpus
@pytest.mark.urls("tests.billing.fakes.urls")
def test_chargeback_lost_end_to_end_posts_reversal_and_fee_once(
    admin, shared_data, stripe_settings
):
    # given: an invoice paid by card
    invoice, payment = paid_by_card(admin, "100.00")
    webhook = APIClient()
    clearing_before = balance(AccountRole.PROCESSOR_CLEARING)
    # when: Stripe reports the dispute, then it is applied
    deliver(webhook, dispute_object(shared_data, "needs_response"), "charge.dispute.created", "e1")
    first = chargeback_events_apply()
    # then: one dispute on the invoice, with its evidence deadline; dunning paused
    assert first.applied == 1
    (dispute,) = Dispute.objects.all()
    assert (dispute.invoice_id, dispute.payment_id, dispute.amount.amount) == (
        invoice.pk,
        payment.pk,
        D("10.00"),
    )
    assert dispute.stripe_dispute_id == "dp_1JAyTwJSZQVUcJYgPqasUEn1"
    assert dispute.evidence_due_by == datetime.fromtimestamp(1626566399, tz=UTC)
    assert (dispute.status, dispute.processor_status) == ("open", "needs_response")
    assert invoice_in_dispute(invoice)
    assert ar_subledger_check() == []
    # when: the dispute is lost, delivered twice, applied twice
    lost = dispute_object(shared_data, "lost", lost=True)
    deliver(webhook, lost, "charge.dispute.closed", "e2")
    deliver(webhook, lost, "charge.dispute.closed", "e2")
    chargeback_events_apply()
    entries = JournalEntry.objects.count()
    deliver(webhook, lost, "charge.dispute.closed", "e3")
    chargeback_events_apply()
    # then: upheld; the payment reversed for 10.00 and the 15.00 fee posted once
    dispute.refresh_from_db()
    invoice.refresh_from_db()
    assert dispute.status == "resolved_upheld"
    assert JournalEntry.objects.count() == entries
    (refund,) = Refund.objects.all()
    assert (refund.processor_refund_id, refund.amount.amount) == (dispute.stripe_dispute_id, D(10))
    assert dispute.reversal == refund
    assert (invoice.status, invoice.amount_due.amount) == ("open", D("10.00"))
    assert balance(AccountRole.PROCESSOR_FEES) == D("15.00")
    assert balance(AccountRole.PROCESSOR_CLEARING) - clearing_before == D("-25.00")
    assert ChargebackEvent.objects.count() == WebhookEvent.objects.count() == 3
    assert ar_subledger_check() == []


@pytest.mark.corpus
@pytest.mark.urls("tests.billing.fakes.urls")
def test_chargeback_won_resolves_rejected_and_posts_nothing(admin, shared_data, stripe_settings):
    invoice, _ = paid_by_card(admin, "100.00")
    webhook = APIClient()
    deliver(webhook, dispute_object(shared_data, "needs_response"), "charge.dispute.created", "e1")
    deliver(webhook, dispute_object(shared_data, "under_review"), "charge.dispute.updated", "e2")
    chargeback_events_apply()
    assert Dispute.objects.get().status == "under_review"
    entries = JournalEntry.objects.count()
    deliver(webhook, dispute_object(shared_data, "won"), "charge.dispute.closed", "e3")
    chargeback_events_apply()
    dispute = Dispute.objects.get()
    invoice.refresh_from_db()
    assert (dispute.status, dispute.processor_status) == ("resolved_rejected", "won")
    assert JournalEntry.objects.count() == entries
    assert Refund.objects.count() == 0
    assert invoice.status == "paid"
    assert ar_subledger_check() == []


@pytest.mark.corpus
@pytest.mark.urls("tests.billing.fakes.urls")
def test_a_dispute_of_a_charge_not_ours_is_marked_and_ignored(admin, shared_data, stripe_settings):
    webhook = APIClient()
    deliver(webhook, dispute_object(shared_data, "needs_response"), "charge.dispute.created", "e1")
    run = chargeback_events_apply()
    assert run.applied == 1
    assert Dispute.objects.count() == 0
    assert ChargebackEvent.objects.get().outcome == "ignored: not a charge of ours"
    assert chargeback_events_apply().applied == 0


@pytest.mark.corpus
@pytest.mark.urls("tests.billing.fakes.urls")
def test_lost_chargeback_of_an_overpayment_reverses_the_invoice_it_paid_first(
    admin, shared_data, stripe_settings
):
    # given: a 10.00 invoice paid by a 15.00 card payment, 5.00 left as customer credit
    invoice = make_invoice(admin, "10.00")
    payment = payment_record(
        actor=None,
        customer_id=invoice.customer_id,
        amount=D("15.00"),
        currency="USD",
        method="credit_card",
        processor="stripe",
        processor_charge_id=CHARGE,
        allocations=[AllocationInput(invoice_id=invoice.pk, amount=D("10.00"))],
    )
    customer = invoice.customer
    customer.refresh_from_db()
    assert customer.credit_balance.amount == D("5.00")
    webhook = APIClient()
    # when: a 10.00 chargeback of it is opened and lost
    deliver(webhook, dispute_object(shared_data, "needs_response"), "charge.dispute.created", "o1")
    chargeback_events_apply()
    lost = dispute_object(shared_data, "lost", lost=True)
    deliver(webhook, lost, "charge.dispute.closed", "o2")
    chargeback_events_apply()
    # then: the 10.00 comes back off the invoice it paid, which is open again for it; the
    # overpayment stays on the customer's credit balance
    (dispute,) = Dispute.objects.all()
    (refund,) = Refund.objects.all()
    assert (dispute.status, dispute.invoice_id, dispute.payment_id) == (
        "resolved_upheld",
        invoice.pk,
        payment.pk,
    )
    assert (refund.from_invoices.amount, refund.from_credit_balance.amount) == (
        D("10.00"),
        D("0.00"),
    )
    assert [(a.invoice_id, a.amount.amount) for a in refund.allocations.all()] == [
        (invoice.pk, D("10.00"))
    ]
    invoice.refresh_from_db()
    customer.refresh_from_db()
    assert (invoice.status, invoice.amount_due.amount) == ("open", D("10.00"))
    assert customer.credit_balance.amount == D("5.00")
    assert ar_subledger_check() == []
