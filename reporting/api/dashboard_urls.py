"""Route of the dashboard's figures (``reporting.api.dashboard_views``)."""

from django.urls import URLPattern, path

from reporting.api import dashboard_views as views

urlpatterns: list[URLPattern] = [
    path("dashboard", views.DashboardApi.as_view(), name="reporting-dashboard"),
]
