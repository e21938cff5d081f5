"""More report screens of the workspace, each downloadable as CSV, XLSX and PDF:

- ``admin:reporting_account_statement`` (``customer_id`` in the URL): a customer's statement
  of account for a period (``reporting.account_statement``), its PDF in the invoice's look,
  and "Email to the customer". Seen with ``billing.view_customer``; emailed with
  ``billing.record_payment`` (the people who deal with customers: AR clerks and finance
  admins; auditors and controllers read, they do not write to customers).
- ``admin:reporting_tax_collected``: tax per jurisdiction and rate (``reporting.tax_report``).
- ``admin:reporting_payment_success``: processor charges' success by processor, method,
  month, and the decline codes.
- ``admin:reporting_kpi_history``: the daily KPI snapshots of chosen KPIs, with a line chart.
- ``admin:reporting_ar_aging_download`` / ``admin:reporting_ap_aging_download``: the aging
  summary of ``reporting.admin_aging`` as CSV, XLSX or PDF.

Financial reports (tax, payment success, KPI history) need
``reporting.view_financial_reports``; the aging downloads the aging screen's own permission.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from billing.models.processors import AttemptStatus
from core.admin_confirm import workspace_widgets
from core.admin_site import register_admin_pages
from core.aging import BUCKETS
from core.exceptions import DomainError, NotFound
from core.money import round_money
from reporting.account_statement import (
    account_statement,
    account_statement_email,
    customer_for_statement,
    statement_pdf,
    statement_table,
)
from reporting.admin_aging import BUCKET_LABELS, PAYABLES, RECEIVABLES, AgingSide, aging_by_party
from reporting.admin_statements import PeriodForm, _screen_table
from reporting.kpis import KPIS, KpiUnit, attempts_started
from reporting.models import KpiSnapshot
from reporting.report_files import (
    FORMATS,
    Amount,
    Cell,
    Format,
    ReportRow,
    ReportTable,
    report_response,
)
from reporting.statements import InvalidPeriod, fiscal_year_start, period_check
from reporting.tax_report import tax_collected, tax_collected_table

FINANCIAL = "reporting.view_financial_reports"
STATEMENT_VIEW = "billing.view_customer"
STATEMENT_EMAIL = "billing.record_payment"
TEMPLATE = "reporting/reports_screen.html"
STATEMENT_TEMPLATE = "reporting/account_statement.html"
SERIES_COLORS = ("#2563eb", "#9333ea", "#0d9488", "#db2777", "#65a30d", "#ea580c", "#475569")


def _wanted_format(request: HttpRequest) -> Format | None:
    wanted = request.GET.get("export", "")
    if wanted in FORMATS:
        return wanted  # type: ignore[return-value]
    return None


def _downloads(url: str, query: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (label, f"{url}?{urlencode({**query, 'export': fmt}, doseq=True)}")
        for fmt, label in (("csv", "CSV"), ("xlsx", "Excel"), ("pdf", "PDF"))
    ]


def _query(cleaned: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in cleaned.items():
        if isinstance(value, date):
            out[name] = value.isoformat()
        elif value:
            out[name] = value
    return out


def _refused(form: forms.Form, refused: DomainError) -> None:
    name = refused.field if refused.field in form.fields else None
    form.add_error(name, refused.message)


# ------------------------------------------------------------------------ payment success


@dataclass(frozen=True, slots=True)
class SuccessLine:
    group: str
    key: str
    attempted: int
    succeeded: int
    failed: int
    unknown: int

    @property
    def rate(self) -> Decimal | None:
        if not self.attempted:
            return None
        return (Decimal(self.succeeded) * 100 / Decimal(self.attempted)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )


@dataclass(frozen=True)
class PaymentSuccessReport:
    date_from: date
    date_to: date
    total: SuccessLine
    by_processor: list[SuccessLine]
    by_method: list[SuccessLine]
    by_month: list[SuccessLine]
    # (failure code, failed attempts), most frequent first.
    decline_codes: list[tuple[str, int]]


_COUNTS = {
    "n": Count("pk"),
    "ok": Count("pk", filter=Q(status=AttemptStatus.SUCCEEDED)),
    "failed": Count("pk", filter=Q(status=AttemptStatus.FAILED)),
    "unknown": Count("pk", filter=Q(status=AttemptStatus.UNKNOWN)),
}


def payment_success_report(*, date_from: date, date_to: date) -> PaymentSuccessReport:
    """Success of processor charges started in the period (both days included)."""
    period_check(date_from, date_to, field_from="date_from", field_to="date_to")
    qs = attempts_started(date_from, date_to)

    def line(group: str, key: str, row: dict[str, Any]) -> SuccessLine:
        return SuccessLine(group, key, row["n"], row["ok"], row["failed"], row["unknown"])

    def split(group: str, field: str) -> list[SuccessLine]:
        rows = qs.values(field).annotate(**_COUNTS).order_by(field)
        return [line(group, str(r[field] or "(none)"), r) for r in rows]

    months = (
        qs.annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(**_COUNTS)
        .order_by("month")
    )
    codes = (
        qs.filter(status=AttemptStatus.FAILED)
        .values("failure_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "failure_code")
    )
    return PaymentSuccessReport(
        date_from=date_from,
        date_to=date_to,
        total=line("All", "All charges", qs.aggregate(**_COUNTS)),
        by_processor=split("Processor", "processor"),
        by_method=split("Method", "payment_method__type"),
        by_month=[
            line(
                "Month",
                (m["month"].date() if isinstance(m["month"], datetime) else m["month"]).strftime(
                    "%Y-%m"
                ),
                m,
            )
            for m in months
        ],
        decline_codes=[(r["failure_code"] or "(no code)", r["n"]) for r in codes],
    )


def _percent(value: Decimal | None) -> str:
    return "-" if value is None else f"{value}%"


def payment_success_table(report: PaymentSuccessReport) -> ReportTable:
    def row(item: SuccessLine, style: Any = "") -> ReportRow:
        return ReportRow(
            [
                item.key,
                item.attempted,
                item.succeeded,
                item.failed,
                item.unknown,
                _percent(item.rate),
            ],
            style,
        )

    rows: list[ReportRow] = [row(report.total, "total")]
    for title, items in (
        ("By processor", report.by_processor),
        ("By payment method", report.by_method),
        ("By month", report.by_month),
    ):
        rows.append(ReportRow([title, None, None, None, None, ""], "heading"))
        rows += [row(i) for i in items]
    failed = sum(n for _, n in report.decline_codes)
    rows.append(
        ReportRow(
            ["Decline codes (share of failed charges)", None, None, None, None, ""], "heading"
        )
    )
    rows += [
        ReportRow(
            [
                code,
                None,
                None,
                n,
                None,
                _percent((Decimal(n) * 100 / Decimal(failed)).quantize(Decimal("0.1"))),
            ]
        )
        for code, n in report.decline_codes
    ]
    return ReportTable(
        title="Payment success rates",
        parameters=[
            ("Period", f"{report.date_from.isoformat()} to {report.date_to.isoformat()}"),
            ("Success rate", _percent(report.total.rate)),
        ],
        headers=["", "Attempted", "Succeeded", "Failed", "Unknown", "Success rate"],
        rows=rows,
        notes=[
            "Charges sent to a payment processor and started in the period; pending charges "
            "are left out, charges the processor did not answer count as attempted and "
            "unknown. Success rate: succeeded / attempted x 100."
        ],
        filename=f"payment-success-{report.date_from.isoformat()}-{report.date_to.isoformat()}",
    )


# ---------------------------------------------------------------------------- KPI history


class KpiHistoryForm(PeriodForm):
    kpis = forms.MultipleChoiceField(
        label="KPIs",
        choices=[(code, kpi.label) for code, kpi in KPIS.items()],
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )


def kpi_history_rows(*, kpis: list[str], date_from: date, date_to: date) -> list[KpiSnapshot]:
    """The snapshots of ``kpis`` in the period, per KPI and currency in date order."""
    period_check(date_from, date_to, field_from="date_from", field_to="date_to")
    unknown = [k for k in kpis if k not in KPIS]
    if unknown:
        raise NotFound(f"Unknown KPI {unknown[0]!r}.", field="kpis")
    return list(
        KpiSnapshot.objects.filter(kpi__in=kpis, date__gte=date_from, date__lte=date_to).order_by(
            "kpi", "currency", "date"
        )
    )


def _kpi_value(row: KpiSnapshot) -> Cell:
    unit = KPIS[row.kpi].unit
    if unit == KpiUnit.MONEY and row.currency:
        return Amount(row.value, row.currency)
    if unit == KpiUnit.COUNT:
        return int(row.value)
    if unit == KpiUnit.PERCENT:
        return f"{row.value.quantize(Decimal('0.01'))}%"
    return f"{row.value.quantize(Decimal('0.01'))}"


def kpi_history_table(
    rows: list[KpiSnapshot], *, kpis: list[str], date_from: date, date_to: date
) -> ReportTable:
    return ReportTable(
        title="KPI history",
        parameters=[
            ("Period", f"{date_from.isoformat()} to {date_to.isoformat()}"),
            ("KPIs", ", ".join(KPIS[k].label for k in kpis)),
        ],
        headers=["Date", "KPI", "Currency", "Value"],
        rows=[ReportRow([r.date, KPIS[r.kpi].label, r.currency, _kpi_value(r)]) for r in rows],
        notes=[
            "One snapshot per KPI, currency and day, as reported that day "
            "(reporting.kpi_snapshot); days without a snapshot are not shown."
        ],
        filename=f"kpi-history-{date_from.isoformat()}-{date_to.isoformat()}",
    )


def kpi_history_chart(rows: list[KpiSnapshot]) -> str:
    """A Chart.js line chart (drawn by static/reporting/dashboard.js), values as decimal
    strings: one line per KPI and currency."""
    labels = sorted({r.date.isoformat() for r in rows})
    series: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        value = round_money(r.value, r.currency) if r.currency else r.value
        series.setdefault((r.kpi, r.currency), {})[r.date.isoformat()] = str(value)
    datasets = [
        {
            "label": f"{KPIS[kpi].label}{f' ({currency})' if currency else ''}",
            "data": [points.get(day) for day in labels],
            "borderColor": SERIES_COLORS[i % len(SERIES_COLORS)],
            "backgroundColor": SERIES_COLORS[i % len(SERIES_COLORS)],
            "borderWidth": 2,
            "pointRadius": 1,
            "spanGaps": True,
        }
        for i, ((kpi, currency), points) in enumerate(sorted(series.items()))
    ]
    return json.dumps(
        {
            "type": "line",
            "data": {"labels": labels, "datasets": datasets},
            "options": {
                "responsive": True,
                "maintainAspectRatio": False,
                "animation": False,
                "interaction": {"mode": "index", "intersect": False},
                "plugins": {"legend": {"display": True, "position": "bottom"}},
                "scales": {"x": {"ticks": {"autoSkip": True, "maxRotation": 0}}, "y": {}},
            },
        }
    )


# ---------------------------------------------------------------------------------- aging


def aging_table(side: AgingSide, *, as_of: date) -> ReportTable:
    """The aging summary by party (``aging_by_party``) with per-currency totals."""
    rows = aging_by_party(side, as_of=as_of)
    out = [
        ReportRow(
            [
                row.name,
                row.currency,
                *(Amount(row.buckets[b], row.currency) for b in BUCKETS),
                Amount(row.total, row.currency),
                row.items,
            ]
        )
        for row in rows
    ]
    totals: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        per = totals.setdefault(row.currency, dict.fromkeys([*BUCKETS, "total"], Decimal(0)))
        for b in BUCKETS:
            per[b] += row.buckets[b]
        per["total"] += row.total
        counts[row.currency] = counts.get(row.currency, 0) + row.items
    out += [
        ReportRow(
            [
                f"Total {currency}",
                currency,
                *(Amount(per[b], currency) for b in BUCKETS),
                Amount(per["total"], currency),
                counts[currency],
            ],
            "total",
        )
        for currency, per in sorted(totals.items())
    ]
    return ReportTable(
        title=side.title,
        parameters=[("As of", as_of.isoformat())],
        headers=[side.party, "Currency", *(BUCKET_LABELS[b] for b in BUCKETS), "Total", "Items"],
        rows=out,
        notes=["Amounts still due on the date, in each item's currency, by days past due."],
        filename=f"{side.key}-aging-{as_of.isoformat()}",
    )


class AsOfForm(forms.Form):
    as_of = forms.DateField(label="As of", required=False)


def aging_download_view(request: HttpRequest, *, side: AgingSide) -> HttpResponse:
    if not request.user.has_perm(side.permission):
        raise PermissionDenied
    form = AsOfForm(request.GET)
    if not form.is_valid():
        return HttpResponse(
            "The as-of date is not a date (YYYY-MM-DD).", status=400, content_type="text/plain"
        )
    as_of = form.cleaned_data["as_of"] or timezone.localdate()
    file_format = _wanted_format(request) or "xlsx"
    return report_response(aging_table(side, as_of=as_of), file_format)


# ---------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class ReportPage:
    key: str
    title: str
    form: type[forms.Form]
    initial: Callable[[date], dict[str, Any]]
    build: Callable[[dict[str, Any]], tuple[ReportTable, str]]


def _year_to_date(today: date) -> dict[str, Any]:
    return {"date_from": fiscal_year_start(today), "date_to": today}


def _tax(data: dict[str, Any]) -> tuple[ReportTable, str]:
    report = tax_collected(date_from=data["date_from"], date_to=data["date_to"])
    return tax_collected_table(report), ""


def _payments(data: dict[str, Any]) -> tuple[ReportTable, str]:
    report = payment_success_report(date_from=data["date_from"], date_to=data["date_to"])
    return payment_success_table(report), ""


def _kpi_history(data: dict[str, Any]) -> tuple[ReportTable, str]:
    kpis = list(data["kpis"])
    rows = kpi_history_rows(kpis=kpis, date_from=data["date_from"], date_to=data["date_to"])
    table = kpi_history_table(rows, kpis=kpis, date_from=data["date_from"], date_to=data["date_to"])
    return table, kpi_history_chart(rows) if rows else ""


PAGES = {
    "tax_collected": ReportPage("tax_collected", "Tax collected", PeriodForm, _year_to_date, _tax),
    "payment_success": ReportPage(
        "payment_success",
        "Payment success rates",
        PeriodForm,
        lambda today: {"date_from": today - timedelta(days=89), "date_to": today},
        _payments,
    ),
    "kpi_history": ReportPage(
        "kpi_history",
        "KPI history",
        KpiHistoryForm,
        lambda today: {
            "date_from": today - timedelta(days=89),
            "date_to": today,
            "kpis": ["ar", "dso_30"],
        },
        _kpi_history,
    ),
}


def report_view(request: HttpRequest, *, page: ReportPage, site: Any) -> HttpResponse:
    if not request.user.has_perm(FINANCIAL):
        raise PermissionDenied
    bound = any(name in request.GET for name in page.form.base_fields)
    form = page.form(request.GET if bound else page.initial(timezone.localdate()))
    table, chart = None, ""
    if form.is_valid():
        try:
            table, chart = page.build(form.cleaned_data)
        except DomainError as refused:
            _refused(form, refused)
    file_format = _wanted_format(request)
    if table is not None and file_format is not None:
        return report_response(table, file_format)
    query = _query(form.cleaned_data) if table is not None else {}
    workspace_widgets(form)
    context = {
        **site.each_context(request),
        "title": page.title,
        "form": form,
        "table": table,
        "screen_table": _screen_table(table) if table is not None else None,
        "chart": chart,
        "downloads": _downloads(reverse(f"admin:reporting_{page.key}"), query)
        if table is not None
        else [],
    }
    return TemplateResponse(request, TEMPLATE, context, status=200 if form.is_valid() else 400)


def account_statement_view(request: HttpRequest, customer_id: int, *, site: Any) -> HttpResponse:
    """A customer's statement: GET shows it or downloads it, POST emails its PDF."""
    if not request.user.has_perm(STATEMENT_VIEW):
        raise PermissionDenied
    page_url = reverse("admin:reporting_account_statement", args=[customer_id])
    today = timezone.localdate()
    context: dict[str, Any] = {**site.each_context(request), "title": "Statement of account"}
    try:
        customer = customer_for_statement(customer_id)
    except NotFound as missing:
        context.update({"missing": missing.message, "form": None})
        return TemplateResponse(request, STATEMENT_TEMPLATE, context, status=404)
    emailing = request.method == "POST"
    if emailing and not request.user.has_perm(STATEMENT_EMAIL):
        raise PermissionDenied
    data = request.POST if emailing else request.GET
    bound = any(name in data for name in PeriodForm.base_fields)
    form = PeriodForm(
        data if bound else {"date_from": today - timedelta(days=90), "date_to": today}
    )
    statement = None
    if form.is_valid():
        try:
            statement = account_statement(
                customer_id=customer.pk,
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
            )
        except InvalidPeriod as refused:
            _refused(form, refused)
    query = _query(form.cleaned_data) if statement is not None else {}
    if emailing and statement is not None:
        try:
            sent_to = account_statement_email(statement)
        except DomainError as refused:
            messages.error(request, refused.message)
        else:
            messages.success(request, f"The statement was emailed to {sent_to}.")
        return HttpResponseRedirect(f"{page_url}?{urlencode(query)}")
    file_format = _wanted_format(request)
    if statement is not None and file_format == "pdf":
        response = HttpResponse(statement_pdf(statement), content_type="application/pdf")
        stem = statement_table(statement).file_stem()
        response["Content-Disposition"] = f'attachment; filename="{stem}.pdf"'
        return response
    table = statement_table(statement) if statement is not None else None
    if table is not None and file_format is not None:
        return report_response(table, file_format)
    workspace_widgets(form)
    context.update(
        {
            "title": f"Statement of account: {customer.name}",
            "customer": customer,
            "customer_url": reverse("admin:billing_customer_change", args=[customer.pk]),
            "form": form,
            "statement": statement,
            "table": table,
            "screen_table": _screen_table(table) if table is not None else None,
            "downloads": _downloads(page_url, query) if table is not None else [],
            "can_email": request.user.has_perm(STATEMENT_EMAIL) and bool(customer.email),
            "query": query,
        }
    )
    return TemplateResponse(
        request, STATEMENT_TEMPLATE, context, status=200 if statement is not None else 400
    )


