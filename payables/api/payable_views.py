"""``GET /api/accounts/payable``: open bills with aging, filters and per-currency totals."""

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
from payables.selectors import payables_open, payables_totals_and_count

COLUMNS = [
    "bill",
    "number",
    "vendor",
    "currency",
    "total",
    "amount_due",
    "due_date",
    "days_past_due",
    "bucket",
    "discount_deadline",
]


def _amount(value: Any, currency: str) -> str:
    return f"{round_money(value, currency):f}"


def _item(bill: Any, as_of: Any) -> dict[str, Any]:
    return {
        "bill": bill.pk,
        "number": bill.number,
        "vendor": bill.vendor_id,
        "currency": bill.currency,
        "total": _amount(bill.total.amount, bill.currency),
        "amount_due": _amount(bill.due_now, bill.currency),
        "due_date": bill.due_date.isoformat(),
        "days_past_due": max((as_of - bill.due_date).days, 0),
        "bucket": bill.bucket,
        # Open only while nothing was paid and the date has not passed.
        "discount_deadline": (
            bill.discount_date.isoformat()
            if bill.discount_date and bill.discount_date >= as_of and not bill.amount_paid
            else None
        ),
    }


class PayableItemOutput(serializers.Serializer):
    bill = serializers.IntegerField()
    number = serializers.CharField()
    vendor = serializers.IntegerField()
    currency = serializers.CharField()
    total = serializers.CharField()
    amount_due = serializers.CharField()
    due_date = DateField()
    days_past_due = serializers.IntegerField()
    bucket = serializers.ChoiceField(choices=AgingBucket.choices)
    discount_deadline = DateField(allow_null=True)


class PayableListOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    as_of = DateField()
    results = PayableItemOutput(many=True)
    totals = serializers.DictField(child=serializers.DictField(child=serializers.CharField()))


class PayableListApi(APIView):
    """What we owe and when: approved bills not yet paid. Roles: those who view bills
    (finance_admin, ap_clerk, approver, controller, auditor, integration)."""

    required_permissions = {"GET": ["payables.view_bill"]}
    renderer_classes = [JSONRenderer, CSVRenderer]

    class FilterInput(serializers.Serializer):
        vendor = serializers.IntegerField(required=False, min_value=1)
        currency = serializers.CharField(required=False, max_length=3)
        bucket = serializers.ChoiceField(choices=AgingBucket.choices, required=False)
        min_amount = AmountField(required=False)
        as_of = DateField(required=False, input_formats=["%Y-%m-%d"])

    @extend_schema(
        parameters=[
            OpenApiParameter("vendor", int),
            OpenApiParameter("currency", str),
            OpenApiParameter("bucket", str, enum=BUCKETS),
            OpenApiParameter("min_amount", str, description="Decimal string"),
            OpenApiParameter("as_of", OpenApiTypes.DATE, description="YYYY-MM-DD (default today)"),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses=PayableListOutput,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        as_of = params.pop("as_of", None) or timezone.localdate()
        if "currency" in params:
            params["currency"] = params["currency"].upper()
        qs = payables_open(as_of=as_of, **params)
        if request.accepted_renderer.format == "csv":
            rows = [[_item(b, as_of)[c] for c in COLUMNS] for b in qs.iterator(chunk_size=2000)]
            response = Response({"columns": COLUMNS, "rows": rows})
            response["Content-Disposition"] = (
                f'attachment; filename="payables-{as_of.isoformat()}.csv"'
            )
            return response
        raw_totals, count = payables_totals_and_count(as_of=as_of, **params)
        totals = {
            currency: {k: _amount(v, currency) for k, v in buckets.items()}
            for currency, buckets in raw_totals.items()
        }
        paginator = Pagination()
        page = paginator.paginate_queryset(CountedQuerySet(qs, count), request, view=self)
        response = paginator.get_paginated_response([_item(b, as_of) for b in page])
        response.data["as_of"] = as_of.isoformat()
        response.data["totals"] = totals
        return response
