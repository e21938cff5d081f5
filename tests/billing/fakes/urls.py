"""The project's URLs with the processor routes included, until billing.api.urls includes them."""

from django.urls import include, path

from core.urls import handler404
from core.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/billing/", include("billing.api.processor_urls")),
    *project_urlpatterns,
]

__all__ = ["handler404", "urlpatterns"]
