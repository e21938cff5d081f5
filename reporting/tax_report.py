"""Tax collected for a period, per tax jurisdiction and rate: what a sales-tax or VAT filing
needs.

Read from the documents, dated as the ledger dates them: issued invoices' lines count on the
issue date, credit notes' lines (negative) on theirs, and a voided invoice's lines again
(negative) on the date its posting was reversed. So the tax of a currency equals the movement
of the tax-payable account in that currency over the same period. Grouped by the customer's
tax jurisdiction (its ``tax_jurisdiction``, else its country), rate and currency, with the
tax in the functional currency at the rate the document was posted at (the invoice's issue
rate, which its credit notes and void use too). Reverse-charge customers are listed apart,
with their net amounts and no tax, as EU filings ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Q

from billing.enums import InvoiceStatus
from billing.models import CreditNoteLine, Customer, InvoiceLine
from core.ledger.models import JournalEntry
from core.money import round_storage
from reporting.report_files import Amount, ReportRow, ReportTable
from reporting.statements import functional_currency, period_check

ZERO = Decimal(0)
NO_JURISDICTION = "(none)"


@dataclass
class TaxRow:
    reverse_charge: bool
    jurisdiction: str
    rate: Decimal
    currency: str
    net: Decimal = ZERO
    tax: Decimal = ZERO
    functional_tax: Decimal = ZERO
    documents: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class TaxCollected:
    date_from: date
    date_to: date
    functional_currency: str
    rows: list[TaxRow]

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per currency: (net, tax) of the taxed rows (reverse charge left out)."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for row in self.rows:
            if row.reverse_charge:
                continue
            net, tax = out.get(row.currency, (ZERO, ZERO))
            out[row.currency] = (net + row.net, tax + row.tax)
        return dict(sorted(out.items()))

    @property
    def functional_total(self) -> Decimal:
        return sum((r.functional_tax for r in self.rows if not r.reverse_charge), ZERO)


def jurisdiction_of(customer: Customer) -> str:
    return customer.tax_jurisdiction or customer.country or NO_JURISDICTION


def _add(
    groups: dict[tuple[bool, str, Decimal, str], TaxRow],
    *,
    customer: Customer,
    rate: Decimal,
    currency: str,
    net: Decimal,
    tax: Decimal,
    fx_rate: Decimal | None,
    document: str,
) -> None:
    key = (customer.reverse_charge, jurisdiction_of(customer), rate.normalize(), currency)
    row = groups.get(key)
    if row is None:
        row = groups[key] = TaxRow(*key)
    row.net += net
    row.tax += tax
    row.functional_tax += round_storage(tax * (fx_rate or Decimal(1)))
    row.documents.add(document)


def _void_dates(entry_ids: Iterable[int]) -> dict[int, date]:
    return dict(
        JournalEntry.objects.filter(reversal_of_id__in=list(entry_ids)).values_list(
            "reversal_of_id", "entry_date"
        )
    )


def tax_collected(*, date_from: date, date_to: date) -> TaxCollected:
    """The tax charged less the tax credited in the period, both days included, per
    (reverse charge, jurisdiction, rate, currency). InvalidPeriod for a bad period."""
    period_check(date_from, date_to, field_from="date_from", field_to="date_to")
    groups: dict[tuple[bool, str, Decimal, str], TaxRow] = {}
    in_period = Q(invoice__issue_date__gte=date_from, invoice__issue_date__lte=date_to)
    lines = (
        InvoiceLine.objects.filter(in_period)
        .exclude(invoice__status=InvoiceStatus.DRAFT)
        .select_related("invoice__customer")
    )
    for line in lines:
        inv = line.invoice
        _add(
            groups,
            customer=inv.customer,
            rate=line.tax_rate,
            currency=line.currency,
            net=line.amount.amount,
            tax=line.tax_amount.amount,
            fx_rate=inv.fx_rate,
            document=inv.number or "",
        )
    # Voids reverse the issue posting on their own date: the lines again, negative.
    voided = {
        entry_id: day
        for entry_id, day in _void_dates(
            InvoiceLine.objects.filter(
                invoice__status=InvoiceStatus.VOID, invoice__ledger_entry__isnull=False
            ).values_list("invoice__ledger_entry_id", flat=True)
        ).items()
        if date_from <= day <= date_to
    }
    for line in InvoiceLine.objects.filter(
        invoice__status=InvoiceStatus.VOID, invoice__ledger_entry_id__in=list(voided)
    ).select_related("invoice__customer"):
        inv = line.invoice
        _add(
            groups,
            customer=inv.customer,
            rate=line.tax_rate,
            currency=line.currency,
            net=-line.amount.amount,
            tax=-line.tax_amount.amount,
            fx_rate=inv.fx_rate,
            document=f"{inv.number} (void)",
        )
    for note_line in CreditNoteLine.objects.filter(
        credit_note__issue_date__gte=date_from, credit_note__issue_date__lte=date_to
    ).select_related("credit_note__customer", "credit_note__invoice"):
        note = note_line.credit_note
        _add(
            groups,
            customer=note.customer,
            rate=note_line.tax_rate,
            currency=note_line.currency,
            net=-note_line.amount.amount,
            tax=-note_line.tax_amount.amount,
            fx_rate=note.invoice.fx_rate,
            document=note.number,
        )
    rows = sorted(
        groups.values(),
        key=lambda r: (r.reverse_charge, r.jurisdiction, r.currency, r.rate),
    )
    return TaxCollected(date_from, date_to, functional_currency(), rows)


def _rate_text(rate: Decimal) -> str:
    percent = (rate * 100).normalize()
    return f"{percent:f}%"


def tax_collected_table(report: TaxCollected) -> ReportTable:
    functional = report.functional_currency
    headers = [
        "Jurisdiction",
        "Rate",
        "Currency",
        "Net amount",
        "Tax",
        f"Tax ({functional})",
        "Documents",
    ]

    def row_cells(row: TaxRow) -> list[Amount | str | int | None]:
        return [
            row.jurisdiction,
            _rate_text(row.rate),
            row.currency,
            Amount(row.net, row.currency),
            Amount(row.tax, row.currency),
            Amount(row.functional_tax, functional),
            len(row.documents),
        ]

    taxed = [r for r in report.rows if not r.reverse_charge]
    reverse = [r for r in report.rows if r.reverse_charge]
    rows: list[ReportRow] = [ReportRow(["Tax charged", "", "", None, None, None, None], "heading")]
    rows += [ReportRow(row_cells(r)) for r in taxed]
    for currency, (net, tax) in report.totals().items():
        rows.append(
            ReportRow(
                [
                    f"Total {currency}",
                    "",
                    currency,
                    Amount(net, currency),
                    Amount(tax, currency),
                    Amount(
                        sum((r.functional_tax for r in taxed if r.currency == currency), ZERO),
                        functional,
                    ),
                    None,
                ],
                "total",
            )
        )
    rows.append(
        ReportRow(
            [
                f"Total tax in {functional}",
                "",
                "",
                None,
                None,
                Amount(report.functional_total, functional),
                None,
            ],
            "total",
        )
    )
    if reverse:
        rows.append(
            ReportRow(
                ["Reverse charge (no tax charged)", "", "", None, None, None, None], "heading"
            )
        )
        rows += [ReportRow(row_cells(r)) for r in reverse]
    return ReportTable(
        title="Tax collected",
        parameters=[
            ("Period", f"{report.date_from.isoformat()} to {report.date_to.isoformat()}"),
            ("Functional currency", functional),
        ],
        headers=headers,
        rows=rows,
        notes=[
            "Invoices count on their issue date, credit notes (negative) on theirs, a voided "
            "invoice (negative) on the day it was voided; the tax of each currency equals the "
            "movement of the tax-payable account for the period. Jurisdiction: the customer's "
            "tax jurisdiction, else its country. Functional amounts at each invoice's issue rate.",
            "Reverse-charge customers account for the VAT themselves: their net amounts are "
            "listed for the filing, with no tax.",
        ],
        filename=f"tax-collected-{report.date_from.isoformat()}-{report.date_to.isoformat()}",
    )
