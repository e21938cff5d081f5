"""Who acts in the reconciliation services: a person (checked against their role) or the
system (``None``: scheduled tasks, the engine's automatic matches)."""

from __future__ import annotations

from typing import Any

from core.exceptions import PermissionDeniedError


def acting_user(actor: Any) -> Any:
    """The user to record as having done something; None for the system."""
    return actor if getattr(actor, "pk", None) else None


def permission_check(actor: Any, perm: str, what: str, *, system_allowed: bool) -> None:
    """Refuse an actor without ``perm``; the system (None) passes only if ``system_allowed``."""
    if actor is None and system_allowed:
        return
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow {what}.")
