"""Saved column mappings for the banks whose exports are in the sample corpus.

A bank account can hold its own mapping (``reconciliation.models.CsvMapping``); these are
the starting points offered by name (``bank_mapping("kbc_be")``).
"""

from __future__ import annotations

from reconciliation.importers.delimited import CsvMapping
from reconciliation.importers.errors import StatementFormatError

BANK_MAPPINGS: dict[str, CsvMapping] = {
    m.name: m
    for m in (
        CsvMapping(
            name="bank_of_ireland",
            date="Date",
            date_format="%d/%m/%Y",
            description=("Details",),
            debit="Debit",
            credit="Credit",
            balance="Balance",
        ),
        CsvMapping(
            name="bunq_nl",
            date="Datum",
            amount="Bedrag",
            decimal_separator=",",
            account_column="Rekening",
            counterparty_account="Tegenrekening",
            counterparty_name="Naam",
            description=("Omschrijving",),
        ),
        CsvMapping(
            name="commerzbank_de",
            delimiter=";",
            date="Buchungstag",
            date_format="%d.%m.%Y",
            value_date="Wertstellung",
            amount="Betrag",
            decimal_separator=",",
            currency_column="Währung",
            description=("Umsatzart", "Buchungstext"),
            account_column="IBAN Auftraggeberkonto",
        ),
        CsvMapping(
            name="kbc_be",
            delimiter=";",
            encoding="cp1252",
            date="Datum",
            date_format="%d/%m/%Y",
            value_date="Valuta",
            amount="Bedrag",
            decimal_separator=",",
            balance="Saldo",
            currency_column="Munt",
            account_column="Rekeningnummer",
            statement_column="Afschriftnummer",
            counterparty_name="Naam tegenpartij",
            counterparty_account="rekeningnummer tegenpartij",
            description=("Omschrijving", "Vrije mededeling", "gestructureerde mededeling"),
        ),
        CsvMapping(
            name="moneta_cz",
            delimiter=";",
            encoding="cp1250",
            date=0,
            date_format="%d.%m.%Y",
            value_date=1,
            amount="Zaúčtovaná částka",
            decimal_separator=",",
            currency_column="Měna účtu",
            account_column="Číslo účtu",
            counterparty_account="Číslo protiúčtu",
            counterparty_name="Název protiúčtu",
            description=("Typ transakce", "Zpráva"),
            bank_reference="Id transakce,",
        ),
        CsvMapping(
            name="monzo_uk",
            date="created",
            date_format="%Y-%m-%d %H:%M:%S %z",
            amount="amount",
            currency_column="currency",
            description=("description", "notes"),
            counterparty_name="description",
            bank_reference="id",
        ),
        CsvMapping(
            name="n26_de",
            date="Datum",
            amount="Betrag (EUR)",
            currency="EUR",
            counterparty_name="Empfänger",
            counterparty_account="Kontonummer",
            description=("Transaktionstyp", "Verwendungszweck"),
        ),
        CsvMapping(
            name="ocbc_sg",
            skip_rows=5,
            date="Transaction date",
            date_format="%d/%m/%Y",
            value_date="Value date",
            debit="Withdrawals (SGD)",
            credit="Deposits (SGD)",
            thousands_separator=",",
            currency="SGD",
            description=("Description",),
            continuation_rows=True,
        ),
        CsvMapping(
            name="rabobank_nl",
            encoding="cp1252",
            date="Datum",
            value_date="Rentedatum",
            amount="Bedrag",
            decimal_separator=",",
            balance="Saldo na trn",
            currency_column="Munt",
            counterparty_account="Tegenrekening IBAN/BBAN",
            counterparty_name="Naam tegenpartij",
            bank_reference="Volgnr",
            description=("Omschrijving-1", "Omschrijving-2", "Omschrijving-3"),
        ),
        CsvMapping(
            name="raiffeisen_at",
            delimiter="\t",
            encoding="cp1252",
            has_header=False,
            date=0,
            date_format="%d.%m.%Y",
            description=(1,),
            value_date=2,
            credit=3,
            debit=4,
            decimal_separator=",",
            currency="EUR",
        ),
        CsvMapping(
            name="sparkasse_de",
            delimiter=";",
            encoding="cp1252",
            date="Buchungstag",
            date_format="%d.%m.%y",
            value_date="Valutadatum",
            amount="Betrag",
            decimal_separator=",",
            currency_column="Waehrung",
            account_column="Auftragskonto",
            counterparty_name="Beguenstigter/Zahlungspflichtiger",
            counterparty_account="Kontonummer",
            description=("Buchungstext", "Verwendungszweck"),
        ),
        CsvMapping(
            name="swedbank_lt",
            date="Date",
            amount="Amount",
            direction="D/K",
            debit_marker="D",
            currency_column="Currency",
            account_column="Account No",
            counterparty_name="Beneficiary",
            description=("Details",),
            bank_reference="Doc. No",
            record_type=1,
            transaction_types=("20",),
            opening_types=("10",),
            closing_types=("86",),
        ),
    )
}


def bank_mapping(name: str) -> CsvMapping:
    try:
        return BANK_MAPPINGS[name]
    except KeyError:
        raise StatementFormatError(
            f"no saved CSV mapping named {name!r} (known: {', '.join(sorted(BANK_MAPPINGS))}).",
            code="bad_mapping",
        ) from None
