"""Reporting's workspace pages (mounted through core.admin_site.register_admin_pages)."""

import reporting.admin_aging  # noqa: F401
from reporting import admin_compliance as admin_compliance
from reporting import admin_dashboard as admin_dashboard
from reporting import admin_marketing as admin_marketing
from reporting import admin_reports as admin_reports
from reporting import admin_statements  # noqa: F401
