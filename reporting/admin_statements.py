"""Financial statements in the workspace: trial balance, profit and loss, balance sheet and
cash-flow statement, each on screen and as a CSV, XLSX or PDF download.

Each statement is built once as a ``reporting.report_files.ReportTable`` from the selectors
of ``reporting.statements`` (and ``core.ledger.selectors.trial_balance``); the screen and the
three downloads are drawn from that table, so they always agree. Who may see them: holders
of ``reporting.view_financial_reports`` (finance_admin, controller, auditor). Mounted by
``BackofficeAdminSite.extra_urls`` as ``admin:reporting_trial_balance``,
``admin:reporting_profit_and_loss``, ``admin:reporting_balance_sheet`` and
``admin:reporting_cash_flow_statement``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from core.admin_confirm import workspace_widgets
from core.admin_site import register_admin_pages
from core.ledger.selectors import trial_balance
from reporting.report_files import (
    FORMATS,
    Amount,
    Cell,
    Format,
    ReportRow,
    ReportTable,
    RowStyle,
    cell_text,
    report_response,
)
from reporting.statements import (
    CASH_FLOW_KINDS,
    Figures,
    InvalidPeriod,
    StatementSection,
    balance_sheet,
    cash_flow_statement,
    fiscal_year_start,
    functional_currency,
    profit_and_loss,
)

PERMISSION = "reporting.view_financial_reports"
TEMPLATE = "reporting/statement.html"


def _date_field(label: str, *, required: bool = True) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=required,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class AsOfForm(forms.Form):
    as_of = _date_field("As of")


class BalanceSheetForm(forms.Form):
    as_of = _date_field("As of")
    compare_as_of = _date_field("Compare with (as of)", required=False)


class PeriodForm(forms.Form):
    date_from = _date_field("From")
    date_to = _date_field("To")


class ComparedPeriodForm(PeriodForm):
    compare_from = _date_field("Compare from", required=False)
    compare_to = _date_field("Compare to", required=False)


# The selectors name the API's parameters; the forms' fields are named date_from/date_to.
_FORM_FIELD = {"from": "date_from", "to": "date_to"}


# ------------------------------------------------------------------------------------ tables


def _period(date_from: date, date_to: date) -> str:
    return f"{date_from.isoformat()} to {date_to.isoformat()}"


def _currencies(figures: Iterable[Figures | None]) -> list[str]:
    return sorted({c for f in figures if f is not None for c in f.amounts})


@dataclass(frozen=True)
class _Columns:
    """The amount columns of a statement: each transaction currency (left out when the only
    one is the functional currency), then the functional total; the same for a comparison."""

    currencies: list[str]
    functional: str
    compared: bool

    def headers(self, label: str, compare_label: str) -> list[str]:
        one = [*self.currencies, f"Total ({self.functional})"]
        if not self.compared:
            return one
        return [f"{h} {label}" for h in one] + [f"{h} {compare_label}" for h in one]

    def cells(self, current: Figures | None, comparison: Figures | None) -> list[Cell]:
        cells = self._one(current)
        if self.compared:
            cells += self._one(comparison)
        return cells

    def _one(self, figures: Figures | None) -> list[Cell]:
        figures = figures or Figures()
        return [
            *(
                Amount(figures.amounts[c], c) if c in figures.amounts else None
                for c in self.currencies
            ),
            Amount(figures.functional, self.functional),
        ]


def _columns(sections: list[StatementSection], compared: bool) -> _Columns:
    functional = functional_currency()
    currencies = _currencies(
        f for s in sections for line in s.lines for f in (line.current, line.comparison)
    )
    if currencies in ([], [functional]):
        currencies = []
    return _Columns(currencies, functional, compared)


def _section_rows(
    section: StatementSection, columns: _Columns, total_label: str
) -> list[ReportRow]:
    width = len(columns.cells(None, None))
    rows = [ReportRow(["", section.title, *([None] * width)], "heading")]
    rows += [
        ReportRow([line.code, line.name, *columns.cells(line.current, line.comparison)])
        for line in section.lines
    ]
    rows.append(
        ReportRow(
            ["", total_label, *columns.cells(section.total, section.comparison_total)], "total"
        )
    )
    return rows


def trial_balance_table(as_of: date) -> ReportTable:
    tb = trial_balance(as_of=as_of)
    functional = functional_currency()
    rows = [
        ReportRow(
            [
                row.account.code,
                row.account.name,
                row.currency,
                Amount(row.debit, row.currency),
                Amount(row.credit, row.currency),
                Amount(row.balance, row.currency),
                Amount(row.functional_debit, functional),
                Amount(row.functional_credit, functional),
            ]
        )
        for row in tb.rows
    ]
    rows += [
        ReportRow(
            [
                "",
                f"Total {currency}",
                currency,
                Amount(debit, currency),
                Amount(credit, currency),
                Amount(debit - credit, currency),
                None,
                None,
            ],
            "total",
        )
        for currency, (debit, credit) in tb.totals.items()
    ]
    fd, fc = tb.functional_totals
    rows.append(
        ReportRow(
            [
                "",
                f"Total in {functional}",
                functional,
                None,
                None,
                None,
                Amount(fd, functional),
                Amount(fc, functional),
            ],
            "total",
        )
    )
    return ReportTable(
        title="Trial balance",
        parameters=[
            ("As of", as_of.isoformat()),
            ("Balanced", "yes" if tb.is_balanced else "NO"),
        ],
        headers=[
            "Code",
            "Account",
            "Currency",
            "Debit",
            "Credit",
            "Balance",
            f"Debit ({functional})",
            f"Credit ({functional})",
        ],
        rows=rows,
        filename=f"trial-balance-{as_of.isoformat()}",
    )


def profit_and_loss_table(
    date_from: date,
    date_to: date,
    compare_from: date | None = None,
    compare_to: date | None = None,
) -> ReportTable:
    pnl = profit_and_loss(date_from, date_to, compare_from, compare_to)
    compared = compare_from is not None and compare_to is not None
    columns = _columns([pnl.income, pnl.expenses], compared)
    net = ReportRow(
        ["", "Net income", *columns.cells(pnl.net_income, pnl.comparison_net_income)], "total"
    )
    parameters = [("Period", _period(date_from, date_to))]
    if compare_from is not None and compare_to is not None:
        parameters.append(("Compared with", _period(compare_from, compare_to)))
    parameters.append(("Functional currency", pnl.functional_currency))
    return ReportTable(
        title="Profit and loss",
        parameters=parameters,
        headers=["Code", "Account", *columns.headers("(period)", "(comparison)")],
        rows=[
            *_section_rows(pnl.income, columns, "Total income"),
            *_section_rows(pnl.expenses, columns, "Total expenses"),
            net,
        ],
        notes=[
            "Income and expense posted in the period, both days included; per transaction "
            f"currency and in {pnl.functional_currency} at the rates the lines were posted at."
        ],
        filename=f"profit-and-loss-{date_from.isoformat()}-{date_to.isoformat()}",
    )


def balance_sheet_table(as_of: date, compare_as_of: date | None = None) -> ReportTable:
    sheet = balance_sheet(as_of, compare_as_of=compare_as_of)
    compared = compare_as_of is not None
    columns = _columns([sheet.assets, sheet.liabilities, sheet.equity], compared)
    parameters = [("As of", as_of.isoformat())]
    if compare_as_of is not None:
        parameters.append(("Compared with", compare_as_of.isoformat()))
    parameters += [
        ("Functional currency", sheet.functional_currency),
        ("Fiscal year starts", sheet.fiscal_year_start.isoformat()),
        ("Balanced", "yes" if sheet.is_balanced else "NO"),
    ]
    return ReportTable(
        title="Balance sheet",
        parameters=parameters,
        headers=[
            "Code",
            "Account",
            *columns.headers(
                f"({as_of.isoformat()})",
                f"({compare_as_of.isoformat()})" if compare_as_of else "",
            ),
        ],
        rows=[
            *_section_rows(sheet.assets, columns, "Total assets"),
            *_section_rows(sheet.liabilities, columns, "Total liabilities"),
            *_section_rows(sheet.equity, columns, "Total equity"),
            ReportRow(
                [
                    "",
                    "Total liabilities and equity",
                    *columns.cells(
                        sheet.liabilities_and_equity, sheet.comparison_liabilities_and_equity
                    ),
                ],
                "total",
            ),
        ],
        notes=[
            "The fiscal year is the calendar year. Income and expense are not yet closed into "
            "equity: 'Retained earnings' is the result of the earlier years, 'Current-year "
            "result' that of the year through the as-of date."
        ],
        filename=f"balance-sheet-{as_of.isoformat()}",
    )


def cash_flow_table(date_from: date, date_to: date) -> ReportTable:
    flow = cash_flow_statement(date_from, date_to)
    currencies = flow.currencies or [functional_currency()]

    def row(label: str, amounts: dict[str, Decimal], style: RowStyle = "") -> ReportRow:
        return ReportRow(
            [label, *(Amount(amounts.get(c, Decimal(0)), c) for c in currencies)],
            style,
        )

    return ReportTable(
        title="Cash-flow statement",
        parameters=[
            ("Period", _period(date_from, date_to)),
            ("Cash accounts", ", ".join(str(a) for a in flow.accounts)),
            ("Method", "Direct: cash movements by kind of counterparty"),
        ],
        headers=["", *currencies],
        rows=[
            row("Opening cash", flow.opening, "total"),
            *(row(line.title, line.amounts) for line in flow.lines),
            row("Net change in cash", flow.net_change, "total"),
            row("Closing cash", flow.closing, "total"),
        ],
        notes=[
            "Processor clearing counts as cash: a customer's card payment is a receipt when "
            "taken, a payout is a transfer between cash accounts, the fee the processor keeps "
            f"is a fee. Kinds: {', '.join(CASH_FLOW_KINDS.values())}."
        ],
        filename=f"cash-flow-{date_from.isoformat()}-{date_to.isoformat()}",
    )


# ------------------------------------------------------------------------------------- views


def _html_cell(cell: Cell, strong: bool) -> str | SafeString:
    text = cell_text(cell)
    if isinstance(cell, Amount):
        text = "-" if not cell.rounded() else text
        html = format_html('<span class="whitespace-nowrap">{}</span>', text)
    else:
        html = format_html("{}", text)
    return format_html("<strong>{}</strong>", html) if strong else html


def _screen_table(table: ReportTable) -> dict[str, Any]:
    return {
        "headers": list(table.headers),
        "rows": [
            [_html_cell(cell, row.style in ("heading", "total")) for cell in row.cells]
            for row in table.rows
        ],
    }


@dataclass(frozen=True)
class StatementPage:
    key: str
    title: str
    form: type[forms.Form]
    # Initial values of the form when the page is first opened.
    initial: Callable[[date], dict[str, date]]
    build: Callable[..., ReportTable]


def _year_to_date(today: date) -> dict[str, date]:
    return {"date_from": fiscal_year_start(today), "date_to": today}


PAGES = {
    "trial_balance": StatementPage(
        "trial_balance",
        "Trial balance",
        AsOfForm,
        lambda today: {"as_of": today},
        lambda d: trial_balance_table(d["as_of"]),
    ),
    "profit_and_loss": StatementPage(
        "profit_and_loss",
        "Profit and loss",
        ComparedPeriodForm,
        _year_to_date,
        lambda d: profit_and_loss_table(
            d["date_from"], d["date_to"], d.get("compare_from"), d.get("compare_to")
        ),
    ),
    "balance_sheet": StatementPage(
        "balance_sheet",
        "Balance sheet",
        BalanceSheetForm,
        lambda today: {"as_of": today},
        lambda d: balance_sheet_table(d["as_of"], d.get("compare_as_of")),
    ),
    "cash_flow_statement": StatementPage(
        "cash_flow_statement",
        "Cash-flow statement",
        PeriodForm,
        _year_to_date,
        lambda d: cash_flow_table(d["date_from"], d["date_to"]),
    ),
}


def statement_view(request: HttpRequest, *, page: StatementPage, site: Any) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    today = timezone.localdate()
    bound = any(name in request.GET for name in page.form.base_fields)
    form = page.form(request.GET if bound else page.initial(today))
    table = None
    if form.is_valid():
        try:
            table = page.build(form.cleaned_data)
        except InvalidPeriod as refused:
            name = _FORM_FIELD.get(refused.field or "", refused.field)
            form.add_error(name if name in form.fields else None, refused.message)
    wanted = request.GET.get("export", "")
    if table is not None and wanted in FORMATS:
        file_format: Format = wanted  # type: ignore[assignment]
        return report_response(table, file_format)
    page_url = reverse(f"admin:reporting_{page.key}")
    query = {
        name: value.isoformat()
        for name, value in (form.cleaned_data if table is not None else {}).items()
        if value
    }
    workspace_widgets(form)
    context = {
        **site.each_context(request),
        "title": page.title,
        "form": form,
        "table": table,
        "screen_table": _screen_table(table) if table is not None else None,
        "downloads": [
            (label, f"{page_url}?{urlencode({**query, 'export': fmt})}")
            for fmt, label in (("csv", "CSV"), ("xlsx", "Excel"), ("pdf", "PDF"))
        ]
        if table is not None
        else [],
    }
    return TemplateResponse(request, TEMPLATE, context)


@register_admin_pages
def statement_urls(site: Any) -> list[URLPattern]:
    """The four statement screens, for ``BackofficeAdminSite.extra_urls``."""

    def view_for(page: StatementPage) -> Callable[[HttpRequest], HttpResponse]:
        def view(request: HttpRequest) -> HttpResponse:
            return statement_view(request, page=page, site=site)

        return view

    return [
        path(
            f"reporting/{key.replace('_', '-')}/",
            site.admin_view(view_for(page)),
            name=f"reporting_{key}",
        )
        for key, page in PAGES.items()
    ]
