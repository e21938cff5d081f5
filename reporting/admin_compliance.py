"""Compliance audit reports (SOX evidence) in the workspace: a list of the reports with a
period picker (``admin:reporting_compliance``) and one page per report
(``admin:reporting_compliance_report``, the report's code in the URL) with its table and
CSV, XLSX and PDF downloads.

Each download is stamped with its producer, the time and the SHA-256 of its rows, and
logged (``reporting.ReportProduction``) with the SHA-256 of the file as served, in the
request that serves it. Who may: holders of ``reporting.run_compliance_reports``
(finance_admin, controller, auditor); anyone else gets 403.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from core.admin_confirm import workspace_widgets
from core.admin_site import register_admin_pages
from reporting.compliance import (
    EXCEPTION,
    REPORTS,
    InvalidPeriod,
    at_text,
    period_bounds,
    productions_list,
    report_production_record,
    user_text,
)
from reporting.report_files import (
    CONTENT_TYPES,
    FORMATS,
    Amount,
    Cell,
    Format,
    ReportTable,
    cell_text,
)

PERMISSION = "reporting.run_compliance_reports"
LIST_TEMPLATE = "reporting/compliance.html"
REPORT_TEMPLATE = "reporting/compliance_report.html"
FORMAT_LABELS = (("csv", "CSV"), ("xlsx", "Excel"), ("pdf", "PDF"))


def _date_field(label: str) -> forms.DateField:
    return forms.DateField(
        label=label, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class PeriodForm(forms.Form):
    date_from = _date_field("From")
    date_to = _date_field("To")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to"):
            try:
                period_bounds(data["date_from"], data["date_to"])
            except InvalidPeriod as refused:
                self.add_error(refused.field, refused.message)
        return data


def _default_period(today: date) -> dict[str, date]:
    """The last full calendar month."""
    last = today.replace(day=1) - timedelta(days=1)
    return {"date_from": last.replace(day=1), "date_to": last}


def _period_form(request: HttpRequest) -> PeriodForm:
    bound = any(name in request.GET for name in PeriodForm.base_fields)
    form = PeriodForm(request.GET if bound else _default_period(timezone.localdate()))
    workspace_widgets(form)
    return form


def _productions(code: str = "") -> dict[str, Any]:
    """The latest productions as an unfold table."""
    return {
        "headers": ["Produced at", "By", "Report", "Period", "Format", "Rows", "SHA-256 (file)"],
        "rows": [
            [
                at_text(p.produced_at),
                user_text(p.produced_by),
                REPORTS[p.code].title if p.code in REPORTS else p.code,
                f"{p.parameters.get('date_from', '')} to {p.parameters.get('date_to', '')}",
                p.format.upper(),
                p.row_count,
                p.sha256,
            ]
            for p in productions_list(code=code)
        ],
    }


def _screen_cell(cell: Cell) -> str | SafeString:
    text = cell_text(cell)
    if isinstance(cell, Amount):
        return format_html('<span class="whitespace-nowrap">{}</span>', text)
    if text.startswith(EXCEPTION):
        return format_html('<strong class="text-red-600">{}</strong>', text)
    return text


def _screen_table(table: ReportTable) -> dict[str, Any]:
    """The table for unfold's table component; flags in red, amounts unbroken."""
    return {
        "headers": list(table.headers),
        "rows": [[_screen_cell(cell) for cell in row.cells] for row in table.rows],
    }


def _check(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def compliance_index_view(request: HttpRequest, *, site: Any) -> HttpResponse:
    _check(request)
    form = _period_form(request)
    query = (
        {name: value.isoformat() for name, value in form.cleaned_data.items()}
        if form.is_valid()
        else {}
    )
    reports = [
        {
            "title": report.title,
            "description": report.description,
            "url": reverse("admin:reporting_compliance_report", args=[report.code])
            + (f"?{urlencode(query)}" if query else ""),
        }
        for report in REPORTS.values()
    ]
    context = {
        **site.each_context(request),
        "title": "Compliance reports",
        "form": form,
        "reports": reports,
        "productions": _productions(),
    }
    return TemplateResponse(request, LIST_TEMPLATE, context)


def compliance_report_view(request: HttpRequest, code: str, *, site: Any) -> HttpResponse:
    _check(request)
    report = REPORTS.get(code)
    if report is None:
        raise Http404("No such compliance report.")
    form = _period_form(request)
    table = None
    if form.is_valid():
        date_from, date_to = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
        wanted = request.GET.get("export", "")
        if wanted in FORMATS:
            file_format: Format = wanted  # type: ignore[assignment]
            produced = report_production_record(
                code=code,
                date_from=date_from,
                date_to=date_to,
                file_format=file_format,
                actor=request.user,
            )
            response = HttpResponse(produced.content, content_type=CONTENT_TYPES[file_format])
            stem = f"compliance-{code.replace('_', '-')}-{date_from}-{date_to}"
            response["Content-Disposition"] = f'attachment; filename="{stem}.{file_format}"'
            response["X-Content-SHA256"] = produced.production.sha256
            return response
        table = report.build(date_from, date_to)
    page_url = reverse("admin:reporting_compliance_report", args=[code])
    query = (
        {name: value.isoformat() for name, value in form.cleaned_data.items()}
        if table is not None
        else {}
    )
    context = {
        **site.each_context(request),
        "title": report.title,
        "report": report,
        "form": form,
        "table": table,
        "screen_table": _screen_table(table) if table is not None else None,
        "downloads": [
            (label, f"{page_url}?{urlencode({**query, 'export': fmt})}")
            for fmt, label in FORMAT_LABELS
        ]
        if table is not None
        else [],
        "index_url": reverse("admin:reporting_compliance")
        + (f"?{urlencode(query)}" if query else ""),
        "productions": _productions(code),
    }
    return TemplateResponse(request, REPORT_TEMPLATE, context)


@register_admin_pages
def compliance_urls(site: Any) -> list[URLPattern]:
    """The compliance list and report pages, for ``BackofficeAdminSite.extra_urls``."""

    def index(request: HttpRequest) -> HttpResponse:
        return compliance_index_view(request, site=site)

    def report(request: HttpRequest, code: str) -> HttpResponse:
        return compliance_report_view(request, code, site=site)

    return [
        path("reporting/compliance/", site.admin_view(index), name="reporting_compliance"),
        path(
            "reporting/compliance/<slug:code>/",
            site.admin_view(report),
            name="reporting_compliance_report",
        ),
    ]
