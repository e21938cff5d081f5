"""KPI API: the stored daily history of the KPIs, and their live figures.

Read-only, for ``reporting.view_financial_reports`` (finance_admin, controller, auditor,
integration). Values go out as decimal strings with 4 places; money KPIs carry their
currency, the others an empty currency. An unknown KPI code, a period running backwards or
longer than 20 years is refused with 400 naming the parameter.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.fields import Field
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import DateField
from core.api.pagination import Pagination
from reporting.kpis import KPIS, KpiUnit, kpi_snapshot_list, kpi_values

PERMISSION = "reporting.view_financial_reports"
# A longer period is almost surely a typo in a year, and would page through a century.
MAX_YEARS = 20
DEFAULT_DAYS = 90
UNITS = [KpiUnit.MONEY, KpiUnit.DAYS, KpiUnit.PERCENT, KpiUnit.COUNT]


def _codes(request: Request) -> list[str] | None:
    """``kpi`` repeated or comma-separated; None when not given. Unknown codes: 400."""
    given = [c.strip() for v in request.query_params.getlist("kpi") for c in v.split(",")]
    codes = [c for c in given if c]
    if not codes:
        return None
    unknown = [c for c in codes if c not in KPIS]
    if unknown:
        raise serializers.ValidationError(
            {
                "kpi": [
                    f"Unknown KPI {code!r}; known: {', '.join(sorted(KPIS))}." for code in unknown
                ]
            }
        )
    return list(dict.fromkeys(codes))


# ----------------------------------------------------------------------------------- input


class HistoryInput(serializers.Serializer):
    # ``from`` is a keyword in Python: the fields are named in ``get_fields``.
    def get_fields(self) -> dict[str, Field]:
        return {
            "from": DateField(required=False),
            "to": DateField(required=False),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        to = attrs.get("to") or timezone.localdate()
        start = attrs.get("from") or date.fromordinal(max(to.toordinal() - DEFAULT_DAYS + 1, 1))
        if start > to:
            raise serializers.ValidationError({"from": ["'from' must not be after 'to'."]})
        if to.year - start.year > MAX_YEARS or (
            to.year - start.year == MAX_YEARS and (to.month, to.day) >= (start.month, start.day)
        ):
            raise serializers.ValidationError(
                {"to": [f"The period is longer than {MAX_YEARS} years; ask for a shorter one."]}
            )
        return {"from": start, "to": to}


# ---------------------------------------------------------------------------------- output


class KpiSnapshotOutput(serializers.Serializer):
    date = DateField()
    kpi = serializers.CharField(help_text="KPI code, as in /api/reporting/kpis/current.")
    # DRF's metaclass takes declared fields off the class: no shadowing of Field.label.
    label = serializers.SerializerMethodField()  # type: ignore[assignment]
    unit = serializers.SerializerMethodField()
    currency = serializers.CharField(help_text="Empty for figures that are not money.")
    value = serializers.DecimalField(max_digits=24, decimal_places=4)
    computed_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_label(self, obj: Any) -> str:
        kpi = KPIS.get(obj.kpi)
        return kpi.label if kpi else obj.kpi

    @extend_schema_field(serializers.ChoiceField(choices=UNITS))
    def get_unit(self, obj: Any) -> str:
        kpi = KPIS.get(obj.kpi)
        return kpi.unit if kpi else ""


class KpiSnapshotPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = KpiSnapshotOutput(many=True)


class KpiValueOutput(serializers.Serializer):
    currency = serializers.CharField(help_text="Empty for figures that are not money.")
    value = serializers.DecimalField(max_digits=24, decimal_places=4)


class KpiCurrentOutput(serializers.Serializer):
    code = serializers.CharField()
    # DRF's metaclass takes declared fields off the class: no shadowing of Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.ChoiceField(choices=UNITS)
    how = serializers.CharField(help_text="How it is computed, in one sentence.")
    values = KpiValueOutput(
        many=True, help_text="One per currency; empty when undefined (no denominator)."
    )


class KpiCurrentListOutput(serializers.Serializer):
    as_of = DateField()
    kpis = KpiCurrentOutput(many=True)


def _kpi_parameter() -> OpenApiParameter:
    return OpenApiParameter(
        "kpi",
        str,
        many=True,
        description="KPI codes, repeated or comma-separated (all when omitted): " + ", ".join(KPIS),
    )


# ----------------------------------------------------------------------------------- views


class KpiHistoryApi(APIView):
    required_permissions = {"GET": [PERMISSION]}

    @extend_schema(
        summary="KPI history",
        description="The daily KPI snapshots stored in the period (both days included), oldest "
        f"first; the last {DEFAULT_DAYS} days when no period is given. At most "
        f"{MAX_YEARS} years.",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="first day"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="last day, today when omitted"),
            _kpi_parameter(),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="At most 500"),
        ],
        responses=KpiSnapshotPageOutput,
    )
    def get(self, request: Request) -> Response:
        data = HistoryInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        codes = _codes(request)
        qs = kpi_snapshot_list(
            date_from=data.validated_data["from"], date_to=data.validated_data["to"], codes=codes
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(KpiSnapshotOutput(page, many=True).data)


class KpiCurrentApi(APIView):
    required_permissions = {"GET": [PERMISSION]}

    @extend_schema(
        summary="KPIs now",
        description="Each KPI computed live as of today, with its label, unit and how it is "
        "computed (the dashboard's tooltip).",
        parameters=[_kpi_parameter()],
        responses=KpiCurrentListOutput,
    )
    def get(self, request: Request) -> Response:
        codes = _codes(request)
        today = timezone.localdate()
        values = kpi_values(as_of=today, codes=codes)
        chosen = codes if codes is not None else list(KPIS)
        body = {
            "as_of": today,
            "kpis": [
                {
                    "code": code,
                    "label": KPIS[code].label,
                    "unit": KPIS[code].unit,
                    "how": KPIS[code].how,
                    "values": [
                        {"currency": v.currency, "value": v.value}
                        for v in values
                        if v.kpi.code == code
                    ],
                }
                for code in chosen
            ],
        }
        return Response(KpiCurrentListOutput(body).data)
