"""Dedup fingerprints of statement lines, shared by file imports and (later) bank feeds.

A line is identified by its account (the database constraint scopes it), booking date,
signed amount and currency, plus the strongest reference it carries: the bank's own
reference for the booking, else the end-to-end id, else its normalised text and counterparty
account. Identical
lines within one statement are told apart by their occurrence number, so two real coffees
of the same price on the same day stay two lines while a second import of the file adds
none.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

from reconciliation.importers.types import ParsedLine

_EMPTY_REFS = {"", "NONREF", "NOTPROVIDED", "NONE"}


def line_key(line: ParsedLine) -> str:
    amount = line.amount.normalize()
    base = f"{line.booking_date.isoformat()}|{amount:f}|{line.currency}"
    if line.bank_reference.upper() not in _EMPTY_REFS:
        return f"{base}|ref:{line.bank_reference.strip()}"
    if line.end_to_end_id.upper() not in _EMPTY_REFS:
        return f"{base}|e2e:{line.end_to_end_id.strip()}"
    text = " ".join(line.description.lower().split())
    return f"{base}|text:{text}|{line.counterparty_account.strip().upper()}"


def line_fingerprints(lines: Iterable[ParsedLine]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for line in lines:
        key = line_key(line)
        seen[key] += 1
        out.append(hashlib.sha256(f"{key}|#{seen[key]}".encode()).hexdigest())
    return out
