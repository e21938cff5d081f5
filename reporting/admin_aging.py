"""AR and AP aging in the workspace: as of a date, by customer (vendor), in the aging buckets,
with per-currency totals, a drill-down to each party's open items and a CSV export.

Reads only: the open items and their buckets come from ``receivables.selectors`` and
``payables.selectors`` (computed by the database, as the aging APIs compute them). Roles: AR
aging for those who may view invoices (billing.view_invoice), AP aging for those who may view
bills (payables.view_bill). Mounted by ``BackofficeAdminSite.extra_urls`` as
``admin:reporting_ar_aging`` and ``admin:reporting_ap_aging``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from core.admin_confirm import amount_text, workspace_widgets
from core.admin_site import register_admin_pages
from core.aging import BUCKETS, AgingBucket
from core.spreadsheet import neutralise
from payables.selectors import payables_open, payables_totals_and_count
from receivables.selectors import receivables_open, receivables_totals_and_count

BUCKET_LABELS = dict(AgingBucket.choices)


@dataclass(frozen=True)
class AgingSide:
    """One of the two screens: what it reads and how it names things."""

    key: str
    title: str
    permission: str
    party: str
    party_plural: str
    item: str
    # Open items of one party, or of all: a queryset annotated with ``bucket``.
    open_items: Callable[..., QuerySet[Any]]
    totals: Callable[..., tuple[dict[str, dict[str, Decimal]], int]]
    party_field: str
    due_field: str
    item_url: str
    party_url: str


RECEIVABLES = AgingSide(
    key="ar",
    title="Receivables aging",
    permission="billing.view_invoice",
    party="Customer",
    party_plural="customers",
    item="Invoice",
    open_items=lambda *, as_of, party=None: receivables_open(as_of=as_of, customer=party),
    totals=lambda *, as_of: receivables_totals_and_count(as_of=as_of),
    party_field="customer",
    due_field="due_as_of",
    item_url="admin:billing_invoice_change",
    party_url="admin:billing_customer_change",
)
PAYABLES = AgingSide(
    key="ap",
    title="Payables aging",
    permission="payables.view_bill",
    party="Vendor",
    party_plural="vendors",
    item="Bill",
    open_items=lambda *, as_of, party=None: payables_open(as_of=as_of, vendor=party),
    totals=lambda *, as_of: payables_totals_and_count(as_of=as_of),
    party_field="vendor",
    due_field="due_now",
    item_url="admin:payables_bill_change",
    party_url="admin:payables_vendor_change",
)


@dataclass
class PartyRow:
    party_id: int
    name: str
    currency: str
    buckets: dict[str, Decimal]
    total: Decimal
    items: int


def aging_by_party(side: AgingSide, *, as_of: date) -> list[PartyRow]:
    """Each party's amounts per bucket and currency, summed by the database (one query)."""
    grouped = (
        side.open_items(as_of=as_of)
        .order_by()
        .values(f"{side.party_field}_id", f"{side.party_field}__name", "currency", "bucket")
        .annotate(amount=Sum(side.due_field), n=Count("pk"))
    )
    rows: dict[tuple[int, str], PartyRow] = {}
    for group in grouped:
        party_id = group[f"{side.party_field}_id"]
        key = (party_id, group["currency"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = PartyRow(
                party_id=party_id,
                name=group[f"{side.party_field}__name"],
                currency=group["currency"],
                buckets=defaultdict(Decimal),
                total=Decimal(0),
                items=0,
            )
        row.buckets[group["bucket"]] += group["amount"]
        row.total += group["amount"]
        row.items += group["n"]
    return sorted(rows.values(), key=lambda r: (r.name.lower(), r.party_id, r.currency))


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        label="As of",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


def _csv(filename: str, header: list[str], rows: Iterable[list[object]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralise(str(cell)) for cell in row])
    return response


def _plain(amount: Decimal, currency: str) -> str:
    """An amount for a CSV: rounded to the currency's minor units, no separators."""
    return amount_text(amount, currency).rsplit(" ", 1)[0].replace(",", "")


def aging_view(request: HttpRequest, *, side: AgingSide, site: Any) -> HttpResponse:
    if not request.user.has_perm(side.permission):
        raise PermissionDenied
    today = timezone.localdate()
    form = AsOfForm(request.GET) if "as_of" in request.GET else AsOfForm(initial={"as_of": today})
    as_of = today
    if form.is_bound and form.is_valid() and form.cleaned_data["as_of"]:
        as_of = form.cleaned_data["as_of"]
    party_id = request.GET.get("party", "")
    party = int(party_id) if party_id.isdigit() else None
    want_csv = request.GET.get("export") == "csv"
    page_url = reverse(f"admin:reporting_{side.key}_aging")

    if party is not None:
        items = list(side.open_items(as_of=as_of, party=party))
        party_name = getattr(items[0], side.party_field).name if items else ""
        if want_csv:
            return _csv(
                f"{side.key}-aging-{party}-{as_of:%Y-%m-%d}.csv",
                [side.party, side.item, "Due date", "Days past due", "Bucket", "Currency", "Due"],
                (
                    [
                        party_name,
                        item.number or f"{side.item} {item.pk}",
                        item.due_date.isoformat(),
                        max((as_of - item.due_date).days, 0),
                        BUCKET_LABELS[item.bucket],
                        item.currency,
                        _plain(getattr(item, side.due_field), item.currency),
                    ]
                    for item in items
                ),
            )
        table = {
            "headers": [side.item, "Due date", "Days past due", "Bucket", "Due"],
            "rows": [
                [
                    format_html(
                        '<a class="text-primary-600 dark:text-primary-500" href="{}">{}</a>',
                        reverse(side.item_url, args=[item.pk]),
                        item.number or f"{side.item} {item.pk}",
                    ),
                    item.due_date.isoformat(),
                    max((as_of - item.due_date).days, 0),
                    BUCKET_LABELS[item.bucket],
                    format_html(
                        '<span class="whitespace-nowrap">{}</span>',
                        amount_text(getattr(item, side.due_field), item.currency),
                    ),
                ]
                for item in items
            ],
        }
        context: dict[str, Any] = {
            "party_name": party_name or f"{side.party} {party}",
            "party_link": reverse(side.party_url, args=[party]),
            "items_table": table,
        }
    else:
        rows = aging_by_party(side, as_of=as_of)
        if want_csv:
            return _csv(
                f"{side.key}-aging-{as_of:%Y-%m-%d}.csv",
                [side.party, "Currency", *(BUCKET_LABELS[b] for b in BUCKETS), "Total", "Items"],
                (
                    [
                        row.name,
                        row.currency,
                        *(_plain(row.buckets[b], row.currency) for b in BUCKETS),
                        _plain(row.total, row.currency),
                        row.items,
                    ]
                    for row in rows
                ),
            )
        totals, count = side.totals(as_of=as_of)

        def money(amount: Decimal, currency: str) -> str:
            if not amount:
                return "-"
            return format_html(
                '<span class="whitespace-nowrap">{}</span>', amount_text(amount, currency)
            )

        context = {
            "parties_table": {
                "headers": [side.party, *(BUCKET_LABELS[b] for b in BUCKETS), "Total"],
                "rows": [
                    [
                        format_html(
                            '<a class="aging-party text-primary-600 dark:text-primary-500" '
                            'href="{}?{}">{}</a>',
                            page_url,
                            urlencode({"as_of": as_of.isoformat(), "party": str(row.party_id)}),
                            row.name,
                        ),
                        *(money(row.buckets[b], row.currency) for b in BUCKETS),
                        format_html("<strong>{}</strong>", money(row.total, row.currency)),
                    ]
                    for row in rows
                ],
            },
            "totals_table": {
                "headers": ["Currency", *(BUCKET_LABELS[b] for b in BUCKETS), "Total"],
                "rows": [
                    [
                        currency,
                        *(money(amounts[b], currency) for b in BUCKETS),
                        format_html("<strong>{}</strong>", money(amounts["total"], currency)),
                    ]
                    for currency, amounts in totals.items()
                ],
            },
            "item_count": count,
            "totals_title": f"Totals by currency ({count} open item{'s' if count != 1 else ''})",
        }
    query: dict[str, str] = {"as_of": as_of.isoformat()}
    if party is not None:
        query["party"] = str(party)
    workspace_widgets(form)
    context.update(
        {
            **site.each_context(request),
            "title": side.title,
            "side": side,
            "form": form,
            "as_of": as_of,
            "is_today": as_of == today,
            "party": party,
            "page_url": page_url,
            "back_url": f"{page_url}?{urlencode({'as_of': as_of.isoformat()})}",
            "csv_url": f"{page_url}?{urlencode({**query, 'export': 'csv'})}",
        }
    )
    return TemplateResponse(request, "admin/reporting/aging.html", context)


@register_admin_pages
def aging_urls(site: Any) -> list[URLPattern]:
    """The two aging screens, for ``BackofficeAdminSite.extra_urls``."""

    def receivables(request: HttpRequest) -> HttpResponse:
        return aging_view(request, side=RECEIVABLES, site=site)

    def payables(request: HttpRequest) -> HttpResponse:
        return aging_view(request, side=PAYABLES, site=site)

    return [
        path("reporting/ar-aging/", site.admin_view(receivables), name="reporting_ar_aging"),
        path("reporting/ap-aging/", site.admin_view(payables), name="reporting_ap_aging"),
    ]
