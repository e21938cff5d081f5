"""The confirmation pages' postings preview: computed by the service, then rolled back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from core.admin_confirm import amount_text, posting_preview
from core.ledger.models import Account, JournalEntry
from core.ledger.services import LineSpec, journal_post
from core.models import DocumentCounter
from core.numbering import document_number_next


def _post(accounts: dict[str, Account], amount: str = "1250.00") -> JournalEntry:
    return journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D(amount)),
            LineSpec(accounts["revenue"], "USD", credit=D(amount)),
        ],
        entry_date=date(2026, 12, 1),
        description="Preview me",
    )


def test_preview_shows_the_entry_and_leaves_nothing_behind(accounts) -> None:
    # given
    entries_before = JournalEntry.objects.count()

    def run() -> None:
        document_number_next(series="PRV", on_date=date(2026, 12, 1))
        _post(accounts)

    # when
    preview = posting_preview(run)

    # then the entry is described line by line, with amounts as people read them
    assert preview.error == ""
    [entry] = preview.entries
    assert entry.description == "Preview me"
    assert [(line.debit, line.credit) for line in entry.lines] == [
        ("1,250.00 USD", ""),
        ("", "1,250.00 USD"),
    ]
    assert entry.lines[0].account.startswith(accounts["cash"].code)
    # and nothing of it was kept: no entry, no document number taken
    assert JournalEntry.objects.count() == entries_before
    assert not DocumentCounter.objects.filter(series="PRV").exists()


def test_preview_reports_the_services_refusal(accounts) -> None:
    # when the service refuses (an unbalanced entry)
    preview = posting_preview(
        lambda: journal_post(
            lines=[
                LineSpec(accounts["cash"], "USD", debit=D("10.00")),
                LineSpec(accounts["revenue"], "USD", credit=D("9.00")),
            ],
            entry_date=date(2026, 12, 1),
        )
    )

    # then its message is shown and nothing is previewed
    assert preview.entries == []
    assert "balance" in preview.error.lower()


def test_amounts_use_the_currencys_minor_units() -> None:
    assert amount_text(D("1631.25"), "EUR") == "1,631.25 EUR"
    assert amount_text(D("15000"), "JPY") == "15,000 JPY"
    assert amount_text(D("1.628"), "KWD") == "1.628 KWD"
    assert amount_text(None, "USD") == "-"
