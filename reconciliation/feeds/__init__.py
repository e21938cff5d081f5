"""Bank feed clients (Plaid, Yodlee): pure functions over HTTP, no models, no settings.

The caller passes hosts and keys; what comes back is frozen dataclasses with Decimal amounts
signed like statement lines (money in positive), and the only error is ``FeedError``.
"""

from reconciliation.feeds.errors import FeedError, FeedErrorCode
from reconciliation.feeds.retry import NO_RETRY, RetryPolicy
from reconciliation.feeds.types import FeedAccount, FeedTransaction, RemovedTransaction, SyncResult

__all__ = [
    "NO_RETRY",
    "FeedAccount",
    "FeedError",
    "FeedErrorCode",
    "FeedTransaction",
    "RemovedTransaction",
    "RetryPolicy",
    "SyncResult",
]
