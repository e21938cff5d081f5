"""The finance dashboard on the admin's start page, and the fragment its panels refresh from.

The index (``templates/admin/index.html``) renders the panels through the
``finance_dashboard`` template tag; the panels poll ``admin:reporting_dashboard_panels``
(htmx, every ``DASHBOARD_REFRESH_SECONDS`` seconds, 30 unless set) and are swapped in place,
their charts drawn again by ``static/reporting/dashboard.js`` with the Chart.js shipped in
django-unfold. Figures come from ``reporting.dashboard.dashboard_figures``: only the panels
the person's role may see. Everyone with ``reporting.view_dashboard`` (every staff role)
sees the page; a bad ``as_of`` shows a message and today's figures, never an error page.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from core.admin_confirm import amount_text
from core.admin_nav import navigation
from core.admin_site import register_admin_pages
from core.aging import BUCKETS
from core.money import round_money
from reporting.dashboard import (
    AgingPanel,
    Dashboard,
    Figure,
    SuccessSeries,
    dashboard_figures,
)
from reporting.kpis import KpiUnit

PERMISSION = "reporting.view_dashboard"
DEFAULT_REFRESH_SECONDS = 30
# Aging buckets, green (current) to red (over 90 days).
BUCKET_COLORS = ("#16a34a", "#ca8a04", "#ea580c", "#dc2626", "#991b1b")
SERIES_COLORS = ("#2563eb", "#9333ea", "#0d9488", "#db2777", "#65a30d", "#ea580c", "#475569")
SHORT_BUCKETS = {"current": "Current", "1-30": "1-30", "31-60": "31-60", "61-90": "61-90"}
MOVEMENT_LABELS = {
    "new": "New",
    "expansion": "Expansion",
    "contraction": "Contraction",
    "churn": "Churn",
    "reactivation": "Reactivation",
}


def parse_as_of(value: str | None, *, today: date) -> tuple[date, str]:
    """The day asked for (``YYYY-MM-DD``), or today with the reason the value was refused."""
    if not value:
        return today, ""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return today, f"“{value[:40]}” is not a date (YYYY-MM-DD): showing today's figures."
    if day > today:
        return today, "The date is in the future: showing today's figures."
    return day, ""


def refresh_seconds() -> int:
    return max(1, int(getattr(settings, "DASHBOARD_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS)))


# --- What the template shows -----------------------------------------------------------------


def _number(value: Decimal, unit: str) -> str:
    if unit == KpiUnit.PERCENT:
        return f"{value:,.1f} %"
    if unit == KpiUnit.DAYS:
        return f"{value:,.1f} days"
    return f"{value:,.0f}"


def _chart_number(value: Decimal | None, currency: str = "") -> str | None:
    """A value for Chart.js, as a decimal string (never a float): money in minor units."""
    if value is None:
        return None
    return str(round_money(value, currency)) if currency else str(value)


def _config(kind: str, labels: list[str], datasets: list[dict[str, Any]], **options: Any) -> str:
    base: dict[str, Any] = {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "interaction": {"mode": "index", "intersect": False},
        "plugins": {
            "legend": {
                "display": len(datasets) > 1,
                "position": "bottom",
                "labels": {"boxWidth": 10, "boxHeight": 10},
            }
        },
        "scales": {
            "x": {"ticks": {"autoSkip": True, "autoSkipPadding": 16, "maxRotation": 0}},
            "y": {"beginAtZero": True},
        },
    }
    for key, value in options.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return json.dumps(
        {"type": kind, "data": {"labels": labels, "datasets": datasets}, "options": base}
    )


def _figure_rows(figure: Figure) -> list[dict[str, str]]:
    if figure.unit == KpiUnit.MONEY:
        return [
            {"currency": c, "text": amount_text(v, c)} for c, v in sorted(figure.values.items())
        ]
    return [
        {"currency": c, "text": _number(v, figure.unit)} for c, v in sorted(figure.values.items())
    ]


def _aging(panel: AgingPanel) -> dict[str, Any]:
    currencies = []
    for currency, amounts in sorted(panel.totals.items()):
        currencies.append(
            {
                "currency": currency,
                "total": amount_text(amounts.get("total", Decimal(0)), currency),
                "buckets": [
                    {
                        "label": SHORT_BUCKETS.get(b, b),
                        "text": amount_text(amounts.get(b), currency),
                    }
                    for b in BUCKETS
                ],
                "chart": _config(
                    "bar",
                    [SHORT_BUCKETS.get(b, b) for b in BUCKETS],
                    [
                        {
                            "label": currency,
                            "data": [
                                _chart_number(amounts.get(b, Decimal(0)), currency) for b in BUCKETS
                            ],
                            "backgroundColor": list(BUCKET_COLORS),
                            "borderRadius": 4,
                            "maxBarThickness": 48,
                        }
                    ],
                    # Five short bucket names: every one shown, even on a phone.
                    scales={
                        "x": {"ticks": {"autoSkip": False, "maxRotation": 0}},
                        "y": {"beginAtZero": True},
                    },
                ),
            }
        )
    return {
        "key": panel.key,
        "title": panel.title,
        "how": panel.how,
        "link": panel.link,
        "item_count": panel.item_count,
        "currencies": currencies,
    }


def _success_chart(week_labels: list[str], rows: list[tuple[str, SuccessSeries, bool]]) -> str:
    datasets = [
        {
            "label": label,
            "data": [_chart_number(r) for r in series.rates],
            "borderColor": SERIES_COLORS[i % len(SERIES_COLORS)],
            "backgroundColor": SERIES_COLORS[i % len(SERIES_COLORS)],
            "borderWidth": 2,
            "pointRadius": 2,
            "spanGaps": True,
            **({"borderDash": [6, 4]} if dashed else {}),
        }
        for i, (label, series, dashed) in enumerate(rows)
    ]
    return _config(
        "line",
        week_labels,
        datasets,
        scales={
            "x": {"ticks": {"autoSkip": True, "autoSkipPadding": 16, "maxRotation": 0}},
            "y": {"min": 0, "max": 100, "ticks": {"stepSize": 25}},
        },
        plugins={
            "legend": {"display": True, "position": "bottom", "labels": {"boxWidth": 10}},
        },
    )


def _projection_chart(projection: Any) -> str:
    currency = projection.currency
    labels = [f"{w.end_date:%d %b}" for w in projection.weeks]
    return _config(
        "line",
        labels,
        [
            {
                "label": "10th percentile",
                "data": [_chart_number(w.p10_closing_cash, currency) for w in projection.weeks],
                "borderColor": "rgba(37, 99, 235, 0.35)",
                "backgroundColor": "rgba(37, 99, 235, 0.15)",
                "borderWidth": 1,
                "pointRadius": 0,
                "fill": False,
            },
            {
                "label": "90th percentile",
                "data": [_chart_number(w.p90_closing_cash, currency) for w in projection.weeks],
                "borderColor": "rgba(37, 99, 235, 0.35)",
                "backgroundColor": "rgba(37, 99, 235, 0.15)",
                "borderWidth": 1,
                "pointRadius": 0,
                "fill": "-1",
            },
            {
                "label": "Point estimate",
                "data": [_chart_number(w.closing_cash, currency) for w in projection.weeks],
                "borderColor": "#1d4ed8",
                "backgroundColor": "#1d4ed8",
                "borderWidth": 2,
                "pointRadius": 2,
                "fill": False,
            },
        ],
        scales={
            "x": {"ticks": {"autoSkip": True, "autoSkipPadding": 16, "maxRotation": 0}},
            "y": {"beginAtZero": False},
        },
    )


def _counts(request: HttpRequest, dashboard: Dashboard) -> list[dict[str, Any]]:
    """The "My work" queues of the sidebar as cards, each with its count where the dashboard
    has one, then the other counts the person may see."""
    by_link = {c.link: c for c in dashboard.counts if c.link}
    cards: list[dict[str, Any]] = []
    for group in navigation(request):
        if group.get("title") != "My work":
            continue
        for item in group["items"]:
            count = by_link.pop(item["link"], None)
            cards.append(
                {
                    "code": count.code if count else "",
                    "label": count.label if count else item["title"],
                    "icon": item.get("icon", "chevron_right"),
                    "link": item["link"],
                    "count": count.count if count else None,
                    "how": count.how if count else "",
                }
            )
    icons = {
        "approvals_waiting": "approval",
        "reconciliation_suggestions": "join_inner",
        "open_reconciliation_exceptions": "error",
        "disputes_evidence_due": "gavel",
        "overdue_invoices": "event_busy",
        "failed_tasks": "running_with_errors",
    }
    for count in dashboard.counts:
        if count.link in by_link:
            cards.append(
                {
                    "code": count.code,
                    "label": count.label,
                    "icon": icons.get(count.code, "chevron_right"),
                    "link": count.link,
                    "count": count.count,
                    "how": count.how,
                }
            )
    return cards


def panels_context(request: HttpRequest) -> dict[str, Any]:
    """Everything ``reporting/dashboard_panels.html`` shows, for this request's person and
    ``?as_of=``."""
    today = timezone.localdate()
    as_of, error = parse_as_of(request.GET.get("as_of"), today=today)
    user = request.user
    context: dict[str, Any] = {
        "as_of": as_of,
        "as_of_error": error,
        "is_today": as_of == today,
        "refresh_seconds": refresh_seconds(),
        "panels_url": reverse("admin:reporting_dashboard_panels")
        + "?"
        + urlencode({"as_of": as_of.isoformat()}),
        "may_view": user.has_perm(PERMISSION),
    }
    if not context["may_view"]:
        return context
    d = dashboard_figures(user, as_of)
    context["counts"] = _counts(request, d)
    if d.cash is not None:
        context["cash"] = {
            "how": d.cash.how,
            "statement_how": d.cash.statement_how,
            "total_how": d.cash.total.how,
            "accounts": [
                {
                    "name": a.name,
                    "currency": a.currency,
                    "book": amount_text(a.book_balance, a.currency),
                    "statement": amount_text(a.statement_balance, a.currency)
                    if a.statement_balance is not None
                    else "-",
                    "statement_date": a.statement_date,
                    "differs": a.statement_balance is not None
                    and a.statement_balance != a.book_balance,
                }
                for a in d.cash.accounts
            ],
            "totals": _figure_rows(d.cash.total),
        }
    context["aging"] = [_aging(p) for p in (d.ar, d.ap) if p is not None]
    if d.ratios is not None:
        context["ratios"] = [
            {"code": f.code, "label": f.label, "how": f.how, "rows": _figure_rows(f)}
            for f in d.ratios
        ]
    if d.mrr is not None:
        currencies = sorted({*d.mrr.mrr.values, *d.mrr.movement})
        context["mrr"] = {
            "mrr_how": d.mrr.mrr.how,
            "arr_how": d.mrr.arr.how,
            "movement_how": [
                {"label": MOVEMENT_LABELS[k], "how": v} for k, v in d.mrr.movement_how.items()
            ],
            "rows": [
                {
                    "currency": c,
                    "mrr": amount_text(d.mrr.mrr.values.get(c, Decimal(0)), c),
                    "arr": amount_text(d.mrr.arr.values.get(c, Decimal(0)), c),
                    "movement": [
                        {
                            "label": MOVEMENT_LABELS[k],
                            "how": d.mrr.movement_how[k],
                            "text": amount_text(v, c),
                            "sign": ("-" if k in ("contraction", "churn") else "+") if v else "",
                        }
                        for k, v in d.mrr.movement.get(c, {}).items()
                    ],
                }
                for c in currencies
            ],
        }
    if d.payments is not None:
        p = d.payments
        labels = [f"{w:%d %b}" for w in p.week_ends]
        rows = [(f"{s.label} (processor)", s, False) for s in p.by_processor] + [
            (f"{s.label} (method)", s, True) for s in p.by_method
        ]
        context["payments"] = {
            "how": p.how,
            "attempted": p.attempted,
            "rate": f"{Decimal(p.succeeded) * 100 / p.attempted:.1f} %" if p.attempted else "-",
            "chart": _success_chart(labels, rows) if rows else "",
            "declines": p.top_decline_codes,
        }
    if d.projection is not None:
        context["projection"] = {
            "how": d.projection_how,
            "currencies": [
                {
                    "currency": pr.currency,
                    "opening": amount_text(pr.opening_cash, pr.currency),
                    "closing": amount_text(pr.weeks[-1].closing_cash, pr.currency)
                    if pr.weeks
                    else "-",
                    "chart": _projection_chart(pr),
                }
                for pr in d.projection
            ],
        }
    return context


def dashboard_panels_view(request: HttpRequest) -> HttpResponse:
    """The panels alone, for the page's htmx poll."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    return TemplateResponse(request, "reporting/dashboard_panels.html", panels_context(request))


@register_admin_pages
def dashboard_urls(site: Any) -> list[URLPattern]:
    return [
        path(
            "reporting/dashboard/panels/",
            site.admin_view(dashboard_panels_view),
            name="reporting_dashboard_panels",
        ),
    ]
