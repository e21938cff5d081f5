"""Text a spreadsheet opens as data, never as a formula (OWASP "CSV injection"): every CSV
the product writes goes through ``csv_writer`` / ``dict_csv_writer`` (or ``neutralise`` per
cell), every XLSX cell is written as a string cell. A text starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return (or their full-width forms) gets a leading apostrophe; a
plain number ("-12.50") is left as it is, since no spreadsheet runs it."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def neutralise(value: str) -> str:
    """A text cell as data, never a formula."""
    if value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _safe(cell: Any) -> Any:
    return neutralise(cell) if isinstance(cell, str) else cell


class _Writer:
    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([_safe(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class _DictWriter:
    def __init__(self, writer: csv.DictWriter[str]) -> None:
        self._writer = writer

    def writeheader(self) -> Any:
        return self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> Any:
        return self._writer.writerow({key: _safe(cell) for key, cell in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: Any, **options: Any) -> _Writer:
    """``csv.writer`` whose text cells are neutralised."""
    return _Writer(csv.writer(out, **options))


def dict_csv_writer(out: Any, fieldnames: list[str], **options: Any) -> _DictWriter:
    """``csv.DictWriter`` whose text cells are neutralised."""
    return _DictWriter(csv.DictWriter(out, fieldnames=fieldnames, **options))
