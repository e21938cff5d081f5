"""Headers of the pages customers open without a login (the hosted invoice page, the
customer portal)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse


def customer_page_headers(response: HttpResponse) -> HttpResponse:
    """Nothing is loaded from elsewhere and nothing runs: the pages are plain HTML and our
    CSS. Their forms go to us, whose answer may redirect to a processor's checkout page:
    browsers hold redirects after a form to form-action too, so those pages are listed. The
    address may carry a token: never sent to another site (the processors' pages)."""
    targets = " ".join(["'self'", *settings.HOSTED_CHECKOUT_ORIGINS])
    response["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
