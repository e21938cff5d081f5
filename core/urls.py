from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api.errors import json_not_found
from core.api.health import healthz
from core.api.permissions import PUBLIC
from core.api.users import UserExportApi


class SchemaApi(SpectacularAPIView):
    required_permissions = PUBLIC


class DocsApi(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served from this address, not inline: the
    Content-Security-Policy allows no inline script."""

    required_permissions = PUBLIC


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("approvals/", include("payables.screens.urls")),
    path("pay/", include("billing.hosted.urls")),
    path("portal/", include("portal.urls")),
    path("api/portal/", include("portal.api_urls")),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", DocsApi.as_view(url_name="schema"), name="swagger-ui"),
    path("api/users/<int:user_id>/export", UserExportApi.as_view(), name="user-export"),
    path("api/ledger/", include("core.ledger.api.urls")),
    path("api/billing/", include("billing.api.urls")),
    path("api/accounts/", include("receivables.api.urls")),
    path("api/accounts/", include("payables.api.account_urls")),
    path("api/payables/", include("payables.api.urls")),
    path("api/reconciliation/", include("reconciliation.api.urls")),
    path("api/accounts/", include("reconciliation.api.reconcile_urls")),
    path("api/reporting/", include("reporting.api.urls")),
    path("api/", include("core.events.api.urls")),
]


def handler404(request, exception=None):  # type: ignore[no-untyped-def]
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
