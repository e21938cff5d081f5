"""Headers of the pages customers open without a login (the hosted invoice page, the
customer portal)."""

from __future__ import annotations

from csp.constants import NONE, SELF
from django.conf import settings
from django.http import HttpResponse


def customer_page_headers(response: HttpResponse) -> HttpResponse:
    """Nothing is loaded from elsewhere and nothing runs: the pages are plain HTML and our
    CSS. Their forms go to us, whose answer may redirect to a processor's checkout page:
    browsers hold redirects after a form to form-action too, so those pages are listed. The
    address may carry a token: never sent to another site (the processors' pages).

    The Content-Security-Policy is written by django-csp's middleware: this policy in place of
    the staff pages' (settings.CONTENT_SECURITY_POLICY), nothing of theirs kept."""
    # What django-csp's decorators set. The policy is given as additions to an empty one
    # because django-csp writes the directives of a whole policy in no fixed order, and its
    # additions in the order given: the header stays the same on every answer.
    setattr(response, "_csp_config", {})  # noqa: B010
    setattr(  # noqa: B010
        response,
        "_csp_update",
        {
            "default-src": [NONE],
            "style-src": [SELF],
            "img-src": [SELF],
            "form-action": [SELF, *settings.HOSTED_CHECKOUT_ORIGINS],
            "frame-ancestors": [NONE],
            "base-uri": [NONE],
        },
    )
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
