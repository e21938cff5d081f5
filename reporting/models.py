from django.db import models


class ReportPermission(models.Model):
    """Holds the reporting app's permissions, which belong to no one model (no table).

    ``view_dashboard``: the workspace's dashboard (panels further limited by the person's role).
    ``view_financial_reports``: financial statements, KPIs, forecasts and their APIs.
    ``run_compliance_reports``: the SOX evidence reports (controller, auditor, finance_admin).
    ``record_marketing_spend``: post marketing spend for acquisition reports.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = (
            ("view_dashboard", "Can view the finance dashboard"),
            ("view_financial_reports", "Can view financial statements, KPIs and forecasts"),
            ("run_compliance_reports", "Can run compliance audit reports"),
            ("record_marketing_spend", "Can record marketing spend"),
        )

    def __str__(self) -> str:
        return "Reporting permissions"
