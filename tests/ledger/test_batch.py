"""journal_post_batch: many entries in one transaction, all or none, idempotent per key.

The tests that commit use a transactional database: the balance trigger is deferred to
commit, so only a commit shows that the database accepted (or refused) the COPY rows.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from core.ledger.digest import entry_digest_valid
from core.ledger.exceptions import InactiveAccount, PeriodLocked, UnbalancedEntry
from core.ledger.models import Account, JournalEntry, JournalLine, PeriodLock
from core.ledger.services import (
    EntrySpec,
    IdempotencyKeyReused,
    LineSpec,
    _Context,
    _copy_entries,
    _prepare,
    _Prepared,
    journal_post,
    journal_post_batch,
)

D = Decimal
DAY = date(2026, 4, 15)
committing = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def invoice(
    accounts: dict[str, Account], n: int, gross: str = "108.75", net: str = "100.00"
) -> EntrySpec:
    """An invoice posting: AR debit, revenue and tax credits (unbalanced if asked to be)."""
    return EntrySpec(
        lines=[
            LineSpec(accounts["accounts_receivable"], "USD", debit=D(gross)),
            LineSpec(accounts["revenue"], "USD", credit=D(net), memo=f"invoice {n}"),
            LineSpec(accounts["tax_payable"], "USD", credit=D("8.75")),
        ],
        entry_date=DAY,
        description=f"Invoice INV-{n}",
        source=f"billing.invoice:{n}",
        idempotency_key=f"invoice:{n}:issue",
    )


def assert_nothing_posted() -> None:
    assert JournalEntry.objects.count() == 0
    assert JournalLine.objects.count() == 0


def line_values(entry: JournalEntry) -> list[tuple]:
    return list(
        entry.lines.order_by("pk").values_list(
            "account__role", "currency", "debit", "credit", "functional_debit", "functional_credit"
        )
    )


@committing
def test_batch_posts_every_entry_with_pks_and_lines(accounts, finance_admin) -> None:
    # when three entries are posted in one call (the COPY path) and committed
    posted = journal_post_batch(
        entries=[invoice(accounts, 1), invoice(accounts, 2), invoice(accounts, 3)],
        actor=finance_admin,
    )
    # then each result is the saved row, with its pk, fields and lines
    assert [e.idempotency_key for e in posted] == [
        "invoice:1:issue",
        "invoice:2:issue",
        "invoice:3:issue",
    ]
    assert len({e.pk for e in posted}) == 3
    assert JournalEntry.objects.count() == 3
    assert JournalLine.objects.count() == 9
    for n, entry in enumerate(posted, start=1):
        assert entry._state.adding is False
        stored = JournalEntry.objects.get(pk=entry.pk)
        assert (stored.entry_date, stored.description, stored.source) == (
            DAY,
            f"Invoice INV-{n}",
            f"billing.invoice:{n}",
        )
        assert (stored.functional_currency, stored.created_by_id) == ("USD", finance_admin.pk)
        assert stored.created_at == entry.created_at
        assert stored.digest == entry.digest
        assert line_values(entry) == [
            ("accounts_receivable", "USD", D("108.75"), D(0), D("108.75"), D(0)),
            ("revenue", "USD", D(0), D("100.00"), D(0), D("100.00")),
            ("tax_payable", "USD", D(0), D("8.75"), D(0), D("8.75")),
        ]
        assert list(entry.lines.values_list("memo", flat=True).order_by("pk")) == [
            "",
            f"invoice {n}",
            "",
        ]
        assert entry_digest_valid(
            stored.digest,
            entry_date=stored.entry_date,
            functional_currency="USD",
            source=stored.source,
            idempotency_key=stored.idempotency_key,
            reversal_of_id=None,
            lines=list(
                entry.lines.order_by("pk").values_list(
                    "account_id",
                    "currency",
                    "debit",
                    "credit",
                    "functional_debit",
                    "functional_credit",
                )
            ),
        )


def test_batch_with_one_unbalanced_entry_writes_nothing_and_names_it(accounts) -> None:
    # given a batch whose second entry does not balance
    entries = [invoice(accounts, 1), invoice(accounts, 2, gross="108.70"), invoice(accounts, 3)]
    # when / then
    with pytest.raises(
        UnbalancedEntry,
        match=r"^Batch entry 2 \(key 'invoice:2:issue'\): The entry does not balance in USD: "
        r"debits 108\.70 and credits 108\.75 differ by -0\.05\.$",
    ) as refused:
        journal_post_batch(entries=entries)
    assert refused.value.code == "unbalanced_entry"
    assert refused.value.details == {"currency": "USD", "batch_index": 1}
    assert_nothing_posted()


def test_refusals_other_than_balance_also_name_the_entry(accounts, finance_admin) -> None:
    # given a closed period and an inactive account
    PeriodLock.objects.create(lock_date=date(2026, 3, 31), reason="Q1 closed")
    Account.objects.filter(role="suspense").update(is_active=False)
    early = EntrySpec(lines=invoice(accounts, 2).lines, entry_date=date(2026, 3, 31))
    inactive = EntrySpec(
        lines=[
            LineSpec(accounts["suspense"], "USD", debit=D("5")),
            LineSpec(accounts["cash"], "USD", credit=D("5")),
        ],
        entry_date=DAY,
        source="manual",
    )
    # when / then
    with pytest.raises(PeriodLocked, match=r"^Batch entry 2 \(source ''\): The books are closed"):
        journal_post_batch(entries=[invoice(accounts, 1), early])
    with pytest.raises(InactiveAccount, match=r"^Batch entry 1 \(source 'manual'\): line 1: "):
        journal_post_batch(entries=[inactive, invoice(accounts, 1)])
    assert_nothing_posted()


@committing
def test_database_refuses_an_unbalanced_entry_in_the_copy_path(accounts) -> None:
    """The trigger checks COPY rows at commit, so a bug in the service cannot post them."""
    # given a prepared batch whose second entry was altered after the service's checks
    ctx = _Context(a.pk for a in accounts.values())
    good, bad = (_prepare(invoice(accounts, n), ctx) for n in (1, 2))
    tampered = _Prepared(spec=bad.spec, lines=[*bad.lines[:2]], digest=bad.digest)
    # when the rows are written through COPY and the transaction commits
    with pytest.raises(IntegrityError, match="does not balance in USD"), transaction.atomic():
        _copy_entries([good, tampered], "USD", None)
    # then nothing of the batch was committed
    assert_nothing_posted()


@committing
def test_keys_already_posted_are_returned_not_reposted(accounts) -> None:
    # given an entry posted on its own
    first = journal_post(
        lines=invoice(accounts, 1).lines,
        entry_date=DAY,
        description="Invoice INV-1",
        source="billing.invoice:1",
        idempotency_key="invoice:1:issue",
    )
    # when a batch repeats it beside a new entry
    posted = journal_post_batch(entries=[invoice(accounts, 1), invoice(accounts, 2)])
    # then the first is returned as posted and only the second is new
    assert posted[0].pk == first.pk
    assert posted[1].pk not in (None, first.pk)
    assert JournalEntry.objects.count() == 2
    assert JournalLine.objects.filter(entry_id=first.pk).count() == 3
    # and the whole batch again posts nothing
    again = journal_post_batch(entries=[invoice(accounts, 1), invoice(accounts, 2)])
    assert [e.pk for e in again] == [e.pk for e in posted]
    assert JournalEntry.objects.count() == 2
    assert JournalLine.objects.count() == 6


def test_key_already_posted_with_other_content_refuses_the_batch(accounts) -> None:
    # given
    first = journal_post_batch(entries=[invoice(accounts, 1)])[0]
    # when the key comes back with another amount
    with pytest.raises(IdempotencyKeyReused, match=r"'invoice:1:issue' was used for another"):
        journal_post_batch(
            entries=[invoice(accounts, 2), invoice(accounts, 1, gross="208.75", net="200.00")]
        )
    # then nothing of the batch was written
    assert list(JournalEntry.objects.values_list("pk", flat=True)) == [first.pk]
    assert JournalLine.objects.count() == 3


@committing
def test_a_key_repeated_within_the_batch_is_posted_once(accounts) -> None:
    # when
    posted = journal_post_batch(
        entries=[invoice(accounts, 1), invoice(accounts, 2), invoice(accounts, 1)]
    )
    # then
    assert posted[0] is posted[2]
    assert posted[0].pk != posted[1].pk
    assert JournalEntry.objects.count() == 2
    assert JournalLine.objects.count() == 6


def test_a_key_repeated_within_the_batch_with_other_content_is_refused(accounts) -> None:
    with pytest.raises(
        IdempotencyKeyReused, match=r"^Idempotency key 'invoice:1:issue' is repeated in the batch"
    ):
        journal_post_batch(
            entries=[invoice(accounts, 1), invoice(accounts, 1, gross="208.75", net="200.00")]
        )
    assert_nothing_posted()


@committing
def test_entries_without_keys_are_all_posted(accounts) -> None:
    entries = [
        EntrySpec(lines=invoice(accounts, n).lines, entry_date=DAY, source="billing.run")
        for n in range(5)
    ]
    posted = journal_post_batch(entries=entries)
    assert len({e.pk for e in posted}) == 5
    assert JournalEntry.objects.filter(idempotency_key=None).count() == 5
    assert JournalLine.objects.count() == 15


def test_empty_batch_posts_nothing(db) -> None:
    assert journal_post_batch(entries=[]) == []
    assert_nothing_posted()
