from django.db import models
from django.utils import timezone


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


class KpiSnapshot(models.Model):
    """One KPI's value on one day, in one currency ("" for figures that are not money).

    Written once a day by ``reporting.kpi_snapshot`` (or ``kpis_backfill``): a row is never
    replaced, so the history shows what was reported that day."""

    date = models.DateField()
    kpi = models.CharField(max_length=40)
    currency = models.CharField(max_length=3, blank=True, default="")
    value = models.DecimalField(max_digits=24, decimal_places=4)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("date", "kpi", "currency")
        constraints = [
            models.UniqueConstraint(
                fields=("date", "kpi", "currency"), name="reporting_kpi_snapshot_once"
            ),
        ]
        indexes = [models.Index(fields=("kpi", "date"), name="reporting_kpi_by_code")]

    def __str__(self) -> str:
        return f"{self.kpi} {self.date} {self.value} {self.currency}".rstrip()
