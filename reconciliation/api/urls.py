from django.urls import path

from reconciliation.api import views

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
]
