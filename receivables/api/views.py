"""``GET /api/accounts/receivable``: open receivables with aging, filters and totals."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.aging import BUCKETS, AgingBucket
from core.api.fields import AmountField, DateField
from core.api.pagination import CountedQuerySet, Pagination
from core.api.renderers import CSVRenderer
from core.money import round_money
from receivables.selectors import receivables_open, receivables_totals_and_count

COLUMNS = [
    "invoice",
    "number",
    "customer",
    "currency",
    "total",
    "amount_due",
    "due_date",
    "days_past_due",
    "bucket",
]


def _amount(value: Any, currency: str) -> str:
    return f"{round_money(value, currency):f}"


def _item(invoice: Any, as_of: Any) -> dict[str, Any]:
    return {
        "invoice": invoice.pk,
        "number": invoice.number,
        "customer": invoice.customer_id,
        "currency": invoice.currency,
        "total": _amount(invoice.total.amount, invoice.currency),
        "amount_due": _amount(invoice.due_as_of, invoice.currency),
        "due_date": invoice.due_date.isoformat(),
        "days_past_due": max((as_of - invoice.due_date).days, 0),
        "bucket": invoice.bucket,
    }


class ReceivableItemOutput(serializers.Serializer):
    invoice = serializers.IntegerField()
    number = serializers.CharField()
    customer = serializers.IntegerField()
    currency = serializers.CharField()
    total = serializers.CharField()
    amount_due = serializers.CharField()
    due_date = DateField()
    days_past_due = serializers.IntegerField()
    bucket = serializers.ChoiceField(choices=AgingBucket.choices)


class ReceivableListOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    as_of = DateField()
    results = ReceivableItemOutput(many=True)
    totals = serializers.DictField(child=serializers.DictField(child=serializers.CharField()))


class ReceivableListApi(APIView):
    """Finance staff's morning list: who owes what and how late. Roles: those who view
    invoices (finance_admin, controller, ar_clerk, auditor, integration)."""

    required_permissions = {"GET": ["billing.view_invoice"]}
    renderer_classes = [JSONRenderer, CSVRenderer]

    class FilterInput(serializers.Serializer):
        customer = serializers.IntegerField(required=False, min_value=1)
        currency = serializers.CharField(required=False, max_length=3)
        bucket = serializers.ChoiceField(choices=AgingBucket.choices, required=False)
        min_amount = AmountField(required=False)
        as_of = DateField(required=False, input_formats=["%Y-%m-%d"])

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", int),
            OpenApiParameter("currency", str),
            OpenApiParameter("bucket", str, enum=BUCKETS),
            OpenApiParameter("min_amount", str, description="Decimal string"),
            OpenApiParameter("as_of", OpenApiTypes.DATE, description="YYYY-MM-DD (default today)"),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses=ReceivableListOutput,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        as_of = params.pop("as_of", None) or timezone.localdate()
        if "currency" in params:
            params["currency"] = params["currency"].upper()
        qs = receivables_open(as_of=as_of, **params)
        if request.accepted_renderer.format == "csv":
            rows = [[_item(i, as_of)[c] for c in COLUMNS] for i in qs.iterator(chunk_size=2000)]
            response = Response({"columns": COLUMNS, "rows": rows})
            response["Content-Disposition"] = (
                f'attachment; filename="receivables-{as_of.isoformat()}.csv"'
            )
            return response
        raw_totals, count = receivables_totals_and_count(as_of=as_of, **params)
        totals = {
            currency: {k: _amount(v, currency) for k, v in buckets.items()}
            for currency, buckets in raw_totals.items()
        }
        paginator = Pagination()
        # The grouped totals query already counted the items: no second scan for the count.
        page = paginator.paginate_queryset(CountedQuerySet(qs, count), request, view=self)
        response = paginator.get_paginated_response([_item(i, as_of) for i in page])
        response.data["as_of"] = as_of.isoformat()
        response.data["totals"] = totals
        return response
