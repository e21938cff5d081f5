"""User accounts: role membership, API tokens and second-factor enrollment.

The management commands and the demo seed call these; nothing else writes users, groups,
tokens or OTP devices outside the admin's own user screens, which only superusers may use
and which report every change through ``account_change_log``.
"""

from __future__ import annotations

import json
import logging
from base64 import b32encode
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from core.api.scopes import scopes_parse
from core.exceptions import DomainError
from core.models import ApiTokenScope
from core.otp import (
    AuthenticatorDevice,
    RecoveryCode,
    RecoveryCodeDevice,
    recovery_code_generate,
    recovery_code_hash,
)
from core.roles import STAFF_ROLES, Role

RECOVERY_CODE_COUNT = 10

logger = logging.getLogger(__name__)

# Fields whose values a change log may carry: flags, role memberships, permissions, device
# names and states. Anything else (passwords, keys, tokens, personal data) is logged by name.
LOGGED_VALUES = frozenset(
    {
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "permissions",
        "name",
        "confirmed",
        "throttling_failure_count",
    }
)


class UnknownRole(DomainError):
    code = "unknown_role"


def role_parse(role: str) -> Role:
    """The Role named ``role``, or UnknownRole listing the valid names."""
    try:
        return Role(role)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise UnknownRole(f"Unknown role {role!r}; valid roles: {valid}.", role=role) from None


def user_ensure_in_role(*, username: str, role: str) -> tuple[User, bool]:
    """The user named ``username`` (created if missing) as a member of the ``role`` group.

    Integration users never sign in to screens: not staff, no usable password. A person who
    signs in (staff or superuser) is refused as an integration rather than silently demoted.
    Returns (user, created).
    """
    parsed = role_parse(role)
    with transaction.atomic():
        user, created = User.objects.select_for_update().get_or_create(username=username)
        if parsed == Role.INTEGRATION:
            if not created and (user.is_staff or user.is_superuser):
                raise DomainError(
                    f"{username!r} is a staff user; integrations need a user of their own.",
                    code="integration_user_is_staff",
                )
            user.set_unusable_password()
        elif created:
            user.is_staff = parsed in STAFF_ROLES
            # A person sets a password through the admin; until then, no password sign-in.
            user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=parsed.value))
    return user, created


def api_token_create(*, username: str, role: str, scopes: Iterable[str]) -> tuple[User, str]:
    """A new non-expiring API token for ``username`` in ``role`` that may call the APIs its
    ``scopes`` name (``billing:write``, ``ledger:read``; see ``core.api.scopes``):
    (user, token).

    knox stores only a digest of the token, so the returned text is the only copy.
    """
    stored = scopes_parse(scopes)
    with transaction.atomic():
        user, _ = user_ensure_in_role(username=username, role=role)
        instance, token = AuthToken.objects.create(user=user, expiry=None)
        ApiTokenScope.objects.create(token=instance, scopes=stored)
    return user, token


def staff_user_reset(*, username: str, role: str, password: str) -> User:
    """A staff user in ``role`` (created if missing) whose password is now ``password``."""
    parsed = role_parse(role)
    if parsed not in STAFF_ROLES:
        raise DomainError(f"{parsed.value!r} is not a staff role.", code="not_a_staff_role")
    with transaction.atomic():
        user, _ = User.objects.select_for_update().get_or_create(username=username)
        user.is_staff = True
        user.is_active = True
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=parsed.value))
    return user


def totp_secret_base32(device: AuthenticatorDevice) -> str:
    """The device's secret as authenticator apps take it when typed in by hand."""
    return b32encode(device.bin_key).decode("ascii")


def mfa_enroll(*, user: User) -> tuple[AuthenticatorDevice, list[str]]:
    """Give ``user`` a new confirmed authenticator (TOTP) and 10 single-use recovery codes.

    Earlier devices of the user are deleted, so old phones and old codes stop working. The
    key is stored encrypted and the codes only as hashes: the returned codes are the only
    copy.
    """
    codes = [recovery_code_generate() for _ in range(RECOVERY_CODE_COUNT)]
    hashes = [recovery_code_hash(code) for code in codes]
    with transaction.atomic():
        AuthenticatorDevice.objects.filter(user=user).delete()
        RecoveryCodeDevice.objects.filter(user=user).delete()
        totp = AuthenticatorDevice.objects.create(user=user, name="Authenticator", confirmed=True)
        recovery = RecoveryCodeDevice.objects.create(
            user=user, name="Recovery codes", confirmed=True
        )
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=recovery, code_hash=code_hash) for code_hash in hashes
        )
    return totp, codes


def mfa_device_count(*, user: User) -> int:
    """How many second-factor devices ``user`` has (any kind)."""
    return (
        AuthenticatorDevice.objects.filter(user=user).count()
        + RecoveryCodeDevice.objects.filter(user=user).count()
    )


def account_change_log(
    *,
    actor: Any,
    action: str,
    target: Any,
    fields: list[str],
    changes: dict[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any]:
    """Log who changed which account, role or second-factor device, when, and how, as one
    JSON line (logger ``core.accounts``) for the compliance report. Values are kept only for
    the fields in ``LOGGED_VALUES``: never a password, a device key or a recovery code."""
    record = {
        "event": "account_change",
        "at": timezone.now().isoformat(),
        "actor": actor.get_username() if actor is not None else None,
        "actor_id": actor.pk if actor is not None else None,
        "action": action,
        "model": target._meta.label_lower,
        "object_id": target.pk,
        "object": str(target),
        "fields": sorted(fields),
        "changes": {
            name: [before, after]
            for name, (before, after) in sorted((changes or {}).items())
            if name in LOGGED_VALUES
        },
    }
    logger.info("account_change %s", json.dumps(record, sort_keys=True, default=str))
    return record
