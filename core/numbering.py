"""Gapless document numbers per series and year: ``INV-2026-000001``."""

from __future__ import annotations

from datetime import date

from django.db import transaction

from core.models import DocumentCounter


def document_number_format(*, series: str, year: int, number: int) -> str:
    return f"{series}-{year}-{number:06d}"


def document_number_next(*, series: str, on_date: date) -> str:
    """Take the next number of ``series`` for ``on_date``'s year.

    Must run inside the transaction that saves the numbered document: the counter row stays
    locked until it commits, and a rollback gives the number back, so numbers have no gaps
    and no duplicates however many issuers run at once.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("document_number_next must run inside the issuing transaction")
    year = on_date.year
    DocumentCounter.objects.bulk_create(
        [DocumentCounter(series=series, year=year)], ignore_conflicts=True
    )
    counter = DocumentCounter.objects.select_for_update().get(series=series, year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return document_number_format(series=series, year=year, number=counter.last_number)


def document_numbers_take(*, series: str, on_date: date, count: int) -> list[str]:
    """Take the next ``count`` numbers of ``series`` for ``on_date``'s year, consecutive,
    in one locked counter update (a batch of documents issued together).

    The same guarantee as ``document_number_next``: inside the issuing transaction, the
    counter row locked until it commits, every number given back by a rollback.
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("document_numbers_take must run inside the issuing transaction")
    if count == 0:
        return []
    year = on_date.year
    DocumentCounter.objects.bulk_create(
        [DocumentCounter(series=series, year=year)], ignore_conflicts=True
    )
    counter = DocumentCounter.objects.select_for_update().get(series=series, year=year)
    first = counter.last_number + 1
    counter.last_number += count
    counter.save(update_fields=["last_number"])
    return [
        document_number_format(series=series, year=year, number=number)
        for number in range(first, first + count)
    ]
