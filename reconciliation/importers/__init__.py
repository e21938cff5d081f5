"""Bank statement parsers (pure Python, no models): MT940/MT942, camt.052/053/054, OFX/QFX,
BAI2 and mapped CSV, all returning ``ParsedStatement``s and failing only with
``StatementFormatError``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from reconciliation.importers.bai2 import parse_bai2
from reconciliation.importers.camt import parse_camt
from reconciliation.importers.common import check_size
from reconciliation.importers.csv_banks import BANK_MAPPINGS, bank_mapping
from reconciliation.importers.delimited import CsvMapping, parse_csv
from reconciliation.importers.detect import detect_format
from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.fingerprint import line_fingerprints
from reconciliation.importers.mt940 import parse_mt940
from reconciliation.importers.ofx import parse_ofx
from reconciliation.importers.types import ParsedLine, ParsedStatement, StatementFormat

__all__ = [
    "BANK_MAPPINGS",
    "CsvMapping",
    "ParsedLine",
    "ParsedStatement",
    "StatementFormat",
    "StatementFormatError",
    "bank_mapping",
    "detect_format",
    "line_fingerprints",
    "parse_statement_file",
]

logger = logging.getLogger(__name__)

PARSERS: dict[StatementFormat, Callable[[bytes], list[ParsedStatement]]] = {
    StatementFormat.MT940: parse_mt940,
    StatementFormat.MT942: parse_mt940,
    StatementFormat.CAMT053: parse_camt,
    StatementFormat.CAMT052: parse_camt,
    StatementFormat.CAMT054: parse_camt,
    StatementFormat.OFX: parse_ofx,
    StatementFormat.BAI2: parse_bai2,
}
_FAMILIES = {
    StatementFormat.MT940: {StatementFormat.MT940, StatementFormat.MT942},
    StatementFormat.MT942: {StatementFormat.MT940, StatementFormat.MT942},
}


def parse_statement_file(
    data: bytes,
    *,
    format: StatementFormat | str | None = None,
    filename: str = "",
    csv_mapping: CsvMapping | None = None,
    default_currency: str = "",
) -> list[ParsedStatement]:
    """Parse a whole file. Raises StatementFormatError, and nothing else, on any problem."""
    check_size(data)
    try:
        fmt = StatementFormat(format) if format else None
    except ValueError:
        raise StatementFormatError(
            f"unknown format {format!r} (one of {', '.join(f.value for f in StatementFormat)}).",
            code="unknown_format",
        ) from None
    try:
        if fmt is None:
            fmt = (
                StatementFormat.CSV
                if csv_mapping is not None and not _looks_structured(data)
                else detect_format(data, filename)
            )
        if fmt == StatementFormat.CSV:
            if csv_mapping is None:
                raise StatementFormatError(
                    "a CSV file needs a column mapping (saved on the bank account).",
                    code="mapping_required",
                )
            statements = parse_csv(data, csv_mapping, default_currency=default_currency)
        else:
            statements = PARSERS[fmt](data)
            found = {s.format for s in statements}
            allowed = _FAMILIES.get(fmt, {fmt})
            if not found <= allowed:
                raise StatementFormatError(
                    f"the file was sent as {fmt.value} but holds "
                    f"{', '.join(sorted(f.value for f in found))}.",
                    code="format_mismatch",
                )
    except StatementFormatError:
        raise
    except RecursionError:
        raise StatementFormatError("the file is nested too deeply.", code="unreadable") from None
    except Exception as exc:  # a parser bug must still be a clean refusal (B6), and logged
        logger.exception("statement parser failed on %s", filename or "upload")
        raise StatementFormatError(
            f"the file cannot be read ({exc.__class__.__name__}).", code="unreadable"
        ) from None
    return statements


def _looks_structured(data: bytes) -> bool:
    try:
        detect_format(data)
    except StatementFormatError:
        return False
    return True
