"""Fixtures of the reconciliation tests: hand-written statement files and bank accounts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciliation.importers import CsvMapping
from reconciliation.models import BankAccount
from reconciliation.services import bank_account_create

FIXTURES = Path(__file__).parent / "fixtures"

# The mapping of fixtures/good.csv (semicolons, decimal comma, a running balance).
GOOD_CSV_MAPPING = CsvMapping(
    name="fixture",
    delimiter=";",
    date="Date",
    date_format="%d.%m.%Y",
    amount="Amount",
    decimal_separator=",",
    balance="Balance",
    description=("Text",),
    counterparty_name="Counterparty",
    counterparty_account="IBAN",
    currency="EUR",
)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def make_bank_account(finance_admin) -> Callable[..., BankAccount]:
    def make(
        currency: str = "EUR",
        *,
        iban: str = "",
        account_number: str = "",
        name: str = "Operating account",
    ) -> BankAccount:
        return bank_account_create(
            actor=finance_admin,
            name=name,
            currency=currency,
            iban=iban,
            account_number=account_number,
        )

    return make


@pytest.fixture
def eur_account(make_bank_account) -> BankAccount:
    """The account of fixtures/good.sta, interim.sta and good_camt053.xml."""
    return make_bank_account("EUR", iban="DE89 3704 0044 0532 0130 00")
