"""Routes of the KPI API (``reporting.api.kpi_views``)."""

from django.urls import URLPattern, path

from reporting.api import kpi_views as views

urlpatterns: list[URLPattern] = [
    path("kpis", views.KpiHistoryApi.as_view(), name="reporting-kpis"),
    path("kpis/current", views.KpiCurrentApi.as_view(), name="reporting-kpis-current"),
]
