"""System settings: shipped values, and one clear message per bad value (issue 3, item 3)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from core.system_settings import (
    DEFAULT_PATH,
    SystemSettingsError,
    load_system_settings,
    parse_system_settings,
)

GOOD = """
billing: {currency: USD, tax_rate: 0.0875, payment_terms: 30, late_fee_percentage: 1.5, collections_grace_period: 10}
payment_methods: [credit_card, ach, wire_transfer, cryptocurrency]
integrations: {payment_processors: [stripe, paypal, coinbase_commerce], banking: [plaid, yodlee]}
"""


def test_shipped_file_has_the_architecture_values() -> None:
    # when
    s = load_system_settings(DEFAULT_PATH)
    # then
    assert s.billing.currency == "USD"
    assert s.billing.tax_rate == Decimal("0.0875")
    assert s.billing.payment_terms == 30
    assert s.billing.late_fee_percentage == Decimal("1.5")
    assert s.billing.collections_grace_period == 10
    assert s.payment_methods == ("credit_card", "ach", "wire_transfer", "cryptocurrency")
    assert s.integrations.payment_processors == ("stripe", "paypal", "coinbase_commerce")
    assert s.integrations.banking == ("plaid", "yodlee")


def test_settings_object_is_read_only() -> None:
    s = parse_system_settings(GOOD)
    with pytest.raises(AttributeError):
        s.billing.tax_rate = Decimal("0.5")  # type: ignore[misc]


def test_django_settings_expose_the_validated_object(settings) -> None:
    from core.system_settings import system_settings

    assert system_settings().billing.currency == "USD"
    assert system_settings().functional_currency == "USD"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("currency: USD", "currency: ABC", "billing.currency: unknown ISO 4217 currency 'ABC'"),
        ("tax_rate: 0.0875", "tax_rate: 1.5", "billing.tax_rate: must be between 0 and 1, got 1.5"),
        (
            "tax_rate: 0.0875",
            "tax_rate: -0.1",
            "billing.tax_rate: must be between 0 and 1, got -0.1",
        ),
        ("tax_rate: 0.0875", "tax_rate: lots", "billing.tax_rate: expected a number, got 'lots'"),
        (
            "payment_terms: 30",
            "payment_terms: -5",
            "billing.payment_terms: must not be negative, got -5",
        ),
        (
            "collections_grace_period: 10",
            "collections_grace_period: -1",
            "billing.collections_grace_period: must not be negative, got -1",
        ),
        (
            "late_fee_percentage: 1.5",
            "late_fee_percentage: -2",
            "billing.late_fee_percentage: must be between 0 and 100, got -2",
        ),
        ("ach, ", "ach, cheque_by_pigeon, ", "payment_methods: unknown value 'cheque_by_pigeon'"),
        (
            "coinbase_commerce]",
            "coinbase_commerce, venmo]",
            "integrations.payment_processors: unknown value 'venmo'",
        ),
        (
            "banking: [plaid, yodlee]",
            "banking: [plaid, mx]",
            "integrations.banking: unknown value 'mx'",
        ),
        ("tax_rate: 0.0875, ", "", "billing.tax_rate: missing key"),
        (
            "payment_methods: [credit_card, ach, wire_transfer, cryptocurrency]\n",
            "",
            "payment_methods: missing key",
        ),
        ("banking: [plaid, yodlee]", "", "integrations.banking: missing key"),
    ],
)
def test_bad_value_names_key_and_value(old: str, new: str, message: str) -> None:
    # given
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    # when / then
    with pytest.raises(SystemSettingsError) as exc:
        parse_system_settings(text)
    assert message in str(exc.value)


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(SystemSettingsError) as exc:
        parse_system_settings("billing: {currency: USD\npayment_methods: [", source="broken.yaml")
    assert "broken.yaml: malformed YAML at line" in str(exc.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemSettingsError) as exc:
        load_system_settings(tmp_path / "nope.yaml")
    assert "nope.yaml: cannot read the system settings file" in str(exc.value)


def test_bad_file_stops_start_up_with_one_message(tmp_path: Path) -> None:
    # given a settings file with an unknown currency, named by the environment
    bad = tmp_path / "settings.yaml"
    bad.write_text(GOOD.replace("currency: USD", "currency: ZZZ"))
    env = {**os.environ, "SYSTEM_SETTINGS_FILE": str(bad)}
    # when the product starts
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then it stops, with one line naming the key and the value
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Invalid system settings: billing.currency: unknown ISO 4217 currency 'ZZZ'"
    ]


def test_ledger_and_limits_sections_default_when_absent() -> None:
    # given a file without the optional sections / when parsed
    s = parse_system_settings(GOOD)
    # then the defaults apply
    assert s.ledger.books_start_date.isoformat() == "2000-01-01"
    assert "accounts_receivable" not in s.ledger.manual_posting_roles
    assert "expenses" in s.ledger.manual_posting_roles
    assert (s.limits.document_lines, s.limits.document_days_ahead, s.limits.memo_length) == (
        1000,
        366,
        5000,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("ledger: {books_start_date: yesterday}", "ledger.books_start_date"),
        ("ledger: {manual_posting_roles: [petty_cash]}", "ledger.manual_posting_roles"),
        ("ledger: {lock: true}", "ledger.lock: unknown key"),
        ("limits: {document_lines: 0}", "limits.document_lines"),
        ("limits: {memo_length: '5000'}", "limits.memo_length"),
        ("limits: {lines: 5}", "limits.lines: unknown key"),
    ],
)
def test_bad_ledger_and_limits_values_name_the_key(extra: str, message: str) -> None:
    # given a file with one bad optional value / when parsed / then the key is named
    with pytest.raises(SystemSettingsError, match=re.escape(message)):
        parse_system_settings(GOOD + "\n" + extra + "\n")


def test_autopay_section_defaults_and_reads_days_in_any_order() -> None:
    # given no autopay section, then the defaults; given one, its values (reminders latest
    # first, retries ascending)
    assert parse_system_settings(GOOD).autopay.retry_days == (3, 5, 7)
    s = parse_system_settings(
        GOOD + "\nautopay: {retry_days: [2, 4], window_start_hour: 8, "
        "window_end_hour: 20, card_expiry_reminder_days: [7, 30, 14]}\n"
    )
    assert s.autopay.retry_days == (2, 4)
    assert (s.autopay.window_start_hour, s.autopay.window_end_hour) == (8, 20)
    assert s.autopay.card_expiry_reminder_days == (30, 14, 7)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("autopay: {retry_days: [3, 3]}", "autopay.retry_days: duplicate days"),
        ("autopay: {retry_days: [0, 3]}", "autopay.retry_days: expected a whole number above 0"),
        ("autopay: {retry_days: 3}", "autopay.retry_days: expected a list of days"),
        ("autopay: {window_start_hour: 25}", "autopay.window_start_hour"),
        ("autopay: {window_start_hour: 17, window_end_hour: 9}", "autopay.window_end_hour"),
        ("autopay: {card_expiry_reminder_days: [-7]}", "autopay.card_expiry_reminder_days"),
        ("autopay: {retries: [1]}", "autopay.retries: unknown key"),
    ],
)
def test_bad_autopay_values_name_the_key(extra: str, message: str) -> None:
    with pytest.raises(SystemSettingsError, match=re.escape(message)):
        parse_system_settings(GOOD + "\n" + extra + "\n")


def test_pay_page_section_defaults_to_whole_payments_only() -> None:
    # given no pay_page section: the payer pays all that is due, 10 checkouts an hour
    page = parse_system_settings(GOOD).pay_page
    assert (page.partial_payments, page.minimum_partial, page.checkouts_per_hour) == (
        False,
        Decimal("1"),
        10,
    )
    # given one: its values, the minimum exact
    page = parse_system_settings(
        GOOD + "\npay_page: {partial_payments: true, minimum_partial: 25.10, "
        "checkouts_per_hour: 3}\n"
    ).pay_page
    assert (page.partial_payments, page.minimum_partial, page.checkouts_per_hour) == (
        True,
        Decimal("25.10"),
        3,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("pay_page: {partial_payments: yes please}", "pay_page.partial_payments: expected true"),
        ("pay_page: {minimum_partial: 0}", "pay_page.minimum_partial: must be above 0"),
        ("pay_page: {minimum_partial: abc}", "pay_page.minimum_partial: expected a number"),
        ("pay_page: {checkouts_per_hour: 0}", "pay_page.checkouts_per_hour"),
        ("pay_page: {partial: true}", "pay_page.partial: unknown key"),
    ],
)
def test_bad_pay_page_values_name_the_key(extra: str, message: str) -> None:
    with pytest.raises(SystemSettingsError, match=re.escape(message)):
        parse_system_settings(GOOD + "\n" + extra + "\n")
