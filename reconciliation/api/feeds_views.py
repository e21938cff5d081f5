"""``/api/reconciliation/bank-feeds``: set up bank feeds (Plaid, Yodlee), sync them now, and
read their sync log. A feed's token is write-only: it never appears in a response."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import DateField
from core.api.pagination import Pagination, paged
from core.encryption import mask_tail
from reconciliation.enums import FeedProvider, FeedStatus, FeedSyncResult
from reconciliation.models import BankFeed
from reconciliation.selectors import bank_feed_get, bank_feed_list, feed_sync_list
from reconciliation.services_feeds import (
    bank_feed_create,
    feed_sync,
)

VIEW = ["reconciliation.view_bankfeed"]


class BankFeedInput(serializers.Serializer):
    bank_account = serializers.IntegerField(min_value=1)
    provider = serializers.ChoiceField(choices=FeedProvider.choices)
    # Plaid account_id / Yodlee accountId.
    external_account_id = serializers.CharField(max_length=100)
    # Plaid: the Item's access token; Yodlee: the user's login name. Write-only.
    access_token = serializers.CharField(max_length=2000, write_only=True)


class BankFeedOutput(serializers.Serializer):
    id = serializers.IntegerField()
    bank_account = serializers.IntegerField(source="bank_account_id")
    bank_account_name = serializers.CharField(source="bank_account.name")
    provider = serializers.ChoiceField(choices=FeedProvider.choices)
    # Only the last four characters (••••vp99).
    external_account_id = serializers.SerializerMethodField()
    has_access_token = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=FeedStatus.choices)
    consecutive_failures = serializers.IntegerField()
    last_error = serializers.CharField()
    synced_through = DateField(allow_null=True)
    last_synced_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_external_account_id(self, obj: BankFeed) -> str:
        return mask_tail(obj.external_account_id)

    def get_has_access_token(self, obj: BankFeed) -> bool:
        return bool(obj.access_token)


class FeedSyncOutput(serializers.Serializer):
    id = serializers.IntegerField()
    feed = serializers.IntegerField(source="feed_id")
    result = serializers.ChoiceField(choices=FeedSyncResult.choices)
    error_code = serializers.CharField()
    error = serializers.CharField()
    added = serializers.IntegerField()
    modified = serializers.IntegerField()
    removed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    pending = serializers.IntegerField()
    statement = serializers.IntegerField(source="statement_id", allow_null=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class BankFeedListCreateApi(APIView):
    """List feeds (token never shown, provider account id masked) or set one up (201).
    Roles: read finance_admin, controller, ar_clerk, ap_clerk, auditor; set up
    finance_admin."""

    required_permissions = {"GET": VIEW, "POST": ["reconciliation.add_bankfeed"]}

    @extend_schema(
        parameters=[OpenApiParameter("bank_account", int)],
        responses=paged(BankFeedOutput),
    )
    def get(self, request: Request) -> Response:
        bank_account = request.query_params.get("bank_account")
        if bank_account is not None and not bank_account.isdigit():
            raise serializers.ValidationError({"bank_account": ["An id."]})
        qs = bank_feed_list(bank_account_id=int(bank_account) if bank_account else None)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(BankFeedOutput(page, many=True).data)

    @extend_schema(request=BankFeedInput, responses={201: BankFeedOutput})
    def post(self, request: Request) -> Response:
        data = BankFeedInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        feed = bank_feed_create(
            actor=request.user,
            bank_account_id=v["bank_account"],
            provider=v["provider"],
            external_account_id=v["external_account_id"],
            access_token=v["access_token"],
        )
        feed = bank_feed_get(feed_id=feed.pk)
        return Response(BankFeedOutput(feed).data, status=status.HTTP_201_CREATED)


class BankFeedDetailApi(APIView):
    """One feed. Roles: finance_admin, controller, ar_clerk, ap_clerk, auditor."""

    required_permissions = {"GET": VIEW}

    @extend_schema(responses=BankFeedOutput)
    def get(self, request: Request, feed_id: int) -> Response:
        return Response(BankFeedOutput(bank_feed_get(feed_id=feed_id)).data)


class BankFeedSyncApi(APIView):
    """Sync a feed now: 200 with the sync's counts; when the provider fails, the failure is
    recorded on the feed and answered 502 with the feed error's code (``login_required``,
    ``provider_unavailable``...) and the recorded sync; 409 ``feed_disabled`` for a disabled
    feed. Roles: finance_admin, controller, ar_clerk, ap_clerk, integration."""

    required_permissions = {"POST": ["reconciliation.sync_feed"]}

    @extend_schema(request=None, responses={200: FeedSyncOutput, 502: FeedSyncOutput})
    def post(self, request: Request, feed_id: int) -> Response:
        sync = feed_sync(feed_id=feed_id, actor=request.user)
        body = FeedSyncOutput(sync).data
        if sync.result == FeedSyncResult.OK:
            return Response(body)
        error: dict[str, Any] = {
            "code": sync.error_code,
            "message": sync.error,
            "errors": {},
            "sync": body,
        }
        return Response(error, status=status.HTTP_502_BAD_GATEWAY)


class FeedSyncListApi(APIView):
    """A feed's syncs, newest first, failed ones included. Roles: finance_admin, controller,
    ar_clerk, ap_clerk, auditor."""

    required_permissions = {"GET": ["reconciliation.view_feedsync"]}

    @extend_schema(responses=paged(FeedSyncOutput))
    def get(self, request: Request, feed_id: int) -> Response:
        feed = bank_feed_get(feed_id=feed_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(feed_sync_list(feed_id=feed.pk), request, view=self)
        return paginator.get_paginated_response(FeedSyncOutput(page or [], many=True).data)


urlpatterns: list[Any] = [
    path("bank-feeds", BankFeedListCreateApi.as_view(), name="reconciliation-bank-feeds"),
    path(
        "bank-feeds/<int:feed_id>",
        BankFeedDetailApi.as_view(),
        name="reconciliation-bank-feed",
    ),
    path(
        "bank-feeds/<int:feed_id>/sync",
        BankFeedSyncApi.as_view(),
        name="reconciliation-bank-feed-sync",
    ),
    path(
        "bank-feeds/<int:feed_id>/syncs",
        FeedSyncListApi.as_view(),
        name="reconciliation-bank-feed-syncs",
    ),
]
