"""``/api/accounts/reconcile``: reconciliation runs (included from core/urls.py)."""

from django.urls import path

from reconciliation.api import matching_views as views

urlpatterns = [
    path("reconcile", views.ReconcileApi.as_view(), name="accounts-reconcile"),
    path(
        "reconcile/<int:run_id>", views.ReconcileDetailApi.as_view(), name="accounts-reconcile-run"
    ),
]
