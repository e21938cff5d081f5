"""What an API token may call: scopes ``<area>:read`` or ``<area>:write`` (write includes read).

People reach the API by session with their role's permissions and a second factor; an
integration reaches it with a token, and each token carries the areas it may use, so an ERP
that posts invoices cannot also read payables. The area of a view is the app its module
belongs to (``billing.api.views`` -> billing, ``core.ledger.api.views`` -> ledger), whatever
the URL prefix (``/api/accounts/`` is shared by three apps). ``*`` names every area: the
scope given to the tokens that existed before scopes did (core migration), to be narrowed.

The role's permissions still apply: a scope never grants what the token's user may not do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.exceptions import DomainError

API_AREAS = (
    "billing",
    "receivables",
    "payables",
    "reconciliation",
    "ledger",
    "reporting",
    "events",
    "portal",
    "accounts",
)
ALL_AREAS = "*"
ACCESS = ("read", "write")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Modules under ``core`` that are areas of their own; the rest of core is "accounts" (users).
_CORE_AREAS = {"ledger": "ledger", "events": "events"}


class UnknownScope(DomainError):
    code = "unknown_scope"


@dataclass(frozen=True, slots=True)
class Scope:
    area: str
    access: str

    def __str__(self) -> str:
        return f"{self.area}:{self.access}"

    def allows(self, area: str, access: str) -> bool:
        if self.area not in (ALL_AREAS, area):
            return False
        return self.access == "write" or access == "read"


def scope_parse(text: str) -> Scope:
    """``billing:write`` as a Scope, or UnknownScope naming what is valid."""
    area, _, access = str(text).strip().partition(":")
    if area not in (*API_AREAS, ALL_AREAS) or access not in ACCESS:
        raise UnknownScope(
            f"Unknown scope {text!r}: expected <area>:read or <area>:write, the area one of "
            f"{', '.join(API_AREAS)} (or * for all).",
            scope=text,
        )
    return Scope(area, access)


def scopes_parse(texts: Iterable[str]) -> list[str]:
    """The scopes as stored: validated, without duplicates, in the order given."""
    parsed = [str(scope_parse(text)) for text in texts]
    if not parsed:
        raise UnknownScope("A token needs at least one scope.", scope="")
    return list(dict.fromkeys(parsed))


def view_area(view: Any) -> str:
    """The API area a view belongs to (its app), "" if it belongs to none."""
    parts = type(view).__module__.split(".")
    if parts[0] == "core":
        return _CORE_AREAS.get(parts[1] if len(parts) > 1 else "", "accounts")
    return parts[0] if parts[0] in API_AREAS else ""


def token_scopes(token: Any) -> list[Scope]:
    """The scopes of a knox token; none when it has no scope row."""
    from core.models import ApiTokenScope

    row = ApiTokenScope.objects.filter(token=token).values_list("scopes", flat=True).first()
    return [scope_parse(text) for text in row or []]


def token_allows(token: Any, view: Any, method: str) -> tuple[bool, str]:
    """Whether the token's scopes cover this call, and the scope it needs."""
    area = view_area(view)
    access = "read" if method in READ_METHODS else "write"
    needed = f"{area or 'this API'}:{access}"
    if not area:
        return False, needed
    return any(scope.allows(area, access) for scope in token_scopes(token)), needed
