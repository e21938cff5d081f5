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
