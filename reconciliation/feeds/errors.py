"""The one error a bank feed or processor client raises: a stable code, a message a person
can act on, and whether trying again later can succeed."""

from __future__ import annotations

from enum import StrEnum

from core.exceptions import DomainError


class FeedErrorCode(StrEnum):
    # Our own keys (client id / secret, Yodlee token, Stripe key) were refused.
    INVALID_CREDENTIALS = "invalid_credentials"
    # The Plaid access token does not exist or belongs to another environment.
    INVALID_ACCESS_TOKEN = "invalid_access_token"  # noqa: S105 (an error code)
    # The account holder must sign in to their bank again (Plaid Link update mode).
    LOGIN_REQUIRED = "login_required"
    RATE_LIMITED = "rate_limited"
    # The provider answered 5xx, timed out, or could not be reached.
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    # The provider could not reach the bank.
    INSTITUTION_UNAVAILABLE = "institution_unavailable"
    # Plaid's data changed while we paged, more often than we were willing to restart.
    MUTATION_DURING_PAGINATION = "mutation_during_pagination"
    INVALID_REQUEST = "invalid_request"
    # The answer was not the documented shape (not JSON, a field missing, a float amount).
    BAD_RESPONSE = "bad_response"


RETRYABLE = frozenset(
    {
        FeedErrorCode.RATE_LIMITED,
        FeedErrorCode.PROVIDER_UNAVAILABLE,
        FeedErrorCode.INSTITUTION_UNAVAILABLE,
        FeedErrorCode.MUTATION_DURING_PAGINATION,
    }
)


class FeedError(DomainError):
    """A feed call failed. ``provider_code`` is the provider's own code (``ITEM_LOGIN_REQUIRED``,
    ``Y008``), kept for support; ``retryable`` says whether the same call may succeed later."""

    code = "feed_error"
    status_code = 502

    def __init__(
        self,
        message: str,
        *,
        code: FeedErrorCode,
        provider: str,
        provider_code: str = "",
        http_status: int | None = None,
        request_id: str = "",
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, code=str(code))
        self.feed_code = code
        self.provider = provider
        self.provider_code = provider_code
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after_seconds = retry_after_seconds

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keyword-only arguments: rebuild from them, so the error survives pickling (Celery).
        return (
            _rebuild,
            (
                self.message,
                self.feed_code,
                self.provider,
                self.provider_code,
                self.http_status,
                self.request_id,
                self.retry_after_seconds,
            ),
        )

    @property
    def retryable(self) -> bool:
        return self.feed_code in RETRYABLE

    def __repr__(self) -> str:
        return (
            f"FeedError({self.provider}:{self.code}, provider_code={self.provider_code!r}, "
            f"http_status={self.http_status}, message={self.message!r})"
        )


def _rebuild(
    message: str,
    code: FeedErrorCode,
    provider: str,
    provider_code: str,
    http_status: int | None,
    request_id: str,
    retry_after_seconds: float | None,
) -> FeedError:
    return FeedError(
        message,
        code=code,
        provider=provider,
        provider_code=provider_code,
        http_status=http_status,
        request_id=request_id,
        retry_after_seconds=retry_after_seconds,
    )
