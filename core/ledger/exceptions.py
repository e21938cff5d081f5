from core.exceptions import Conflict, DomainError


class LedgerError(DomainError):
    code = "ledger_error"


class UnbalancedEntry(LedgerError):
    code = "unbalanced_entry"


class PeriodLocked(LedgerError):
    code = "period_locked"
    status_code = 409


class InactiveAccount(LedgerError):
    code = "inactive_account"


class InvalidLine(LedgerError):
    code = "invalid_line"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class DocumentEntry(Conflict):
    """The entry belongs to a document: only the document's own operation undoes it."""

    code = "document_entry"


class ControlAccount(LedgerError):
    """A manual line on an account a sub-ledger owns (its role does not take manual lines)."""

    code = "control_account"
