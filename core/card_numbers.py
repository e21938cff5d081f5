"""Card numbers (primary account numbers) in text, whatever separates their digits: the one
normaliser behind the API's card guard, the log filter, the task-failure reports and the
imports that mask what a bank sent (PCI DSS; RELIABILITY.md C1).

A card number is a Luhn-valid run of 13 to 19 digits, written whole or in groups. Groups may
be separated by up to three spaces of any kind (non-breaking, thin, figure...), dots, dashes
of any kind, slashes or underscores; full-width and other Unicode digits count as digits. A
group longer than ``MAX_GROUP`` digits is not part of a grouped number (a timestamp's ten
digits before its fraction are not the start of a card number), though it may be one whole.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

CARD_MIN_DIGITS = 13
CARD_MAX_DIGITS = 19
MAX_GROUP = 8
# Between two digit groups (newlines end a number).
_SEPARATOR_CHAR = r"(?:[^\S\r\n]|[._/\-\u00b7\u2010-\u2015\u2212])"
_SEPARATOR = rf"{_SEPARATOR_CHAR}{{1,3}}"
_DIGIT_RUN = re.compile(rf"[0-9]+(?:{_SEPARATOR}[0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_NON_ASCII_DIGIT = re.compile(r"[^\x00-\x7f]")
MASK = "*"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def normalise(text: str) -> str:
    """ASCII digits and spaces for Unicode ones (NFKC: full-width digits, non-breaking and
    other compatibility spaces; then any other decimal digit by its value). ASCII text is
    returned as it is."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)

    def ascii_digit(match: re.Match[str]) -> str:
        char = match.group()
        value = unicodedata.digit(char, None)
        if value is not None and unicodedata.category(char) == "Nd":
            return str(value)
        return " " if char.isspace() else char

    return _NON_ASCII_DIGIT.sub(ascii_digit, text)


def _cards(text: str) -> Iterator[tuple[int, int]]:
    """The spans of the Luhn-valid 13-19 digit candidates of (normalised) ``text``: whole
    runs, and every window of whole groups in a separated run ("4242 4242 4242 4242 123"
    holds a card number followed by a CVC)."""
    for run in _DIGIT_RUN.finditer(text):
        if len(run[0]) < CARD_MIN_DIGITS:
            continue  # fewer characters than a card number has digits
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in _GROUP.finditer(run[0])]
        for i, (start, first_end) in enumerate(groups):
            digits = ""
            for j in range(i, len(groups)):
                begin, end = groups[j]
                if j > i and (end - begin > MAX_GROUP or first_end - start > MAX_GROUP):
                    break
                digits += text[begin:end]
                if len(digits) > CARD_MAX_DIGITS:
                    break
                if len(digits) >= CARD_MIN_DIGITS and luhn_valid(digits):
                    yield start, end


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds what a primary account number looks like."""
    if not text:
        return False
    return next(_cards(normalise(text)), None) is not None


def mask_card_numbers(text: str, *, replacement: str | None = None) -> str:
    """``text`` with every card number in it masked: its digits but the last four as ``*``
    (the form a bank statement or a log may keep), or the whole number replaced by
    ``replacement``. Text without one is returned unchanged (not even normalised)."""
    if not text:
        return text
    normal = normalise(text)
    spans = list(_cards(normal))
    if not spans:
        return text
    if replacement is not None:
        out, last = [], 0
        for start, end in _merged(spans):
            out.append(normal[last:start])
            out.append(replacement)
            last = end
        out.append(normal[last:])
        return "".join(out)
    chars = list(normal)
    for start, end in _merged(spans):
        positions = [k for k in range(start, end) if chars[k].isdigit()]
        for k in positions[:-4]:
            chars[k] = MASK
    return "".join(chars)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# Issuer prefixes and lengths of the card networks, for the one field where a long number is
# expected (a bank account number): there only what a real card number looks like is refused.
_NETWORKS = (
    (re.compile(r"^4"), (13, 16, 19)),
    (re.compile(r"^(5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)"), (16,)),
    (re.compile(r"^3[47]"), (15,)),
    (re.compile(r"^(6011|64[4-9]|65|62)"), (16, 17, 18, 19)),
    (re.compile(r"^35(2[89]|[3-8]\d)"), (16, 17, 18, 19)),
    (re.compile(r"^3(0[0-5]|[689])"), (14, 16, 17, 18, 19)),
    (re.compile(r"^(5[06-9]|6\d)"), (13, 14, 15, 16, 17, 18, 19)),
)
_ONLY_SEPARATED_DIGITS = re.compile(rf"\s*[0-9]+(?:{_SEPARATOR}[0-9]+)*\s*")


def looks_like_card_number(value: str) -> bool:
    """A Luhn-valid number with a card network's prefix and length (separators allowed)."""
    value = normalise(value)
    if not _ONLY_SEPARATED_DIGITS.fullmatch(value):
        return False
    digits = "".join(_GROUP.findall(value))
    if not luhn_valid(digits):
        return False
    return any(p.match(digits) and len(digits) in lengths for p, lengths in _NETWORKS)


def data_contains_card_number(data: Any, *, exempt_keys: frozenset[str] = frozenset()) -> bool:
    """Walk parsed JSON (or form data): keys, strings and numbers. Values under
    ``exempt_keys`` are checked with the stricter ``looks_like_card_number``. Iterative, so a
    body nested thousands of levels deep is walked like any other."""
    pending: list[Any] = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if contains_card_number(str(key)):
                    return True
                if key in exempt_keys and isinstance(value, str | int):
                    if looks_like_card_number(str(value)):
                        return True
                else:
                    pending.append(value)
        elif isinstance(item, list | tuple):
            pending.extend(reversed(item))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float | str) and contains_card_number(str(item)):
            return True
    return False


class CardNumberLogFilter(logging.Filter):
    """Masks card numbers in every log line (a query string, even URL-encoded; a message
    quoting input) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit: left to the handler
            return True
        masked = mask_card_numbers(message)
        if masked is message and ("%" in message or "+" in message):
            # An address as the server logs it: "?q=4242%204242..." or "4242+4242...".
            unquoted = unquote_plus(message)
            if contains_card_number(unquoted):
                masked = mask_card_numbers(unquoted)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
