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
    # Lines that came from a bank feed (Plaid, Yodlee): one "statement" per sync.
    FEED = "feed", "Bank feed"


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
    PAYOUT = "payout", "Card-processor payout"
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


class FeedProvider(models.TextChoices):
    PLAID = "plaid", "Plaid"
    YODLEE = "yodlee", "Yodlee"


class FeedStatus(models.TextChoices):
    """A feed in error keeps being tried on schedule; a disabled one is not."""

    ACTIVE = "active", "Active"
    ERROR = "error", "Failing"
    DISABLED = "disabled", "Disabled"


class FeedSyncResult(models.TextChoices):
    OK = "ok", "Synced"
    FAILED = "failed", "Failed"


class PayoutStatus(models.TextChoices):
    """An imported payout waits for its bank deposit; reconciled once the deposit is matched
    and the settlement posted; an exception when its parts do not add up to it."""

    IMPORTED = "imported", "Imported, waiting for the deposit"
    RECONCILED = "reconciled", "Reconciled"
    EXCEPTION = "exception", "Does not add up"


class ExceptionKind(models.TextChoices):
    UNMATCHED_LINE = "unmatched_line", "Unmatched bank line"
    AMOUNT_DIFFERENCE = "amount_difference", "Amount difference"
    SUSPECTED_DUPLICATE = "suspected_duplicate", "Suspected duplicate"
    SEQUENCE_GAP = "sequence_gap", "Gap in statement sequence"
    PAYOUT_MISMATCH = "payout_mismatch", "Payout does not add up"
    FEED_CHANGE = "feed_change", "Feed removed or changed a matched transaction"


class ExceptionStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class SignOffStatus(models.TextChoices):
    SIGNED = "signed", "Signed off"
    REOPENED = "reopened", "Reopened"


class AuditAction(models.TextChoices):
    """What the reconciliation audit trail records (who, when and why for each)."""

    IMPORT = "import", "Statement imported"
    IMPORT_REFUSED = "import_refused", "Import refused"
    FEED_SYNC = "feed_sync", "Bank feed synced"
    FEED_CHANGED = "feed_changed", "Bank feed set up or changed"
    PAYOUT_IMPORTED = "payout_imported", "Payout imported"
    PAYOUT_RECONCILED = "payout_reconciled", "Payout reconciled"
    MATCH_APPLIED = "match_applied", "Match applied"
    MATCH_REJECTED = "match_rejected", "Suggestion rejected"
    MATCH_UNDONE = "match_undone", "Match undone"
    MATCH_MANUAL = "match_manual", "Match made by hand"
    RULE_CREATED = "rule_created", "Rule created"
    RULE_CHANGED = "rule_changed", "Rule changed"
    EXCEPTION_ASSIGNED = "exception_assigned", "Exception assigned"
    EXCEPTION_RESOLVED = "exception_resolved", "Exception resolved"
    EXCEPTION_REOPENED = "exception_reopened", "Exception reopened"
    SIGN_OFF = "sign_off", "Period signed off"
    SIGN_OFF_REOPENED = "sign_off_reopened", "Signed-off period reopened"


# What each engine rule code means, for the people who decide on its suggestions.
MATCH_RULE_LABELS = {
    "reference": "Reference in the bank text",
    "amount_date_counterparty": "Same amount, date and payer",
    "fuzzy_name": "Similar payer name, same amount",
    "several_invoices": "Several invoices of one payer",
    "partial_payment": "Part payment of an invoice",
    "payout": "Card-processor payout",
    "user_rule": "Your matching rule",
    "manual": "Matched by hand",
    "payment": "Existing payment",
    "payment_run": "Payment run",
    "payment_run_item": "Payment in a payment run",
    "invoice": "Invoice",
    "account": "Ledger account",
}


def rule_label(code: str) -> str:
    """A match rule code in words (engine rules, user rules, manual matches)."""
    return MATCH_RULE_LABELS.get(code) or code.replace("_", " ").capitalize()
