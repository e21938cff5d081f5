"""Routes of the marketing spend and acquisition economics API (``marketing_views``)."""

from django.urls import URLPattern, path

from reporting.api import marketing_views as views

urlpatterns: list[URLPattern] = [
    path(
        "marketing-spend",
        views.MarketingSpendListCreateApi.as_view(),
        name="reporting-marketing-spend",
    ),
    path("acquisition", views.AcquisitionApi.as_view(), name="reporting-acquisition"),
]
