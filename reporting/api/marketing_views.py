"""Marketing spend and acquisition economics API.

``POST /api/reporting/marketing-spend`` records one month's spend of a channel and campaign
(``reporting.record_marketing_spend``: finance_admin, controller, integration). Reads
(``GET /api/reporting/marketing-spend`` and ``GET /api/reporting/acquisition``) need
``reporting.view_financial_reports`` (finance_admin, controller, auditor, integration): an
auditor reads everything and writes nothing. Periods are calendar months ``YYYY-MM``; a
period running backwards or longer than 20 years is refused with 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.fields import Field
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import MONTH_IN_RANGE, AmountField, CurrencyField, DateField, MonthField
from core.api.pagination import Pagination
from core.money import round_money
from reporting.acquisition import acquisition_economics, add_months, marketing_spend_list
from reporting.models import MarketingSpend
from reporting.services import CAMPAIGN_LENGTH, CHANNEL_LENGTH, marketing_spend_record

READ = "reporting.view_financial_reports"
WRITE = "reporting.record_marketing_spend"
MAX_YEARS = 20
DEFAULT_MONTHS = 12


# ----------------------------------------------------------------------------------- input


class PeriodInput(serializers.Serializer):
    # ``from`` is a keyword in Python: the fields are named in ``get_fields``.
    def get_fields(self) -> dict[str, Field]:
        return {"from": MonthField(required=False), "to": MonthField(required=False)}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        to = attrs.get("to") or timezone.localdate().replace(day=1)
        start = attrs.get("from") or add_months(to, 1 - DEFAULT_MONTHS)
        if start > to:
            raise serializers.ValidationError({"from": ["'from' must not be after 'to'."]})
        if add_months(start, MAX_YEARS * 12) <= to:
            raise serializers.ValidationError(
                {"to": [f"The period is longer than {MAX_YEARS} years; ask for a shorter one."]}
            )
        return {"from": start, "to": to}


class MarketingSpendInput(serializers.Serializer):
    channel = serializers.CharField(max_length=CHANNEL_LENGTH)
    campaign = serializers.CharField(
        max_length=CAMPAIGN_LENGTH, required=False, allow_blank=True, default=""
    )
    period = MonthField(help_text="The calendar month of the spend, YYYY-MM.")
    amount = AmountField(help_text="Decimal string in the currency's minor units, not negative.")
    currency = CurrencyField()
    replace = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Overwrite another amount on record for the same channel, campaign, month "
        "and currency (kept in history); without it that is a 409.",
    )


_PERIOD_PARAMETERS = [
    OpenApiParameter(
        "from",
        str,
        pattern=MONTH_IN_RANGE,
        description="YYYY-MM; first month (11 months before 'to')",
    ),
    OpenApiParameter(
        "to",
        str,
        pattern=MONTH_IN_RANGE,
        description="YYYY-MM; last month (this month when omitted)",
    ),
]


# ---------------------------------------------------------------------------------- output


class MarketingSpendOutput(serializers.Serializer):
    id = serializers.IntegerField()
    channel = serializers.CharField()
    campaign = serializers.CharField()
    period = MonthField()
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    recorded_by = serializers.SerializerMethodField()
    recorded_at = serializers.DateTimeField()

    @extend_schema_field({"type": "string", "format": "decimal", "example": "1250.00"})
    def get_amount(self, obj: MarketingSpend) -> str:
        return f"{round_money(obj.amount, obj.currency):f}"

    @extend_schema_field({"type": "string", "nullable": True})
    def get_recorded_by(self, obj: MarketingSpend) -> str | None:
        return obj.recorded_by.get_username() if obj.recorded_by else None


class MarketingSpendPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MarketingSpendOutput(many=True)


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=24, decimal_places=2, **kwargs)


class AcquisitionRowOutput(serializers.Serializer):
    channel = serializers.CharField(help_text="Empty for customers with no channel.")
    campaign = serializers.CharField()
    new_customers = serializers.IntegerField()
    spend = _money(help_text="In the functional currency.")
    cac = _money(allow_null=True, help_text="Spend / new customers.")
    average_first_year_revenue = _money(
        allow_null=True, help_text="Net invoiced in each new customer's first 12 months, averaged."
    )
    arpa = _money(allow_null=True, help_text="Monthly: average first-year revenue / 12.")
    ltv = _money(allow_null=True, help_text="ARPA x gross margin / monthly churn.")
    ltv_to_cac = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    payback_months = serializers.DecimalField(
        max_digits=24,
        decimal_places=2,
        allow_null=True,
        help_text="CAC / (ARPA x gross margin).",
    )


class AcquisitionOutput(serializers.Serializer):
    date_from = DateField()
    date_to = DateField()
    currency = serializers.CharField(help_text="The functional currency of every amount.")
    gross_margin = serializers.DecimalField(max_digits=6, decimal_places=4)
    monthly_churn = serializers.DecimalField(
        max_digits=8,
        decimal_places=2,
        allow_null=True,
        help_text="Percent a month: mean customer churn of the period's complete months "
        "(at most the last 12); null when none had paying customers.",
    )
    rows = AcquisitionRowOutput(many=True)


# ----------------------------------------------------------------------------------- views


class MarketingSpendListCreateApi(APIView):
    required_permissions = {"GET": [READ], "POST": [WRITE]}

    @extend_schema(
        summary="Marketing spend recorded",
        description="The spend recorded for the months of the period, oldest first.",
        parameters=[
            *_PERIOD_PARAMETERS,
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="At most 500"),
        ],
        responses=MarketingSpendPageOutput,
    )
    def get(self, request: Request) -> Response:
        data = PeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        qs = marketing_spend_list(
            month_from=data.validated_data["from"], month_to=data.validated_data["to"]
        ).order_by("period", "channel", "campaign", "currency", "pk")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(MarketingSpendOutput(page, many=True).data)

    @extend_schema(
        summary="Record marketing spend",
        description="One calendar month's spend of a channel and campaign in one currency. "
        "201 when recorded; 200 when the same amount is already on record (idempotent) or "
        'when "replace" overwrote another amount; 409 marketing_spend_exists when another '
        'amount is on record and "replace" is not set.',
        request=MarketingSpendInput,
        responses={201: MarketingSpendOutput, 200: MarketingSpendOutput},
    )
    def post(self, request: Request) -> Response:
        data = MarketingSpendInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = marketing_spend_record(actor=request.user, **data.validated_data)
        code = status.HTTP_201_CREATED if result.outcome == "created" else status.HTTP_200_OK
        return Response(MarketingSpendOutput(result.spend).data, status=code)


class AcquisitionApi(APIView):
    required_permissions = {"GET": [READ]}

    @extend_schema(
        summary="Acquisition economics",
        description="Per channel and campaign, for the customers acquired (created) and the "
        "spend recorded in the months of the period: new customers, spend, CAC, average "
        "first-year revenue, monthly ARPA, LTV, LTV:CAC and payback months, in the "
        "functional currency. A figure with a zero denominator is null. Spend in another "
        "currency is converted at its month's end rate; a missing rate is a 400 "
        "fx_rate_missing.",
        parameters=_PERIOD_PARAMETERS,
        responses=AcquisitionOutput,
    )
    def get(self, request: Request) -> Response:
        data = PeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        report = acquisition_economics(
            month_from=data.validated_data["from"], month_to=data.validated_data["to"]
        )
        return Response(AcquisitionOutput(report).data)
