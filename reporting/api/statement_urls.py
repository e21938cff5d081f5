"""Routes of the financial statements (``reporting.api.statement_views``)."""

from django.urls import URLPattern, path

from reporting.api import statement_views as views

urlpatterns: list[URLPattern] = [
    path("profit-and-loss", views.ProfitAndLossApi.as_view(), name="reporting-profit-and-loss"),
    path("balance-sheet", views.BalanceSheetApi.as_view(), name="reporting-balance-sheet"),
    path(
        "cash-flow-statement",
        views.CashFlowStatementApi.as_view(),
        name="reporting-cash-flow-statement",
    ),
]
