"""Admin forms that move money or post are done once, however often they are sent.

The page carries a one-time token (``once_token``, in a hidden ``_once`` field); the view
calls ``claim_once(request)`` inside the transaction that does the work. The first sending
records the token and goes on; a second one (a double click, a browser retry, a second tab)
finds it, waits for the first to commit if it is still running, and is refused with a
message instead of recording a second payment or refund. A refused or failed sending rolls
the token back with everything else, so the person can correct the form and send it again.
The API's equivalent is the Idempotency-Key header.
"""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from core.exceptions import DomainError
from core.models import FormSubmission

FIELD = "_once"


class AlreadySubmitted(DomainError):
    code = "already_submitted"


def once_token() -> str:
    """A new token for one rendering of a form."""
    return secrets.token_urlsafe(24)


def claim_once(request: HttpRequest) -> None:
    """Record this sending's token; refuse a second sending of the same form. Call inside
    the transaction that does the work. A post without a token (a script, not the page) is
    not guarded."""
    token = str(request.POST.get(FIELD, ""))[:64]
    if not token:
        return
    user_id = request.user.pk if request.user.is_authenticated else None
    try:
        with transaction.atomic():
            FormSubmission.objects.create(token=token, user_id=user_id)
    except IntegrityError:
        raise AlreadySubmitted(
            "This form was already sent and done once; it was not done again. "
            "Check the list before doing it a second time."
        ) from None
