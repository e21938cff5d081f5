from django.urls import path

from core.ledger.api import views

urlpatterns = [
    path("accounts", views.AccountListApi.as_view(), name="ledger-accounts"),
    path("journal-entries", views.JournalEntryListCreateApi.as_view(), name="ledger-entries"),
    path(
        "journal-entries/<int:entry_id>",
        views.JournalEntryDetailApi.as_view(),
        name="ledger-entry",
    ),
    path(
        "journal-entries/<int:entry_id>/reverse",
        views.JournalEntryReverseApi.as_view(),
        name="ledger-entry-reverse",
    ),
    path("manual-entries", views.ManualEntryListApi.as_view(), name="ledger-manual-entries"),
    path(
        "manual-entries/<int:manual_id>",
        views.ManualEntryDetailApi.as_view(),
        name="ledger-manual-entry",
    ),
    path(
        "manual-entries/<int:manual_id>/approve",
        views.ManualEntryApproveApi.as_view(),
        name="ledger-manual-entry-approve",
    ),
    path(
        "manual-entries/<int:manual_id>/reject",
        views.ManualEntryRejectApi.as_view(),
        name="ledger-manual-entry-reject",
    ),
    path("closes", views.MonthCloseListApi.as_view(), name="ledger-closes"),
    path(
        "closes/<str:period>",
        views.MonthCloseDetailApi.as_view(),
        name="ledger-close",
    ),
    path(
        "closes/<str:period>/reopen",
        views.MonthReopenApi.as_view(),
        name="ledger-close-reopen",
    ),
    path("trial-balance", views.TrialBalanceApi.as_view(), name="ledger-trial-balance"),
    path("fx-rates", views.FxRateListCreateApi.as_view(), name="ledger-fx-rates"),
]
