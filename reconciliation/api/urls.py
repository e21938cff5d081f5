from django.urls import path

from reconciliation.api import (
    close_views,
    exceptions_views,
    feeds_views,
    matching_views,
    payouts_views,
    views,
)

urlpatterns = [
    path(
        "bank-accounts",
        views.BankAccountListCreateApi.as_view(),
        name="reconciliation-bank-accounts",
    ),
    path("statements", views.StatementListImportApi.as_view(), name="reconciliation-statements"),
    path(
        "statements/<int:statement_id>",
        views.StatementDetailApi.as_view(),
        name="reconciliation-statement",
    ),
    path("matches", matching_views.MatchListApi.as_view(), name="reconciliation-matches"),
    *[
        path(
            f"matches/<int:match_id>/{action}",
            matching_views.MatchDecisionApi.as_view(),
            {"action": action},
            name=f"reconciliation-match-{action}",
        )
        for action in ("accept", "reject", "undo")
    ],
    path("rules", matching_views.RuleListCreateApi.as_view(), name="reconciliation-rules"),
    *feeds_views.urlpatterns,
    *payouts_views.urlpatterns,
    *exceptions_views.urlpatterns,
    *close_views.urlpatterns,
]
