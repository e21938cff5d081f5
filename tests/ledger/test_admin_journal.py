"""The journal entry list and page of the admin: totals, source links, readable lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse

from core.ledger.models import Account, JournalEntry
from core.ledger.services import LineSpec, journal_post, journal_reverse
from core.roles import Role
from tests.conftest import verified_client

LIST = "admin:ledger_journalentry_changelist"


def _post(accounts: dict[str, Account], amount: str, **kwargs) -> JournalEntry:
    return journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D(amount)),
            LineSpec(accounts["revenue"], "USD", credit=D(amount)),
        ],
        entry_date=date(2026, 12, 1),
        **kwargs,
    )


@pytest.fixture
def controller(make_user):
    return verified_client(make_user(Role.CONTROLLER))


def test_the_list_shows_each_entrys_total_formatted(accounts, controller) -> None:
    # given an entry of 1,459.39 USD
    entry = _post(accounts, "1459.39", description="Consulting")
    # when the controller opens the journal
    page = controller.get(reverse(LIST)).content.decode()
    # then its total is shown with separators and cents, never as the stored 1459.3900
    assert f"JE-{entry.pk}" in page
    assert "1,459.39 USD" in page
    assert "1459.3900" not in page


def test_a_documents_entry_links_to_the_documents_page(accounts, controller) -> None:
    # given an entry an invoice posted, and a manual one
    posted = _post(accounts, "10.00", source="billing.invoice:7")
    _post(accounts, "20.00", source="manual")
    # when the journal is listed
    page = controller.get(reverse(LIST)).content.decode()
    # then the invoice's entry links to the invoice's admin page; the other says Manual
    assert reverse("admin:billing_invoice_change", args=[7]) in page
    assert ">Invoice 7</a>" in page
    assert "Manual" in page
    # and the entry's page says it is undone there, with a link, not an API route
    detail = controller.get(reverse("admin:ledger_journalentry_change", args=[posted.pk]))
    text = detail.content.decode()
    assert reverse("admin:billing_invoice_change", args=[7]) in text
    assert "/api/billing" not in text


def test_the_entry_page_shows_lines_in_minor_units_and_links_the_reversal(
    accounts, make_user, controller
) -> None:
    # given a manual entry reversed by another
    entry = _post(accounts, "1459.39", description="Wrong account")
    reversal = journal_reverse(
        entry_id=entry.pk, actor=make_user(Role.CONTROLLER), reason="Posted twice"
    )
    # when its page is opened
    page = controller.get(reverse("admin:ledger_journalentry_change", args=[entry.pk]))
    text = page.content.decode()
    # then the lines read 1,459.39 USD and the reversing entry is a link to its page
    assert page.status_code == 200
    assert text.count("1,459.39 USD") >= 3  # the total, the debit and the credit
    assert "1459.3900" not in text
    assert reverse("admin:ledger_journalentry_change", args=[reversal.pk]) in text


@pytest.mark.parametrize(
    ("term", "found"),
    [("JE-{pk}", True), ("{pk}", True), ("1,459.39", True), ("1459.39 USD", True), ("9.99", False)],
)
def test_the_list_is_searchable_by_number_and_exact_amount(
    accounts, controller, term, found
) -> None:
    # given two entries
    entry = _post(accounts, "1459.39", description="Consulting")
    other = _post(accounts, "12.00", description="Stamps")
    # when the clerk searches
    response = controller.get(reverse(LIST), {"q": term.format(pk=entry.pk)})
    # then the entry is found (or not), and the other never is
    shown = list(response.context["cl"].result_list)
    assert (entry in shown) is found
    assert other not in shown


def test_the_list_is_searchable_by_description_and_source(accounts, controller) -> None:
    # given
    invoice_entry = _post(accounts, "10.00", source="billing.invoice:7", description="Sale")
    stamps = _post(accounts, "12.00", description="Stamps")
    # when / then
    by_source = controller.get(reverse(LIST), {"q": "billing.invoice:7"}).context["cl"]
    by_text = controller.get(reverse(LIST), {"q": "stamps"}).context["cl"]
    assert list(by_source.result_list) == [invoice_entry]
    assert list(by_text.result_list) == [stamps]


def test_the_lists_queries_do_not_grow_with_its_rows(
    accounts, make_user, controller, django_assert_max_num_queries
) -> None:
    # given a journal of a few entries, one reversed, counted once
    user = make_user(Role.CONTROLLER)
    for i in range(3):
        _post(accounts, f"{i + 1}.00", source=f"billing.invoice:{i + 1}")
    journal_reverse(entry_id=_post(accounts, "5.00").pk, actor=user, reason="test")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        controller.get(reverse(LIST))
    # when twenty more entries are posted
    for i in range(20):
        _post(accounts, f"{i + 10}.00", source="manual", actor=user)
    # then the list needs no more queries than before
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = controller.get(reverse(LIST))
    assert len(response.context["cl"].result_list) == 25
