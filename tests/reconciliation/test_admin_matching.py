"""Matching in the admin: a suggestion accepted or rejected from its own page through the
services the bulk actions use (the page previews the posting and changes nothing until its
button); a bank line matched by hand to invoices or an account (and a rule), with the
service's refusals on the form."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.urls import reverse

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Payment
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.ledger.models import Account, JournalEntry
from core.roles import Role
from reconciliation.enums import MatchStatus, StatementLineStatus
from reconciliation.models import BankAccount, Match, MatchRule, Statement, StatementLine
from reconciliation.services_matching import reconcile
from tests.conftest import verified_client

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
    def make(amount: str) -> Invoice:
        with django_capture_on_commit_callbacks(execute=False):
            return invoice_create(
                actor=clerk,
                customer_id=customer.pk,
                lines=[LineInput("Service", D(1), D(amount), tax_rate=D(0))],
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
        file_sha256="b" * 64,
        fingerprint="b" * 64,
    )

    def make(amount: str, **kw) -> StatementLine:
        n = next(_positions)
        return StatementLine.objects.create(
            statement=statement,
            bank_account=usd_account,
            position=n,
            booking_date=date.today(),  # noqa: DTZ011 (invoices are due today+)
            amount=D(amount),
            currency="USD",
            fingerprint=f"{n:064d}",
            **kw,
        )

    return make


@pytest.fixture
def suggestion(usd_account, make_invoice, make_line) -> Match:
    make_invoice("3371.24")
    make_line("3371.24", counterparty_name="ACMEE")
    reconcile(bank_account_id=usd_account.pk)
    return Match.objects.get(status=MatchStatus.PROPOSED)


def detail_action(name: str, pk: int) -> str:
    return reverse(f"admin:reconciliation_match_{name}_detail", args=[pk])


def test_suggestion_page_offers_accept_and_reject_in_words(suggestion, clerk) -> None:
    # when a clerk opens a suggestion
    page = verified_client(clerk).get(
        reverse("admin:reconciliation_match_change", args=[suggestion.pk])
    )
    # then it offers Accept and Reject, and reads in words and separated amounts
    html = page.content.decode()
    assert detail_action("accept", suggestion.pk) in html
    assert detail_action("reject", suggestion.pk) in html
    assert "3,371.24 USD" in html
    assert "Similar payer name" in html


def test_accept_from_the_suggestion_page_previews_then_posts(suggestion, clerk) -> None:
    client = verified_client(clerk)
    entries = JournalEntry.objects.count()
    # when the clerk opens Accept
    page = client.get(detail_action("accept", suggestion.pk))
    # then the payment's entry is shown and nothing happened
    assert page.status_code == 200
    [entry] = page.context["preview"].entries
    assert [x.debit for x in entry.lines if x.debit] == ["3,371.24 USD"]
    assert JournalEntry.objects.count() == entries
    assert Match.objects.get(pk=suggestion.pk).status == MatchStatus.PROPOSED
    assert not Payment.objects.exists()
    # when they press Accept
    client.post(detail_action("accept", suggestion.pk), {"confirm": "1"})
    # then the match is applied and the invoice paid
    assert Match.objects.get(pk=suggestion.pk).status == MatchStatus.APPLIED
    assert Invoice.objects.get().status == InvoiceStatus.PAID
    # and a second Accept is refused on the page, not with an error page
    again = client.post(detail_action("accept", suggestion.pk), {"confirm": "1"})
    assert again.status_code == 200
    assert again.context["error"]


def test_reject_from_the_suggestion_page_with_a_reason(suggestion, clerk) -> None:
    client = verified_client(clerk)
    # when the clerk opens Reject, nothing changes
    assert client.get(detail_action("reject", suggestion.pk)).status_code == 200
    assert Match.objects.get(pk=suggestion.pk).status == MatchStatus.PROPOSED
    # when they press it with a reason
    client.post(detail_action("reject", suggestion.pk), {"confirm": "1", "reason": "Not theirs"})
    # then the suggestion is rejected and its line unmatched, nothing posted
    match = Match.objects.get(pk=suggestion.pk)
    assert (match.status, match.undo_reason) == (MatchStatus.REJECTED, "Not theirs")
    assert StatementLine.objects.get().status == StatementLineStatus.UNMATCHED
    assert not Payment.objects.exists()


def test_auditor_cannot_decide_on_a_suggestion(suggestion, make_user) -> None:
    client = verified_client(make_user(Role.AUDITOR))
    assert client.post(detail_action("accept", suggestion.pk), {"confirm": "1"}).status_code == 403
    assert Match.objects.get(pk=suggestion.pk).status == MatchStatus.PROPOSED


def manual(pk: int) -> str:
    return reverse("admin:reconciliation_statementline_match_detail", args=[pk])


def test_line_matched_by_hand_to_two_invoices(make_invoice, make_line, clerk) -> None:
    # given two open invoices and one bank line paying both
    first, second = make_invoice("100.00"), make_invoice("250.00")
    line = make_line("350.00", counterparty_name="Acme")
    client = verified_client(clerk)
    # when the clerk asks what matching them posts
    shown = client.post(manual(line.pk), {"invoices": f"{first.number}, {second.number}"})
    # then the entries are shown and nothing is kept
    assert shown.status_code == 200
    assert shown.context["preview"].entries
    assert not Payment.objects.exists()
    assert StatementLine.objects.get(pk=line.pk).status == StatementLineStatus.UNMATCHED
    # when they match
    response = client.post(
        manual(line.pk), {"invoices": f"{first.number} {second.number}", "confirm": "1"}
    )
    # then both invoices are paid and the line is matched
    assert response.status_code == 302
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.PAID}
    assert StatementLine.objects.get(pk=line.pk).status == StatementLineStatus.MATCHED


def test_manual_match_refusals_are_on_the_form(make_invoice, make_line, clerk) -> None:
    line = make_line("80.00")
    client = verified_client(clerk)
    # an unknown invoice number
    response = client.post(manual(line.pk), {"invoices": "NOPE-1", "confirm": "1"})
    assert response.status_code == 200
    assert "No invoice NOPE-1" in response.content.decode()
    # an invoice with nothing due: the service's refusal
    paid = make_invoice("80.00")
    other = make_line("80.00")
    client.post(manual(other.pk), {"invoices": paid.number, "confirm": "1"})
    response = client.post(manual(line.pk), {"invoices": paid.number, "confirm": "1"})
    assert response.status_code == 200
    assert "Nothing is due on these invoices." in response.context["error"]
    assert StatementLine.objects.get(pk=line.pk).status == StatementLineStatus.UNMATCHED


def test_bank_fee_matched_to_an_account_and_a_rule_created(make_line, make_user) -> None:
    # given a bank fee line and a controller (who may add rules)
    line = make_line("-12.50", counterparty_name="Bank fees", description="Monthly fee")
    account = Account.objects.filter(is_active=True, type="expense").order_by("code").first()
    client = verified_client(make_user(Role.CONTROLLER))
    # when they match it to the expense account and ask for a rule
    response = client.post(
        manual(line.pk),
        {"account": account.pk, "create_rule": "on", "rule_text": "Monthly fee", "confirm": "1"},
    )
    # then the line is matched and the rule exists for the next fee
    assert response.status_code == 302
    assert StatementLine.objects.get(pk=line.pk).status == StatementLineStatus.MATCHED
    rule = MatchRule.objects.get()
    assert (rule.text_contains, rule.account_id, rule.sign) == ("Monthly fee", account.pk, "debit")


def test_bulk_accept_lists_the_selection_before_posting(suggestion, clerk) -> None:
    client = verified_client(clerk)
    url = reverse("admin:reconciliation_match_changelist")
    selection = {"action": "accept_selected", "_selected_action": [str(suggestion.pk)]}
    # when the clerk chooses "Accept selected suggestions"
    page = client.post(url, selection)
    # then a page lists the match and what accepting does; nothing is applied yet
    html = page.content.decode()
    assert "3,371.24 USD" in html
    assert "posts it to the ledger" in html
    assert Match.objects.get(pk=suggestion.pk).status == MatchStatus.PROPOSED
    # when they confirm on it
    client.post(url, {**selection, "confirm": "1"})
    # then the match is applied
    assert Match.objects.get(pk=suggestion.pk).status == MatchStatus.APPLIED


@pytest.fixture
def exported_run(make_user):
    """A USD payment run, approved and released, paying two bills (100.00 and 250.50)."""
    from payables.services.bills import BillLineInput, bill_approve, bill_create
    from payables.services.runs import (
        payment_run_approve,
        payment_run_create,
        payment_run_export,
        payment_run_submit,
    )
    from payables.services.vendors import BankDetails, vendor_activate, vendor_create

    ap_clerk, approver = make_user(Role.AP_CLERK), make_user(Role.APPROVER)
    today = date.today()  # noqa: DTZ011 (the run pays today)
    bills = []
    for n, (name, amount) in enumerate((("Globex", "100.00"), ("Umbrella", "250.50")), start=1):
        vendor = vendor_create(
            actor=ap_clerk,
            name=f"{name} Supplies",
            email=f"{name.lower()}@vendor.example",
            currency="USD",
            bank=BankDetails(
                account_holder=name, routing_number="011000015", account_number="123456789"
            ),
        )
        vendor = vendor_activate(vendor_id=vendor.pk, actor=make_user(Role.CONTROLLER))
        bill = bill_create(
            actor=ap_clerk,
            vendor_id=vendor.pk,
            number=f"V-{n}",
            currency="USD",
            bill_date=today - timedelta(days=40),
            lines=[BillLineInput("Goods", D(1), D(amount))],
        )
        bills.append(bill_approve(bill_id=bill.pk, actor=approver))
    run = payment_run_create(actor=ap_clerk, payment_date=today, currency="USD", pay_by=today)
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    payment_run_approve(run_id=run.pk, actor=approver)
    return payment_run_export(run_id=run.pk, actor=ap_clerk), bills


def test_money_out_matched_by_hand_to_the_bills_it_paid(exported_run, make_line, make_user):
    # given a released run paying two bills and the bank's one debit for both
    _run, (first, second) = exported_run
    line = make_line("-350.50", counterparty_name="ACH batch")
    client = verified_client(make_user(Role.AP_CLERK))
    # the page offers the bills waiting for their bank line
    page = client.get(manual(line.pk))
    assert "Globex Supplies · bill V-1 · 100.00 USD" in page.content.decode()
    # when one bill alone is given: refused, with both amounts
    refused = client.post(manual(line.pk), {"bills": [first.pk], "confirm": "1"})
    assert refused.status_code == 200
    assert "add up to 100.00 USD, the lines to 350.50 USD" in refused.context["error"]
    # when both are given
    done = client.post(manual(line.pk), {"bills": [first.pk, second.pk], "confirm": "1"})
    # then the line is matched to the run's two payments, and nothing more is posted
    assert done.status_code == 302
    assert StatementLine.objects.get(pk=line.pk).status == StatementLineStatus.MATCHED
    match = Match.objects.get(status=MatchStatus.APPLIED)
    assert sorted(t.payment_run_item.bill_id for t in match.targets.all()) == sorted(
        [first.pk, second.pk]
    )
    # and the bills are no longer offered for another line
    other = make_line("-100.00")
    assert "bill V-1" not in client.get(manual(other.pk)).content.decode()


def test_bills_refused_for_money_in_or_a_bill_not_in_a_run(exported_run, make_line, make_user):
    from reconciliation.exceptions import ReconciliationError
    from reconciliation.services_matching import match_manual

    _run, (first, _second) = exported_run
    clerk = make_user(Role.AP_CLERK)
    money_in = make_line("100.00")
    with pytest.raises(ReconciliationError) as refused:
        match_manual(actor=clerk, line_ids=[money_in.pk], bill_ids=[first.pk])
    assert refused.value.code == "wrong_direction"
    # the bills field is not offered on money in
    assert 'name="bills"' not in verified_client(clerk).get(manual(money_in.pk)).content.decode()
    # a bill already matched to its bank line
    line = make_line("-100.00")
    match_manual(actor=clerk, line_ids=[line.pk], bill_ids=[first.pk])
    again = make_line("-100.00")
    with pytest.raises(ReconciliationError) as refused:
        match_manual(actor=clerk, line_ids=[again.pk], bill_ids=[first.pk])
    assert refused.value.code == "bill_not_in_run"
    assert StatementLine.objects.get(pk=again.pk).status == StatementLineStatus.UNMATCHED


def test_api_matches_money_out_to_bills(exported_run, make_line, client_for) -> None:
    _run, bills = exported_run
    line = make_line("-350.50")
    response = client_for(Role.AP_CLERK).post(
        reverse("reconciliation-matches"),
        {"lines": [line.pk], "bills": [b.pk for b in bills]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert StatementLine.objects.get(pk=line.pk).status == StatementLineStatus.MATCHED


def test_line_list_finds_money_out_by_its_amount_without_the_sign(make_line, clerk) -> None:
    # given a bank fee of -12.50 and a receipt of 99.00
    fee = make_line("-12.50", counterparty_name="Bank fees")
    make_line("99.00")
    # when the clerk searches "12.50" (as a person types it)
    page = verified_client(clerk).get(
        reverse("admin:reconciliation_statementline_changelist"), {"q": "12.50"}
    )
    # then the fee is found, and only it
    assert page.status_code == 200
    assert [row.pk for row in page.context["cl"].result_list] == [fee.pk]
