"""FX rates: the rate in force on a date, conversion, a clear error when none covers it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.exceptions import DomainError
from core.fx import FxRateMissing, fx_convert, fx_rate_get, fx_rate_set

D = Decimal
pytestmark = pytest.mark.django_db


def test_newest_rate_on_or_before_the_date_is_used() -> None:
    # given
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=date(2026, 3, 1))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.12"), rate_date=date(2026, 3, 3))
    # when / then
    assert fx_rate_get(base="EUR", quote="USD", on_date=date(2026, 3, 2)) == D("1.10")
    assert fx_rate_get(base="EUR", quote="USD", on_date=date(2026, 3, 3)) == D("1.12")
    assert fx_convert(
        amount=D("100.00"), from_currency="EUR", to_currency="USD", on_date=date(2026, 3, 4)
    ) == D("112.00")


def test_inverse_rate_is_used_when_only_the_other_direction_is_quoted() -> None:
    fx_rate_set(base="USD", quote="JPY", rate=D("150"), rate_date=date(2026, 3, 1))
    assert fx_convert(
        amount=D("15000"), from_currency="JPY", to_currency="USD", on_date=date(2026, 3, 1)
    ) == D("100.00")
    assert fx_convert(
        amount=D("10.00"), from_currency="USD", to_currency="JPY", on_date=date(2026, 3, 1)
    ) == D("1500")


def test_conversion_rounds_half_up_to_the_target_currency() -> None:
    fx_rate_set(base="USD", quote="KWD", rate=D("0.30705"), rate_date=date(2026, 3, 1))
    # 10.05 * 0.30705 = 3.0858525 -> 3.086 KWD
    assert fx_convert(
        amount=D("10.05"), from_currency="USD", to_currency="KWD", on_date=date(2026, 3, 1)
    ) == D("3.086")


def test_no_rate_for_the_date_is_a_clear_error() -> None:
    # given a rate only after the date, and one too old to cover it
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=date(2026, 1, 1))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.12"), rate_date=date(2026, 3, 5))
    # when / then
    with pytest.raises(FxRateMissing) as exc:
        fx_rate_get(base="EUR", quote="USD", on_date=date(2026, 3, 1))
    assert str(exc.value) == (
        "No EUR/USD FX rate covers 2026-03-01 (none dated between 2026-02-22 and 2026-03-01)."
    )
    assert exc.value.code == "fx_rate_missing"


def test_same_currency_needs_no_rate() -> None:
    assert fx_rate_get(base="USD", quote="USD", on_date=date(2026, 3, 1)) == 1


@pytest.mark.parametrize("rate", [D("0"), D("-1"), D("NaN")])
def test_bad_rate_is_refused(rate: Decimal) -> None:
    with pytest.raises(DomainError):
        fx_rate_set(base="EUR", quote="USD", rate=rate, rate_date=date(2026, 3, 1))


def test_setting_a_days_rate_twice_replaces_it_and_keeps_history() -> None:
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=date(2026, 3, 1))
    fx = fx_rate_set(base="EUR", quote="USD", rate=D("1.11"), rate_date=date(2026, 3, 1))
    assert fx_rate_get(base="EUR", quote="USD", on_date=date(2026, 3, 1)) == D("1.11")
    assert [h.rate for h in fx.history.order_by("history_id")] == [D("1.10"), D("1.11")]
