"""The reconciliation report, period sign-off and the reconciliation audit trail:
``/api/reconciliation/bank-accounts/{id}/report``, ``/api/reconciliation/sign-offs``,
``/api/reconciliation/audit-events``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import DateField
from core.api.pagination import Pagination, paged
from core.exceptions import NotFound
from reconciliation.enums import AuditAction
from reconciliation.models import AuditEvent, SignOff
from reconciliation.selectors_close import reconciliation_report
from reconciliation.services_close import sign_off_create, sign_off_reopen

if TYPE_CHECKING:
    from django.contrib.auth.models import User

REPORT_VIEW = ["reconciliation.view_statement", "reconciliation.view_match"]
SIGN_OFF_VIEW = ["reconciliation.view_signoff"]
SIGN_OFF = ["reconciliation.sign_off_reconciliation"]
AUDIT_VIEW = ["reconciliation.view_auditevent"]


class PeriodInput(serializers.Serializer):
    period_start = DateField()
    period_end = DateField()


class SignOffInput(PeriodInput):
    bank_account = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class SignOffOutput(serializers.ModelSerializer):
    signed_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    reopened_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = SignOff
        fields = (
            "id",
            "bank_account",
            "period_start",
            "period_end",
            "currency",
            "statement_balance",
            "book_balance",
            "unexplained",
            "status",
            "note",
            "signed_by",
            "signed_at",
            "reopened_by",
            "reopened_at",
            "reopen_reason",
            "report",
        )


class AuditEventOutput(serializers.ModelSerializer):
    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = AuditEvent
        fields = ("id", "action", "at", "actor", "bank_account", "subject", "reason", "details")


class ReportApi(APIView):
    """The reconciliation report of a bank account for ``period_start``..``period_end``:
    statement vs book balance with the reconciling items. Roles: finance_admin, ar_clerk,
    ap_clerk, controller, auditor."""

    required_permissions = {"GET": REPORT_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", str, required=True),
            OpenApiParameter("period_end", str, required=True),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, bank_account_id: int) -> Response:
        data = PeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        report = reconciliation_report(
            bank_account_id=bank_account_id,
            period_start=data.validated_data["period_start"],
            period_end=data.validated_data["period_end"],
        )
        return Response(report.as_dict())


class SignOffListCreateApi(APIView):
    """GET the sign-offs (``bank_account`` filter); POST signs a period off (201), refused
    with 409 ``unexplained_difference``, ``suggestions_pending`` or ``period_signed_off``,
    403 ``signer_made_matches``. Roles: read finance_admin, ar_clerk, ap_clerk, controller,
    auditor; sign off controller."""

    required_permissions = {"GET": SIGN_OFF_VIEW, "POST": SIGN_OFF}

    @extend_schema(
        parameters=[OpenApiParameter("bank_account", int)],
        responses=paged(SignOffOutput),
    )
    def get(self, request: Request) -> Response:
        qs = SignOff.objects.select_related("signed_by", "reopened_by").order_by(
            "-period_end", "-pk"
        )
        account = request.query_params.get("bank_account")
        if account is not None:
            if not account.isdigit():
                raise serializers.ValidationError({"bank_account": ["An id."]})
            qs = qs.filter(bank_account_id=int(account))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(SignOffOutput(page, many=True).data)

    @extend_schema(request=SignOffInput, responses={201: SignOffOutput})
    def post(self, request: Request) -> Response:
        data = SignOffInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sign_off = sign_off_create(
            actor=request.user,
            bank_account_id=v["bank_account"],
            period_start=v["period_start"],
            period_end=v["period_end"],
            note=v["note"],
        )
        return Response(SignOffOutput(sign_off).data, status=status.HTTP_201_CREATED)


class SignOffDetailApi(APIView):
    required_permissions = {"GET": SIGN_OFF_VIEW}

    @extend_schema(responses=SignOffOutput)
    def get(self, request: Request, sign_off_id: int) -> Response:
        sign_off = SignOff.objects.filter(pk=sign_off_id).first()
        if sign_off is None:
            raise NotFound(f"No sign-off {sign_off_id}.")
        return Response(SignOffOutput(sign_off).data)


class SignOffReopenApi(APIView):
    """Reopen the last signed-off period (a reason is required). Role: controller."""

    required_permissions = {"POST": SIGN_OFF}

    @extend_schema(request=ReopenInput, responses=SignOffOutput)
    def post(self, request: Request, sign_off_id: int) -> Response:
        data = ReopenInput(data=request.data)
        data.is_valid(raise_exception=True)
        sign_off = sign_off_reopen(
            actor=request.user, sign_off_id=sign_off_id, reason=data.validated_data["reason"]
        )
        return Response(SignOffOutput(sign_off).data)


class AuditEventListApi(APIView):
    """The reconciliation audit trail, newest first: filters ``bank_account``, ``action``,
    ``subject`` ("match:42"), ``since``/``until`` (dates). Roles: finance_admin, ar_clerk,
    ap_clerk, controller, auditor."""

    required_permissions = {"GET": AUDIT_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("bank_account", int),
            OpenApiParameter("action", str, enum=AuditAction.values),
            OpenApiParameter("subject", str),
            OpenApiParameter("since", OpenApiTypes.DATE),
            OpenApiParameter("until", OpenApiTypes.DATE),
        ],
        responses=paged(AuditEventOutput),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        qs = AuditEvent.objects.select_related("actor").order_by("-at", "-pk")
        filters: dict[str, Any] = {}
        account = params.get("bank_account")
        if account is not None:
            if not account.isdigit():
                raise serializers.ValidationError({"bank_account": ["An id."]})
            filters["bank_account_id"] = int(account)
        action = params.get("action")
        if action:
            if action not in AuditAction.values:
                raise serializers.ValidationError({"action": [f"One of {AuditAction.values}."]})
            filters["action"] = action
        if params.get("subject"):
            filters["subject"] = params["subject"]
        for name, lookup in (("since", "at__date__gte"), ("until", "at__date__lte")):
            if params.get(name):
                field = DateField()
                try:
                    filters[lookup] = field.to_internal_value(params[name])
                except serializers.ValidationError as exc:
                    raise serializers.ValidationError({name: exc.detail}) from None
        paginator = Pagination()
        page = paginator.paginate_queryset(qs.filter(**filters), request, view=self) or []
        return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)


urlpatterns = [
    path(
        "bank-accounts/<int:bank_account_id>/report",
        ReportApi.as_view(),
        name="reconciliation-report",
    ),
    path("sign-offs", SignOffListCreateApi.as_view(), name="reconciliation-sign-offs"),
    path(
        "sign-offs/<int:sign_off_id>",
        SignOffDetailApi.as_view(),
        name="reconciliation-sign-off",
    ),
    path(
        "sign-offs/<int:sign_off_id>/reopen",
        SignOffReopenApi.as_view(),
        name="reconciliation-sign-off-reopen",
    ),
    path("audit-events", AuditEventListApi.as_view(), name="reconciliation-audit-events"),
]
