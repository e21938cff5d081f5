"""Our MT940 and BAI2 importers against the ``mt-940`` and ``bai2`` libraries on every corpus
file: the same statements, transactions, amounts and balances, or a disagreement explained
below. Where a library reads a file that we refuse, our importer is wrong unless the file fails
its own control totals (computed here from the library's figures), so each disagreement is
checked, not only listed: a new one, or a listed one that no longer happens, fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import mt940
import pytest
from bai2 import bai2 as bai2_reader
from bai2.constants import TypeCodeTransaction

from reconciliation.importers import StatementFormatError, parse_statement_file
from reconciliation.importers.common import currency_exponent
from tests.reconciliation.conftest import fixture_bytes

FOLDERS = ("mt940", "bai2")


@dataclass(frozen=True)
class Figures:
    """One statement (MT940) or account (BAI2) as a reader saw it."""

    opening: Decimal | None
    closing: Decimal | None
    amounts: tuple[Decimal, ...]
    # The statement's own totals agree: opening + amounts = closing, and for BAI2 the total
    # credits (100) and debits (400) equal the details.
    balanced: bool = True

    @property
    def complete(self) -> bool:
        return bool(self.amounts) or (self.opening is not None and self.closing is not None)

    def compared(self) -> tuple[object, ...]:
        return (self.opening, self.closing, self.amounts)


def _adds_up(opening: Decimal | None, closing: Decimal | None, amounts: tuple[Decimal, ...]):
    return opening is None or closing is None or opening + sum(amounts) == closing


def mt940_library(data: bytes) -> list[Figures]:
    """The statements of the ``mt-940`` library, split where its balances are read (it merges
    every statement of a file into one collection)."""
    marks: list[tuple[str, Decimal, int]] = []

    def mark(kind: str) -> Callable[..., Any]:
        def processor(transactions: Any, tag: Any, tag_dict: Any, result: Any) -> Any:
            marks.append((kind, result[tag.slug].amount.amount, len(transactions.transactions)))
            return result

        return processor

    processors = {
        f"post_{prefix}{kind}_balance": [mark(kind)]
        for prefix in ("", "final_", "intermediate_")
        for kind in ("opening", "closing")
    }
    # RC is a reversal of a credit: money out, as the SWIFT standard has it (the library's
    # default signs it as a credit); marks in lower case sign like upper case ones.
    options = mt940.Options(reversal_sign=True, case_insensitive_marks=True)
    transactions = mt940.parse(data, processors=processors, options=options)
    amounts = [t.data["amount"].amount for t in transactions]
    statements: list[Figures] = []
    opening: Decimal | None = None
    start = 0
    for kind, balance, position in marks:
        if kind == "opening":
            if opening is not None:
                statements.append(Figures(opening, None, tuple(amounts[start:position])))
            opening, start = balance, position
        else:
            moved = tuple(amounts[start:position])
            statements.append(Figures(opening, balance, moved, _adds_up(opening, balance, moved)))
            opening, start = None, position
    if opening is not None or start < len(amounts):
        statements.append(Figures(opening, None, tuple(amounts[start:])))
    return statements


def bai2_library(data: bytes) -> list[Figures]:
    """Every account of the ``bai2`` library, its own integrity checks (trailer totals and
    record counts) on."""
    parsed = bai2_reader.parse_from_string(data.decode("utf-8-sig"), check_integrity=True)
    statements: list[Figures] = []
    for group in parsed.children:
        for account in group.children:
            currency = account.header.currency or group.header.currency
            scale = -currency_exponent(currency)
            summary = {s.type_code.code: s.amount for s in account.header.summary_items}
            signed = [
                (d.amount or 0)
                * (1 if d.type_code.transaction == TypeCodeTransaction.credit else -1)
                for d in account.children
            ]
            amounts = tuple(Decimal(minor).scaleb(scale) for minor in signed)
            has_both = "010" in summary and "015" in summary
            opening = Decimal(summary["010"]).scaleb(scale) if has_both else None
            closing = Decimal(summary["015"]).scaleb(scale) if has_both else None
            balanced = (
                _adds_up(opening, closing, amounts)
                and summary.get("100", sum(m for m in signed if m > 0))
                == sum(m for m in signed if m > 0)
                and summary.get("400", -sum(m for m in signed if m < 0))
                == -sum(m for m in signed if m < 0)
            )
            statements.append(Figures(opening, closing, amounts, balanced))
    return statements


LIBRARIES = {"mt940": mt940_library, "bai2": bai2_library}


def ours(data: bytes, name: str) -> list[Figures]:
    return [
        Figures(s.opening_balance, s.closing_balance, tuple(line.amount for line in s.lines))
        for s in parse_statement_file(data, filename=name)
    ]


def outcome(shared_data: Path, name: str) -> tuple[str | None, str] | None:
    data = (shared_data / name).read_bytes()
    try:
        our_figures: list[Figures] | None = ours(data, name)
        our_code = None
    except StatementFormatError as exc:
        our_figures, our_code = None, exc.code
    try:
        library_figures: list[Figures] | None = LIBRARIES[name.split("/")[0]](data)
    except Exception:  # any refusal of the library counts as one
        library_figures = None
    if our_figures is None and library_figures is None:
        return None  # both refuse
    if (
        our_figures is not None
        and library_figures is not None
        and [f.compared() for f in our_figures] == [f.compared() for f in library_figures]
    ):
        return None
    if library_figures is None:
        verdict = "refused"
    elif not any(f.complete for f in library_figures):
        verdict = "no_statement"
    elif not all(f.balanced for f in library_figures):
        verdict = "unbalanced"
    else:
        verdict = "read"
    return our_code, verdict


# Each disagreement: our error code (None: we read the file), what the library did ("refused":
# it raised; "no_statement": it found no statement with transactions or both balances;
# "unbalanced": it read figures that fail the file's own control totals), and why.
DISAGREEMENTS = {
    "bai2/moov_sample3_multi_record_lines.bai2": (None, "refused", "several records on one physical line ('2/   02,...'): the library takes a line for one record; we split records after each '/'"),
    "mt940/asnbank_mt940.txt": (None, "refused", "supplementary details on the line after :61: ('hr gjlm paulissen'): the library's :61: pattern fails on them; we keep them as the line's details and all 31 statements balance"),
    "mt940/betterplace_amount_formats.sta": ("structure", "no_statement", "EDGE fragment of :60F: lines only, no :20: and no closing balance"),
    "mt940/betterplace_currency_in_25.sta": ("structure", "no_statement", "EDGE fragment: a single :25: line"),
    "mt940/betterplace_missing_crlf_at_end.sta": ("structure", "no_statement", "EDGE fragment: :25: and :62F: without :20: or opening balance"),
    "mt940/betterplace_sepa_snippet_broken.sta": ("structure", "unbalanced", "MALFORMED: :86: details under a second :25:; the library drops them and its figures fail too: 766656.49 + 50990.05 != 1125250.40"),
    "mt940/jejik_abnamro.sta": ("control_total", "unbalanced", "anonymised by hand: 3236.28 - 321.44 != 876.84"),
    "mt940/jejik_ing.sta": ("control_total", "unbalanced", "anonymised by hand: 0.00 - 45.59 != 3.47"),
    "mt940/jejik_knab.sta": ("control_total", "unbalanced", "anonymised by hand, second statement: 3058.98 - 6760 != 798.98"),
    "mt940/jejik_rabobank.sta": ("control_total", "unbalanced", "anonymised by hand: 473.17 - 1213.28 != 395.82"),
    "mt940/jejik_triodos.sta": ("control_total", "unbalanced", "anonymised by hand: 4975.09 - 715.70 != 4370.79"),
    "mt940/selfprovided_invalid_statement.sta": ("unknown_format", "no_statement", "INVALID: not MT940 at all"),
    "mt940/selfprovided_malformed_details.sta": ("control_total", "unbalanced", "MALFORMED: 12345.12 - 233.15 != 12345.98"),
}  # fmt: skip
# Where a library refusing agrees with us: moov_parse_error (not BAI2), and
# moov_sample4_gs_continuations (its totals fail: the library finds 18 records where the
# trailer announces 26, we find credits of 1435.00 where the 100 summary announces 19.12).


def corpus_files(shared_data: Path) -> list[str]:
    return sorted(
        f"{folder}/{path.name}"
        for folder in FOLDERS
        for path in (shared_data / folder).iterdir()
        if path.is_file()
    )


@pytest.mark.corpus
def test_every_corpus_file_reads_as_its_library_reads_it_or_the_difference_is_explained(
    shared_data,
):
    # given every MT940 and BAI2 file of the corpus
    names = corpus_files(shared_data)

    # when both our importer and the format's library read each of them
    outcomes = {name: outcome(shared_data, name) for name in names}

    # then they agree on every statement's transactions, amounts and balances, or disagree
    # exactly as written down
    disagreements = {name: found for name, found in outcomes.items() if found is not None}
    assert disagreements == {
        name: (code, verdict) for name, (code, verdict, _) in DISAGREEMENTS.items()
    }
    assert len(names) - len(disagreements) == 11


def test_every_disagreement_is_one_the_rule_allows():
    # given the disagreements written down
    shapes = {(code is None, verdict) for code, verdict, _ in DISAGREEMENTS.values()}

    # then we refuse only files whose own figures fail or that hold no statement, and a file
    # we read is one the library cannot
    assert shapes == {(False, "unbalanced"), (False, "no_statement"), (True, "refused")}
    assert all(reason for _, _, reason in DISAGREEMENTS.values())


def test_mt940_library_reads_the_padded_us_bank_fixture_as_we_do():
    # given the US bank variant (its 0000 entry date, which the library cannot read, blanked)
    data = fixture_bytes("mt940_padded_entry_date.sta").replace(b"2403120000", b"240312    ")

    # when both read it
    library, ours_read = mt940_library(data), ours(data, "fixture.sta")

    # then the figures are the same
    assert (
        [f.compared() for f in library]
        == [f.compared() for f in ours_read]
        == [
            (
                Decimal("10000.00"),
                Decimal("11233.22"),
                (
                    Decimal("-212.39"),
                    Decimal("1500.00"),
                    Decimal("-75"),
                    Decimal("0.61"),
                    Decimal("20.00"),
                ),
            )
        ]
    )