@register_admin_pages
def report_urls(site: Any) -> list[URLPattern]:
    """The screens of this module, for ``BackofficeAdminSite.extra_urls``."""

    def view_for(page: ReportPage) -> Callable[[HttpRequest], HttpResponse]:
        def view(request: HttpRequest) -> HttpResponse:
            return report_view(request, page=page, site=site)

        return view

    def statement(request: HttpRequest, customer_id: int) -> HttpResponse:
        return account_statement_view(request, customer_id, site=site)

    def ar_download(request: HttpRequest) -> HttpResponse:
        return aging_download_view(request, side=RECEIVABLES)

    def ap_download(request: HttpRequest) -> HttpResponse:
        return aging_download_view(request, side=PAYABLES)

    return [
        *(
            path(
                f"reporting/{key.replace('_', '-')}/",
                site.admin_view(view_for(page)),
                name=f"reporting_{key}",
            )
            for key, page in PAGES.items()
        ),
        path(
            "reporting/customers/<int:customer_id>/statement/",
            site.admin_view(statement),
            name="reporting_account_statement",
        ),
        path(
            "reporting/ar-aging/download/",
            site.admin_view(ar_download),
            name="reporting_ar_aging_download",
        ),
        path(
            "reporting/ap-aging/download/",
            site.admin_view(ap_download),
            name="reporting_ap_aging_download",
        ),
    ]
