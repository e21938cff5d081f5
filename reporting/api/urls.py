"""The reporting API (`/api/reporting/`): read-only figures for other systems, plus marketing spend.

Each part keeps its routes in its own module; this file only joins them.
"""

from reporting.api import dashboard_urls, kpi_urls, marketing_urls, projection_urls, statement_urls

urlpatterns = [
    *statement_urls.urlpatterns,
    *kpi_urls.urlpatterns,
    *projection_urls.urlpatterns,
    *dashboard_urls.urlpatterns,
    *marketing_urls.urlpatterns,
]
