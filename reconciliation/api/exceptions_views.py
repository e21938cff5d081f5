"""``/api/reconciliation/exceptions``: the exceptions queue (list, detail, assign, resolve,
reopen) and its report as CSV or PDF."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import Pagination, paged
from core.exceptions import DomainError, NotFound
from reconciliation.api.serializers import amount_out
from reconciliation.enums import ExceptionKind, ExceptionStatus
from reconciliation.models import ReconciliationException
from reconciliation.selectors import exception_list
from reconciliation.services_exceptions import (
    exception_age_days,
    exception_assign,
    exception_reopen,
    exception_resolve,
    exceptions_report_csv,
    exceptions_report_pdf,
)

VIEW = ["reconciliation.view_reconciliationexception"]
RESOLVE = ["reconciliation.resolve_exception"]
FILTER_PARAMETERS = [
    OpenApiParameter("kind", str, enum=ExceptionKind.values),
    OpenApiParameter("status", str, enum=ExceptionStatus.values),
    OpenApiParameter("bank_account", {"type": "integer", "minimum": 1}),
    OpenApiParameter("assignee", str, description='A user id, "me" or "none" (unassigned)'),
]


def _amount(value: Any, currency: str) -> str | None:
    if value is None:
        return None
    try:
        return amount_out(value, currency)
    except DomainError:  # no or an unknown currency: the stored figure
        return f"{value.normalize():f}"


class ExceptionFilterInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExceptionKind.choices, required=False)
    status = serializers.ChoiceField(choices=ExceptionStatus.choices, required=False)
    bank_account = serializers.IntegerField(min_value=1, required=False)
    assignee = serializers.RegexField(r"^(\d+|me|none)$", required=False)


def _filters(request: Request) -> dict[str, Any]:
    """``exception_list`` keyword arguments from the query string (400 on a bad value)."""
    data = ExceptionFilterInput(data=request.query_params)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    filters: dict[str, Any] = {
        "kind": v.get("kind"),
        "status": v.get("status"),
        "bank_account_id": v.get("bank_account"),
    }
    assignee = v.get("assignee")
    if assignee == "none":
        filters["unassigned"] = True
    elif assignee == "me":
        filters["assignee_id"] = request.user.pk
    elif assignee:
        filters["assignee_id"] = int(assignee)
    return filters


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ExceptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    key = serializers.CharField()
    bank_account = serializers.IntegerField(source="bank_account_id", allow_null=True)
    statement = serializers.IntegerField(source="statement_id", allow_null=True)
    line = serializers.IntegerField(source="line_id", allow_null=True)
    other_line = serializers.IntegerField(source="other_line_id", allow_null=True)
    payout = serializers.IntegerField(source="payout_id", allow_null=True)
    match = serializers.IntegerField(source="match_id", allow_null=True)
    amount = serializers.SerializerMethodField()
    difference = serializers.SerializerMethodField()
    currency = serializers.CharField()
    message = serializers.CharField()
    detected_at = serializers.DateTimeField()
    age_days = serializers.SerializerMethodField()
    assignee = UserOutput(allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)
    resolution_note = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = UserOutput(allow_null=True)

    def get_amount(self, obj: ReconciliationException) -> str | None:
        return _amount(obj.amount, obj.currency)

    def get_difference(self, obj: ReconciliationException) -> str | None:
        return _amount(obj.difference, obj.currency)

    def get_age_days(self, obj: ReconciliationException) -> int:
        return exception_age_days(obj, self.context.get("today"))


def _out(exception_id: int) -> dict[str, Any]:
    exc = exception_list().filter(pk=exception_id).first()
    if exc is None:
        raise NotFound(f"No reconciliation exception {exception_id}.")
    return ExceptionOutput(exc).data


class ExceptionListApi(APIView):
    """The queue (open first, newest first), filtered by ``kind``, ``status``,
    ``bank_account``, ``assignee`` (id, "me" or "none"), paginated. Roles: finance_admin,
    ar_clerk, ap_clerk, controller, auditor, integration."""

    required_permissions = {"GET": VIEW}

    @extend_schema(parameters=FILTER_PARAMETERS, responses=paged(ExceptionOutput))
    def get(self, request: Request) -> Response:
        qs = exception_list(**_filters(request))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        context = {"today": timezone.localdate()}
        return paginator.get_paginated_response(
            ExceptionOutput(page, many=True, context=context).data
        )


class ExceptionDetailApi(APIView):
    """One exception. Roles: as the list."""

    required_permissions = {"GET": VIEW}

    @extend_schema(responses=ExceptionOutput)
    def get(self, request: Request, exception_id: int) -> Response:
        return Response(_out(exception_id))


class ExceptionAssignInput(serializers.Serializer):
    assignee = serializers.IntegerField(min_value=1, allow_null=True)


class ExceptionAssignApi(APIView):
    """Give an open exception to someone who may resolve exceptions (``null``: to no one).
    Roles: finance_admin, ar_clerk, ap_clerk, controller."""

    required_permissions = {"POST": RESOLVE}

    @extend_schema(request=ExceptionAssignInput, responses=ExceptionOutput)
    def post(self, request: Request, exception_id: int) -> Response:
        data = ExceptionAssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        exception_assign(
            exception_id=exception_id,
            assignee_id=data.validated_data["assignee"],
            actor=request.user,
        )
        return Response(_out(exception_id))


class ExceptionResolveInput(serializers.Serializer):
    # Blank is the service's refusal (code note_required), not a serializer error.
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class ExceptionResolveApi(APIView):
    """Resolve an open exception with a note (required). Roles: as assign."""

    required_permissions = {"POST": RESOLVE}

    @extend_schema(request=ExceptionResolveInput, responses=ExceptionOutput)
    def post(self, request: Request, exception_id: int) -> Response:
        data = ExceptionResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        exception_resolve(
            exception_id=exception_id, note=data.validated_data["note"], actor=request.user
        )
        return Response(_out(exception_id))


class ExceptionReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


class ExceptionReopenApi(APIView):
    """Put a resolved exception back in the queue (``reason`` required). Roles: as assign."""

    required_permissions = {"POST": RESOLVE}

    @extend_schema(request=ExceptionReopenInput, responses=ExceptionOutput)
    def post(self, request: Request, exception_id: int) -> Response:
        data = ExceptionReopenInput(data=request.data)
        data.is_valid(raise_exception=True)
        exception_reopen(
            exception_id=exception_id, reason=data.validated_data["reason"], actor=request.user
        )
        return Response(_out(exception_id))


class ExceptionReportApi(APIView):
    """The report of the filtered exceptions: ``format=csv`` (a header row, then one row per
    exception) or ``format=pdf``. Roles: as the list."""

    required_permissions = {"GET": VIEW}

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # ``format`` picks the report, not a renderer; errors are rendered as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[*FILTER_PARAMETERS, OpenApiParameter("format", str, enum=["csv", "pdf"])],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF"),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        kind = request.query_params.get("format") or "csv"
        if kind not in ("csv", "pdf"):
            raise serializers.ValidationError({"format": ['"csv" or "pdf".']})
        filters = _filters(request)
        stamp = timezone.localdate().isoformat()
        if kind == "csv":
            response = HttpResponse(exceptions_report_csv(filters), content_type="text/csv")
        else:
            described = ", ".join(
                f"{name} {value}" for name, value in request.query_params.items()
                if name != "format" and value
            )  # fmt: skip
            response = HttpResponse(
                exceptions_report_pdf(filters, title_filters=described),
                content_type="application/pdf",
            )
        response["Content-Disposition"] = (
            f'attachment; filename="reconciliation-exceptions-{stamp}.{kind}"'
        )
        return response


urlpatterns: list[Any] = [
    path("exceptions", ExceptionListApi.as_view(), name="reconciliation-exceptions"),
    path(
        "exceptions/report",
        ExceptionReportApi.as_view(),
        name="reconciliation-exceptions-report",
    ),
    path(
        "exceptions/<int:exception_id>",
        ExceptionDetailApi.as_view(),
        name="reconciliation-exception",
    ),
    path(
        "exceptions/<int:exception_id>/assign",
        ExceptionAssignApi.as_view(),
        name="reconciliation-exception-assign",
    ),
    path(
        "exceptions/<int:exception_id>/resolve",
        ExceptionResolveApi.as_view(),
        name="reconciliation-exception-resolve",
    ),
    path(
        "exceptions/<int:exception_id>/reopen",
        ExceptionReopenApi.as_view(),
        name="reconciliation-exception-reopen",
    ),
]
