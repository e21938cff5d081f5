"""The one card-number normaliser (issue 15 hole 3, RELIABILITY.md C1): every way of writing a
card number's digits is found, numbers that are not card numbers are left alone, masking
keeps the last four digits, and every log line goes out masked."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.card_numbers import (
    CardNumberLogFilter,
    contains_card_number,
    luhn_valid,
    mask_card_numbers,
)

PAN = "4242424242424242"
AMEX = "378282246310005"


def grouped(number: str, sep: str, sizes: tuple[int, ...] = (4, 4, 4, 4)) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at : at + size])
        at += size
    return sep.join(parts)


def fullwidth(text: str) -> str:
    return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in text)


def arabic_indic(text: str) -> str:
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in text)


# Every way a probe (or a person) writes the digits apart.
VARIANTS = {
    "whole": PAN,
    "one space": grouped(PAN, " "),
    "two spaces": grouped(PAN, "  "),
    "dots": grouped(PAN, "."),
    "dashes": grouped(PAN, "-"),
    "en dashes": grouped(PAN, "\u2013"),
    "non-breaking spaces": grouped(PAN, "\u00a0"),
    "narrow no-break spaces": grouped(PAN, "\u202f"),
    "figure spaces": grouped(PAN, "\u2007"),
    "tabs": grouped(PAN, "\t"),
    "slashes": grouped(PAN, "/"),
    "underscores": grouped(PAN, "_"),
    "space dash space": grouped(PAN, " - "),
    "every digit spaced": " ".join(PAN),
    "two eights": grouped(PAN, " ", (8, 8)),
    "amex 4-6-5": grouped(AMEX, " ", (4, 6, 5)),
    "full-width digits": fullwidth(PAN),
    "arabic-indic digits": arabic_indic(grouped(PAN, " ")),
    "in a sentence": f"card {grouped(PAN, '.')} exp 12/30",
    "followed by a cvc": f"{grouped(PAN, ' ')} 123",
    "json number": '{"n": 4242424242424242}',
}


@pytest.mark.parametrize("text", list(VARIANTS.values()), ids=list(VARIANTS))
def test_every_way_of_writing_the_digits_is_found(text: str) -> None:
    assert contains_card_number(text)
    masked = mask_card_numbers(text)
    assert not contains_card_number(masked)
    assert "*" in masked


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn
        "424242424242",  # 12 digits
        "2026-01-15",
        "amount 1234567.89",
        "INV-2026-000123",
        "1733600000.100007",  # a timestamp with its fraction: 16 digits, Luhn-valid
        "1733600000 100007",
        "+1 415 555 0100",
        "4242 4242\n4242 4242",  # a number does not run over a line
        "",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert luhn_valid("1733600000100007")  # the timestamp case is a real trap
    assert not contains_card_number(text)
    assert mask_card_numbers(text) is text


def test_masking_keeps_only_the_last_four_and_the_rest_of_the_text() -> None:
    assert mask_card_numbers(f"Card payment {grouped(PAN, ' ')} Acme") == (
        "Card payment **** **** **** 4242 Acme"
    )
    assert mask_card_numbers(f"a {PAN} b", replacement="[x]") == "a [x] b"


@given(
    prefix=st.text(alphabet="abc xyz:-", max_size=10),
    sep=st.sampled_from([" ", "  ", ".", "-", "\u00a0", "/", "_", "\u2013", ""]),
    suffix=st.text(alphabet="abc xyz:-", max_size=10),
)
def test_a_grouped_card_number_in_any_text_is_found_and_masked(prefix, sep, suffix) -> None:
    text = f"{prefix} {grouped(PAN, sep)} {suffix}"
    assert contains_card_number(text)
    assert not contains_card_number(mask_card_numbers(text))


def test_the_log_filter_masks_a_query_string_in_a_server_line() -> None:
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /admin/billing/customer/?q={grouped(PAN, '%20')} HTTP/1.1", 200, 512),
        None,
    )
    assert CardNumberLogFilter().filter(record)
    assert PAN[:12] not in record.getMessage().replace("%20", "")
    assert "4242" in record.getMessage()


def test_every_log_handler_we_configure_masks(caplog) -> None:
    # the development server's request lines and everything else go through the filter
    for name in ("django.server", ""):
        handlers = logging.getLogger(name).handlers or logging.getLogger().handlers
        console = [h for h in handlers if isinstance(h, logging.StreamHandler)]
        assert console, name
        assert any(isinstance(f, CardNumberLogFilter) for h in console for f in h.filters)
