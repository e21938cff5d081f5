"""Pure pricing: price types, tiers, periods, proration."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.pricing import PricingError, add_months, period_end, price_amount, prorate

D = Decimal
TIERS = [
    {"up_to": 100, "unit_amount": "0.10", "flat_amount": "0"},
    {"up_to": 1000, "unit_amount": "0.05", "flat_amount": "2.00"},
    {"up_to": None, "unit_amount": "0.01", "flat_amount": "0"},
]


@pytest.mark.parametrize(
    ("type_", "quantity", "expected"),
    [
        ("flat", "7", "49.00"),
        ("per_unit", "7", "343.00"),
        ("package", "0", "0"),
        ("package", "1", "49.00"),
        ("package", "10", "49.00"),
        ("package", "11", "98.00"),
    ],
)
def test_flat_per_unit_and_package(type_: str, quantity: str, expected: str) -> None:
    amount = price_amount(type=type_, quantity=D(quantity), unit_amount=D("49.00"), package_size=10)
    assert amount == D(expected)


@pytest.mark.parametrize(
    ("quantity", "graduated", "volume"),
    [
        ("0", "0", "0"),
        ("50", "5.00", "5.00"),  # 50 x 0.10
        ("100", "10.00", "10.00"),
        ("101", "12.05", "7.05"),  # 10 + 2 + 0.05 | 101 x 0.05 + 2
        ("1000", "57.00", "52.00"),  # 10 + 2 + 900 x 0.05 | 1000 x 0.05 + 2
        ("1500", "62.00", "15.00"),  # 57 + 500 x 0.01 | 1500 x 0.01
    ],
)
def test_tiered_graduated_and_volume(quantity: str, graduated: str, volume: str) -> None:
    q = D(quantity)
    assert price_amount(type="tiered_graduated", quantity=q, tiers=TIERS) == D(graduated)
    assert price_amount(type="tiered_volume", quantity=q, tiers=TIERS) == D(volume)


def test_tiers_must_end_open_and_increase() -> None:
    with pytest.raises(PricingError, match="open-ended"):
        price_amount(type="tiered_volume", quantity=D(1), tiers=TIERS[:2])
    with pytest.raises(PricingError, match="increasing"):
        price_amount(type="tiered_volume", quantity=D(1), tiers=[TIERS[1], TIERS[0], TIERS[2]])


@pytest.mark.parametrize(
    ("start", "interval", "anchor", "end"),
    [
        (date(2026, 1, 31), "month", 31, date(2026, 2, 28)),
        (date(2026, 2, 28), "month", 31, date(2026, 3, 31)),
        (date(2028, 1, 31), "month", 31, date(2028, 2, 29)),
        (date(2026, 11, 15), "quarter", 15, date(2027, 2, 15)),
        (date(2026, 3, 1), "year", 1, date(2027, 3, 1)),
        (date(2028, 2, 29), "year", 29, date(2029, 2, 28)),
    ],
)
def test_periods_keep_their_anchor_day(start, interval, anchor, end) -> None:
    assert period_end(start, interval, anchor) == end


def test_add_months_crosses_years() -> None:
    assert add_months(date(2026, 12, 15), 1, 15) == date(2027, 1, 15)
    assert add_months(date(2026, 1, 15), 25, 15) == date(2028, 2, 15)


def test_prorate_is_exact_to_the_day() -> None:
    assert prorate(D("30.00"), days_used=10, days_in_period=30) == D("10.00")
    assert prorate(D("100.00"), days_used=1, days_in_period=31) * 31 == D("100.00")
    with pytest.raises(PricingError):
        prorate(D("1"), days_used=31, days_in_period=30)


@pytest.mark.parametrize(
    "tiers",
    [
        [{"up_to": None, "unit_amount": "abc"}],
        ["not a tier"],
        [{"up_to": None, "unit_amount": "-1"}],
        "tiers",
    ],
)
def test_malformed_tiers_are_a_pricing_error(tiers) -> None:
    with pytest.raises(PricingError):
        price_amount(type="tiered_volume", quantity=D(1), tiers=tiers)
