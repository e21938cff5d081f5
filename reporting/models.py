from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords


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


class ReportProduction(models.Model):
    """One download of an evidence report (SOX): which report, with what parameters, in which
    format, by whom, when, and the SHA-256 of what was served, so a copy handed to an
    auditor can be shown to be the one produced. Written by
    ``reporting.compliance.report_production_record`` in the request that serves the file;
    never changed afterwards."""

    code = models.CharField(max_length=40)
    parameters = models.JSONField(default=dict)
    format = models.CharField(max_length=4)
    produced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    produced_at = models.DateTimeField(default=timezone.now)
    # SHA-256 (hex) of the file's bytes as served.
    sha256 = models.CharField(max_length=64)
    # SHA-256 (hex) of the header and rows as CSV (``report_files.rows_sha256``): the hash the
    # file prints, the same for the CSV, XLSX and PDF of one run.
    rows_sha256 = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField()

    class Meta:
        ordering = ("-produced_at", "-pk")
        indexes = [models.Index(fields=("code", "produced_at"), name="reporting_production_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.format} {self.produced_at:%Y-%m-%d %H:%M}"


class MarketingSpend(models.Model):
    """What was spent on one acquisition channel and campaign in one calendar month, in one
    currency. Recorded by ``reporting.services.marketing_spend_record`` (the reporting app's
    one write), read by ``reporting.acquisition`` for CAC and LTV:CAC.

    One row per channel, campaign, month and currency: recording it again with the same
    amount is a no-op; another amount is refused unless it is an explicit replacement,
    which history keeps."""

    # Matches ``billing.Customer.acquisition_channel`` / ``campaign`` exactly.
    channel = models.CharField(max_length=60)
    campaign = models.CharField(max_length=100, blank=True, default="")
    # The month's first day: spend is recorded per calendar month.
    period = models.DateField()
    amount = models.DecimalField(max_digits=19, decimal_places=4)
    currency = models.CharField(max_length=3)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ("period", "channel", "campaign", "currency")
        constraints = [
            models.UniqueConstraint(
                fields=("channel", "campaign", "period", "currency"),
                name="reporting_marketing_spend_once",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="reporting_marketing_spend_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(period__day=1), name="reporting_marketing_spend_month"
            ),
            models.CheckConstraint(
                condition=~Q(channel=""), name="reporting_marketing_spend_channel"
            ),
        ]

    def __str__(self) -> str:
        key = f"{self.channel}/{self.campaign or '-'} {self.period:%Y-%m}"
        return f"{key} {self.amount} {self.currency}"
