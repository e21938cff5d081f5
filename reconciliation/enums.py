from django.db import models

from reconciliation.importers.types import StatementFormat


class StatementFormatChoice(models.TextChoices):
    MT940 = StatementFormat.MT940.value, StatementFormat.MT940.label
    MT942 = StatementFormat.MT942.value, StatementFormat.MT942.label
    CAMT053 = StatementFormat.CAMT053.value, StatementFormat.CAMT053.label
    CAMT052 = StatementFormat.CAMT052.value, StatementFormat.CAMT052.label
    CAMT054 = StatementFormat.CAMT054.value, StatementFormat.CAMT054.label
    OFX = StatementFormat.OFX.value, StatementFormat.OFX.label
    BAI2 = StatementFormat.BAI2.value, StatementFormat.BAI2.label
    CSV = StatementFormat.CSV.value, StatementFormat.CSV.label


class StatementLineStatus(models.TextChoices):
    """Where a bank line stands in reconciliation (the matching engine moves it on)."""

    UNMATCHED = "unmatched", "Unmatched"
    SUGGESTED = "suggested", "Suggested"
    MATCHED = "matched", "Matched"
    EXCLUDED = "excluded", "Excluded"


class StatementControl(models.TextChoices):
    """How the import verified a statement's totals."""

    BALANCES = "balances", "Opening + lines = closing balance"
    RUNNING_BALANCE = "running_balance", "Every running balance"
    SUMMARY_TOTALS = "summary_totals", "The file's own count and sum totals"
    NONE = "none", "No totals in the file"


class ImportResult(models.TextChoices):
    IMPORTED = "imported", "Imported"
    DUPLICATE = "duplicate", "Same file already imported"
    REFUSED = "refused", "Refused"


class MatchStatus(models.TextChoices):
    """A proposal waits (proposed) until applied automatically or by a person, or rejected;
    an applied match can be undone (its postings reversed)."""

    PROPOSED = "proposed", "Proposed"
    APPLIED = "applied", "Applied"
    REJECTED = "rejected", "Rejected"
    UNDONE = "undone", "Undone"


class MatchTargetKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    PAYMENT = "payment", "Existing payment"
    PAYMENT_RUN = "payment_run", "Payment run"
    PAYMENT_RUN_ITEM = "payment_run_item", "Payment run item"
    ACCOUNT = "account", "Ledger account"


class RuleSign(models.TextChoices):
    ANY = "any", "Any"
    CREDIT = "credit", "Money in"
    DEBIT = "debit", "Money out"


class AliasKind(models.TextChoices):
    NAME = "name", "Counterparty name"
    ACCOUNT = "account", "Counterparty account"


class ReconciliationRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
