"""Routes of the cash-flow projection and the revenue forecast (``projection_views``)."""

from django.urls import URLPattern, path

from reporting.api import projection_views as views

urlpatterns: list[URLPattern] = [
    path(
        "cash-flow-projection",
        views.CashFlowProjectionApi.as_view(),
        name="reporting-cash-flow-projection",
    ),
    path("forecast", views.RevenueForecastApi.as_view(), name="reporting-forecast"),
]
