from django.urls import path

from receivables.api import dispute_views

urlpatterns = [
    path("disputes", dispute_views.DisputeListOpenApi.as_view(), name="accounts-disputes"),
    path(
        "disputes/<int:dispute_id>/review",
        dispute_views.DisputeReviewApi.as_view(),
        name="accounts-dispute-review",
    ),
    path(
        "disputes/<int:dispute_id>/resolve",
        dispute_views.DisputeResolveApi.as_view(),
        name="accounts-dispute-resolve",
    ),
]
