"""Money: ISO 4217 minor units, one half-up rule, exact splitting (RELIABILITY.md B3, B4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    InvalidAmount,
    UnknownCurrency,
    allocate,
    check_amount,
    minor_unit_exponent,
    round_money,
    split_evenly,
    to_minor_units,
)

D = Decimal


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3)])
def test_minor_units_follow_iso_4217(currency: str, exponent: int) -> None:
    assert minor_unit_exponent(currency) == exponent


def test_unknown_currency_is_refused_by_name() -> None:
    with pytest.raises(UnknownCurrency, match="'ABC'"):
        minor_unit_exponent("ABC")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("10.005", "USD", "10.01"),
        ("10.0049", "USD", "10.00"),
        ("-10.005", "USD", "-10.01"),
        ("1999.5", "JPY", "2000"),
        ("1999.49", "JPY", "1999"),
        ("18.6005", "KWD", "18.601"),
        ("18.6004", "KWD", "18.600"),
    ],
)
def test_round_money_is_half_up_to_the_minor_unit(
    amount: str, currency: str, expected: str
) -> None:
    result = round_money(D(amount), currency)
    assert result == D(expected)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [("35.20", "USD", 3520), ("1999", "JPY", 1999), ("18.600", "KWD", 18600), ("0.01", "USD", 1)],
)
def test_B3_minor_units_sent_to_processors(amount: str, currency: str, units: int) -> None:
    assert to_minor_units(D(amount), currency) == units


def test_B3_amount_finer_than_the_currency_is_refused_not_rounded() -> None:
    with pytest.raises(InvalidAmount):
        to_minor_units(D("10.5"), "JPY")


@pytest.mark.parametrize(
    ("amount", "currency"), [("0.001", "USD"), ("10.5", "JPY"), ("NaN", "USD"), ("Infinity", "USD")]
)
def test_check_amount_refuses_what_the_currency_cannot_hold(amount: str, currency: str) -> None:
    with pytest.raises(InvalidAmount):
        check_amount(D(amount), currency)


def test_allocate_uses_largest_remainder() -> None:
    # given 100.00 over three equal parts
    # when
    parts = allocate(D("100.00"), [1, 1, 1], "USD")
    # then the extra cent goes to the first part, and nothing is lost
    assert parts == [D("33.34"), D("33.33"), D("33.33")]


def test_allocate_by_weights_and_in_jpy() -> None:
    assert allocate(D("1000"), [D("1"), D("2")], "JPY") == [D("333"), D("667")]
    assert split_evenly(D("-0.05"), 2, "USD") == [D("-0.03"), D("-0.02")]


currencies = st.sampled_from(["USD", "JPY", "KWD", "EUR"])


@given(
    currency=currencies,
    units=st.integers(min_value=-(10**25), max_value=10**25),
    weights=st.lists(
        st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False),
        min_size=1,
        max_size=40,
    ).filter(lambda ws: sum(ws) > 0),
)
def test_B4_allocation_of_any_amount_sums_back_exactly(
    currency: str, units: int, weights: list[Decimal]
) -> None:
    # given any amount in whole minor units
    exponent = minor_unit_exponent(currency)
    total = D(units).scaleb(-exponent)
    # when it is split over any weights
    parts = allocate(total, weights, currency)
    # then the parts sum back exactly, each in whole minor units, none off its share by a unit
    assert sum(parts, D(0)) == total
    assert len(parts) == len(weights)
    unit = D(1).scaleb(-exponent)
    weight_sum = sum(weights, D(0))
    for part, weight in zip(parts, weights, strict=True):
        assert part == round_money(part, currency)
        assert abs(part - total * weight / weight_sum) < unit
        if weight == 0:
            assert part == 0


@given(
    currency=currencies, units=st.integers(min_value=0, max_value=10**15), parts=st.integers(1, 120)
)
def test_B4_installments_differ_by_at_most_one_minor_unit(
    currency: str, units: int, parts: int
) -> None:
    total = D(units).scaleb(-minor_unit_exponent(currency))
    result = split_evenly(total, parts, currency)
    assert sum(result, D(0)) == total
    assert max(result) - min(result) <= D(1).scaleb(-minor_unit_exponent(currency))
