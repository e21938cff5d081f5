"""Ledger API: accounts, journal entries (manual posting, reversal), trial balance, FX rates."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import MONTH_IN_RANGE, CurrencyField, DateField, MonthField
from core.api.pagination import Pagination, paged
from core.fx import fx_rate_create, fx_rate_list
from core.ledger.api.serializers import (
    AccountOutput,
    FxRateInput,
    FxRateOutput,
    JournalEntryInput,
    JournalEntryOutput,
    ManualEntryOutput,
    MonthCloseInput,
    MonthCloseOutput,
    MonthReopenInput,
    MonthStatusOutput,
    RejectInput,
    ReverseInput,
    TrialBalanceOutput,
)
from core.ledger.close import month_close, month_close_status, month_closes, month_reopen
from core.ledger.enums import ManualEntryStatus
from core.ledger.manual import manual_entry_approve, manual_entry_reject, manual_entry_submit
from core.ledger.models import Account
from core.ledger.selectors import journal_entry_list, manual_entry_list, trial_balance
from core.ledger.services import journal_reverse


class AccountListApi(APIView):
    required_permissions = {"GET": ["ledger.view_account"]}

    @extend_schema(responses=AccountOutput(many=True))
    def get(self, request: Request) -> Response:
        accounts = Account.objects.order_by("code")
        return Response(AccountOutput(accounts, many=True).data)


class JournalEntryListCreateApi(APIView):
    required_permissions = {
        "GET": ["ledger.view_journalentry"],
        "POST": ["ledger.post_journalentry"],
    }

    class FilterInput(serializers.Serializer):
        date_from = DateField(required=False)
        date_to = DateField(required=False)
        # DRF's metaclass takes declared fields off the class: no shadowing of Field.source.
        source = serializers.CharField(required=False)  # type: ignore[assignment]
        account = serializers.CharField(required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("date_from", OpenApiTypes.DATE, description="YYYY-MM-DD"),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="YYYY-MM-DD"),
            OpenApiParameter("source", str),
            OpenApiParameter("account", str, description="Account code"),
        ],
        responses=paged(JournalEntryOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = journal_entry_list(**filters.validated_data)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(JournalEntryOutput(page, many=True).data)

    @extend_schema(
        request=JournalEntryInput,
        responses={201: JournalEntryOutput, 202: ManualEntryOutput},
        description="Posts a manual journal entry at once (201, the entry) when its debits in "
        "the functional currency are at or under the system settings' "
        "ledger.manual_approval_threshold; a larger one waits for the approval of someone "
        "other than its author (202, the manual entry: approve it through "
        "POST /api/ledger/manual-entries/{id}/approve).",
    )
    def post(self, request: Request) -> Response:
        data = JournalEntryInput(data=request.data)
        data.is_valid(raise_exception=True)
        manual = manual_entry_submit(actor=request.user, **data.validated_data)
        if manual.journal_entry_id is None:
            manual = manual_entry_list().get(pk=manual.pk)
            return Response(ManualEntryOutput(manual).data, status=status.HTTP_202_ACCEPTED)
        entry = journal_entry_list().get(pk=manual.journal_entry_id)
        return Response(JournalEntryOutput(entry).data, status=status.HTTP_201_CREATED)


class ManualEntryListApi(APIView):
    required_permissions = {"GET": ["ledger.view_manualentry"]}

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=ManualEntryStatus.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=ManualEntryStatus.values)],
        responses=paged(ManualEntryOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = manual_entry_list(**filters.validated_data)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ManualEntryOutput(page, many=True).data)


class ManualEntryDetailApi(APIView):
    required_permissions = {"GET": ["ledger.view_manualentry"]}

    @extend_schema(responses=ManualEntryOutput)
    def get(self, request: Request, manual_id: int) -> Response:
        manual = get_object_or_404(manual_entry_list(), pk=manual_id)
        return Response(ManualEntryOutput(manual).data)


class ManualEntryApproveApi(APIView):
    required_permissions = {"POST": ["ledger.approve_manualentry"]}

    @extend_schema(
        request=None,
        responses=ManualEntryOutput,
        description="Approves someone else's pending manual entry and posts it.",
    )
    def post(self, request: Request, manual_id: int) -> Response:
        get_object_or_404(manual_entry_list(), pk=manual_id)
        manual = manual_entry_approve(entry_id=manual_id, actor=request.user)
        return Response(ManualEntryOutput(manual_entry_list().get(pk=manual.pk)).data)


class ManualEntryRejectApi(APIView):
    required_permissions = {"POST": ["ledger.approve_manualentry"]}

    @extend_schema(request=RejectInput, responses=ManualEntryOutput)
    def post(self, request: Request, manual_id: int) -> Response:
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        get_object_or_404(manual_entry_list(), pk=manual_id)
        manual = manual_entry_reject(entry_id=manual_id, actor=request.user, **data.validated_data)
        return Response(ManualEntryOutput(manual_entry_list().get(pk=manual.pk)).data)


class JournalEntryDetailApi(APIView):
    required_permissions = {"GET": ["ledger.view_journalentry"]}

    @extend_schema(responses=JournalEntryOutput)
    def get(self, request: Request, entry_id: int) -> Response:
        entry = get_object_or_404(journal_entry_list(), pk=entry_id)
        return Response(JournalEntryOutput(entry).data)


class JournalEntryReverseApi(APIView):
    required_permissions = {"POST": ["ledger.reverse_journalentry"]}

    @extend_schema(request=ReverseInput, responses={201: JournalEntryOutput})
    def post(self, request: Request, entry_id: int) -> Response:
        data = ReverseInput(data=request.data)
        data.is_valid(raise_exception=True)
        get_object_or_404(journal_entry_list(), pk=entry_id)
        reversal = journal_reverse(entry_id=entry_id, actor=request.user, **data.validated_data)
        reversal = journal_entry_list().get(pk=reversal.pk)
        return Response(JournalEntryOutput(reversal).data, status=status.HTTP_201_CREATED)


class TrialBalanceApi(APIView):
    required_permissions = {"GET": ["ledger.view_trial_balance"]}

    class FilterInput(serializers.Serializer):
        as_of = DateField(required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATE,
                description="YYYY-MM-DD; today when omitted (entries dated later are left out), "
                "as for every as-of report",
            )
        ],
        responses=TrialBalanceOutput,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        as_of = filters.validated_data.get("as_of") or timezone.localdate()
        tb = trial_balance(as_of=as_of)
        data = {
            "as_of": tb.as_of,
            "balanced": tb.is_balanced,
            "rows": tb.rows,
            "totals": [
                {"currency": c, "debit": d, "credit": cr} for c, (d, cr) in tb.totals.items()
            ],
            "functional_currency": settings.SYSTEM_SETTINGS.functional_currency,
            "functional_debit": tb.functional_totals[0],
            "functional_credit": tb.functional_totals[1],
        }
        return Response(TrialBalanceOutput(data).data)


class FxRateListCreateApi(APIView):
    """Roles: read for every staff role and integrations; record for finance_admin,
    controller and integrations. A recorded rate is never changed (409 ``fx_rate_exists``);
    the same rate again answers 200 with the row on record."""

    required_permissions = {"GET": ["core.view_fxrate"], "POST": ["core.add_fxrate"]}

    class FilterInput(serializers.Serializer):
        base_currency = CurrencyField(required=False)
        quote_currency = CurrencyField(required=False)
        date_from = DateField(required=False)
        date_to = DateField(required=False)
        # DRF's metaclass takes declared fields off the class: no shadowing of Field.source.
        source = serializers.CharField(required=False)  # type: ignore[assignment]

    @extend_schema(
        parameters=[
            OpenApiParameter("base_currency", str, description="ISO 4217, e.g. EUR"),
            OpenApiParameter("quote_currency", str, description="ISO 4217, e.g. USD"),
            OpenApiParameter(
                "date_from", OpenApiTypes.DATE, description="YYYY-MM-DD, rate dates from"
            ),
            OpenApiParameter(
                "date_to", OpenApiTypes.DATE, description="YYYY-MM-DD, rate dates through"
            ),
            OpenApiParameter("source", str),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="At most 500"),
        ],
        responses=paged(FxRateOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = fx_rate_list(**filters.validated_data)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(FxRateOutput(page, many=True).data)

    @extend_schema(
        request=FxRateInput,
        responses={201: FxRateOutput, 200: FxRateOutput},
        description="Record a rate: 201 when recorded, 200 when the same pair, day, rate and "
        "source is already on record, 409 fx_rate_exists when another rate is.",
    )
    def post(self, request: Request) -> Response:
        data = FxRateInput(data=request.data)
        data.is_valid(raise_exception=True)
        rate, created = fx_rate_create(actor=request.user, **data.validated_data)
        return Response(
            FxRateOutput(rate).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


PERIOD = OpenApiParameter(
    "period",
    {"type": "string", "pattern": MONTH_IN_RANGE},
    OpenApiParameter.PATH,
    description="The month, YYYY-MM.",
)


def _period(text: str) -> date:
    """A ``YYYY-MM`` path segment; anything else is a 400 naming ``period``."""
    field = MonthField()
    try:
        return field.run_validation(text)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"period": exc.detail}) from None


class MonthCloseListApi(APIView):
    """Month-end closes, newest first (reopened ones included: the close history); POST
    closes a month when every checklist item is green (201), else 409 ``close_items_red``
    with the red items under ``details.items``. Roles: the controller closes; finance_admin,
    controller and auditor read."""

    required_permissions = {
        "GET": ["ledger.view_monthclose"],
        "POST": ["ledger.close_month"],
    }

    @extend_schema(responses=paged(MonthCloseOutput))
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(month_closes(), request, view=self)
        return paginator.get_paginated_response(MonthCloseOutput(page, many=True).data)

    @extend_schema(request=MonthCloseInput, responses={201: MonthCloseOutput})
    def post(self, request: Request) -> Response:
        data = MonthCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        close = month_close(actor=request.user, period=data.validated_data["period"])
        return Response(MonthCloseOutput(close).data, status=status.HTTP_201_CREATED)


class MonthCloseDetailApi(APIView):
    """One month: closed or not, with its checklist (as it stood when closed; computed now
    while the month is open, each red item saying what is missing and where)."""

    required_permissions = {"GET": ["ledger.view_monthclose"]}

    @extend_schema(parameters=[PERIOD], responses=MonthStatusOutput)
    def get(self, request: Request, period: str) -> Response:
        return Response(MonthStatusOutput(month_close_status(_period(period))).data)


class MonthReopenApi(APIView):
    """Reopen a closed month with a reason (finance_admin): the books' lock goes back to the
    previous month's end, and later closed months are reopened with it. 404 when the month
    is not closed."""

    required_permissions = {"POST": ["ledger.reopen_month"]}

    @extend_schema(parameters=[PERIOD], request=MonthReopenInput, responses=MonthCloseOutput)
    def post(self, request: Request, period: str) -> Response:
        data = MonthReopenInput(data=request.data)
        data.is_valid(raise_exception=True)
        close = month_reopen(
            actor=request.user, period=_period(period), reason=data.validated_data["reason"]
        )
        return Response(MonthCloseOutput(close).data)
