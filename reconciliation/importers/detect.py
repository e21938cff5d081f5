"""Which format a file is in, from its content (the file name is only a tie-breaker)."""

from __future__ import annotations

import re

from reconciliation.importers.errors import StatementFormatError
from reconciliation.importers.types import StatementFormat

_CAMT = {
    "BkToCstmrStmt": StatementFormat.CAMT053,
    "BkToCstmrAcctRpt": StatementFormat.CAMT052,
    "BkToCstmrDbtCdtNtfctn": StatementFormat.CAMT054,
}


def detect_format(data: bytes, filename: str = "") -> StatementFormat:
    head = data[:8192].lstrip(b"\xef\xbb\xbf \t\r\n\x00\x01").decode("latin-1")
    upper = head.upper()
    if "OFXHEADER" in upper[:200] or re.match(
        r"\s*(<\?XML[^>]*>\s*)?(<\?OFX[^>]*>\s*)?<OFX>", upper
    ):
        return StatementFormat.OFX
    if head.startswith("<"):
        for container, fmt in _CAMT.items():
            if f"<{container}" in head or f":{container}" in head:
                return fmt
        match = re.search(r"camt\.05([234])", head)
        if match:
            return StatementFormat(f"camt05{match.group(1)}")
        if "<OFX>" in upper:
            return StatementFormat.OFX
        raise StatementFormatError(
            "an XML file that is neither camt.052/053/054 nor OFX.", code="unknown_format", line=1
        )
    if re.match(r"01,[^\r\n]*\r?\n?\s*(02,|$)", head) or (
        head.startswith("01,") and "\n03," in head
    ):
        return StatementFormat.BAI2
    if re.search(r"(^|\n|\{4:\r?\n?):20:", head) or re.search(
        r"(^|\n):(25|28C|60F|61|62F|62M):", head
    ):
        if re.search(r"(^|\n):(34F|13D|90[CD]):", head) and not re.search(r"(^|\n):60[FM]:", head):
            return StatementFormat.MT942
        return StatementFormat.MT940
    name = filename.lower()
    if name.endswith((".csv", ".txt", ".tsv", ".xls")) and (
        "," in head or ";" in head or "\t" in head
    ):
        return StatementFormat.CSV
    raise StatementFormatError(
        "the format cannot be recognised (not MT940/942, camt.05x, OFX or BAI2); "
        "give the format, or a CSV mapping for a CSV export.",
        code="unknown_format",
        line=1,
    )
