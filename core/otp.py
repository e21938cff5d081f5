"""Second-factor devices whose secrets are unreadable at rest (issue 15, hole 6).

django-otp's own plugins keep a TOTP key as plain hex and recovery codes as plain text; these
devices replace them. ``AuthenticatorDevice`` keeps its key encrypted with the field
encryption keys (``EncryptedTextField``: rotated with every other encrypted field), and
``RecoveryCodeDevice`` keeps only a salted PBKDF2 hash of each code. django-otp finds them as
it finds any device (``devices_for_user``, ``Device.from_persistent_id``), so the admin's login
and the session's verification need nothing else.

Both accept a code once: a TOTP time step is claimed by a conditional update (two requests
racing with one code cannot both win) and a recovery code is deleted by the request that
matched it (the one that deletes the row wins). Failures are throttled as the plugins do.
"""

from __future__ import annotations

import time
from base64 import b32encode
from binascii import unhexlify
from os import urandom
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import models
from django.db.models import F
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import hex_validator, random_hex

from core.encryption import EncryptedTextField

# Recovery codes are 80 random bits (16 base32 characters); a PBKDF2 hash per code makes even
# the shorter codes moved from django-otp's plugin (40 bits) impractical to guess from a copy
# of the table. Checking a code costs this many iterations per unused code of the user.
RECOVERY_CODE_ITERATIONS = 100_000
RECOVERY_CODE_BYTES = 10
# Longer input is no code of ours: refused before any hashing (no work for junk).
RECOVERY_CODE_MAX_LENGTH = 64

_HASHER = PBKDF2PasswordHasher()


def default_key() -> str:
    """A new random 20-byte TOTP key, hex-encoded (what authenticator apps expect)."""
    return str(random_hex(20))


def key_validator(value: str) -> None:
    hex_validator()(value)


def recovery_code_generate() -> str:
    """A new recovery code: 16 base32 characters in groups of four (``abcd-efgh-ijkl-mnop``)."""
    raw = b32encode(urandom(RECOVERY_CODE_BYTES)).decode("ascii").lower()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def recovery_code_normalise(code: str) -> str:
    """A code as typed (any case, with or without dashes and spaces) in the form hashed."""
    return "".join(code.split()).replace("-", "").lower()


def recovery_code_hash(code: str) -> str:
    """The salted hash stored for ``code`` (``pbkdf2_sha256$iterations$salt$hash``)."""
    return _HASHER.encode(
        recovery_code_normalise(code), _HASHER.salt(), iterations=RECOVERY_CODE_ITERATIONS
    )


def recovery_code_matches(code: str, code_hash: str) -> bool:
    """Whether ``code`` is the one hashed in ``code_hash`` (compared in constant time)."""
    normalised = recovery_code_normalise(code)
    if not normalised or len(normalised) > RECOVERY_CODE_MAX_LENGTH:
        return False
    return bool(_HASHER.verify(normalised, code_hash))


class _OneTimeDevice(TimestampMixin, ThrottlingMixin, Device):  # type: ignore[misc]
    """Success and failure written with conditional updates, not a save of the whole row."""

    class Meta:
        abstract = True

    def _succeeded(self, *, claim: dict[str, Any] | None = None, **fields: Any) -> bool:
        """Reset throttling and stamp the use, only where ``claim`` still holds (a filter on
        the row). False when another request got there first."""
        now = timezone.now()
        values = {
            "throttling_failure_count": 0,
            "throttling_failure_timestamp": None,
            "last_used_at": now,
            **fields,
        }
        updated = type(self).objects.filter(pk=self.pk, **(claim or {})).update(**values)
        if updated != 1:
            return False
        for name, value in values.items():
            setattr(self, name, value)
        return True

    def _failed(self) -> None:
        now = timezone.now()
        type(self).objects.filter(pk=self.pk).update(
            throttling_failure_count=F("throttling_failure_count") + 1,
            throttling_failure_timestamp=now,
        )
        self.throttling_failure_count += 1
        self.throttling_failure_timestamp = now


class AuthenticatorDevice(_OneTimeDevice):
    """A TOTP authenticator (RFC 6238) whose key is encrypted at rest.

    The fields and their meaning are django-otp's ``TOTPDevice``'s; only the key's storage
    differs. A code is accepted once: its time step must be later than the last one accepted.
    """

    # Hex-encoded secret; stored as a Fernet token of FIELD_ENCRYPTION_KEY, never plain.
    key = EncryptedTextField(default=default_key, validators=[key_validator])
    step: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(
        default=30, help_text="The time step in seconds."
    )
    t0: models.BigIntegerField[int, int] = models.BigIntegerField(
        default=0, help_text="The Unix time at which to begin counting steps."
    )
    digits: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6
    )
    tolerance: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(
        default=1, help_text="The number of time steps in the past or future to allow."
    )
    drift: models.SmallIntegerField[int, int] = models.SmallIntegerField(
        default=0, help_text="The number of time steps the authenticator's clock is off."
    )
    # A code at this time step or an earlier one is refused: each code works once.
    last_t: models.BigIntegerField[int, int] = models.BigIntegerField(
        default=-1, help_text="The time step of the latest code accepted."
    )

    class Meta:
        verbose_name = "authenticator (TOTP)"
        verbose_name_plural = "authenticators (TOTP)"

    @property
    def bin_key(self) -> bytes:
        """The secret key as bytes."""
        return unhexlify(str(self.key).encode())

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1))

    def verify_token(self, token: Any) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            number = int(token)
        except (TypeError, ValueError):
            number = None
        if number is not None:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            if totp.verify(number, self.tolerance, self.last_t + 1):
                t = totp.t()
                drift = totp.drift if getattr(settings, "OTP_TOTP_SYNC", True) else self.drift
                if self._succeeded(claim={"last_t__lt": t}, last_t=t, drift=drift):
                    return True
        self._failed()
        return False

    @property
    def config_url(self) -> str:
        """The ``otpauth://`` URL an authenticator app takes as a QR code (Key Uri Format)."""
        label = str(self.user.get_username())
        params = {
            "secret": b32encode(self.bin_key).decode("ascii"),
            "algorithm": "SHA1",
            "digits": self.digits,
            "period": self.step,
        }
        query = urlencode(params)
        issuer = str(getattr(settings, "OTP_TOTP_ISSUER", "") or "").replace(":", "")
        if issuer:
            label = f"{issuer}:{label}"
            query += f"&issuer={quote(issuer)}"
        return f"otpauth://totp/{quote(label)}?{query}"


class RecoveryCodeDevice(_OneTimeDevice):
    """Single-use recovery codes, kept only as salted hashes (``codes``)."""

    class Meta:
        verbose_name = "recovery codes"
        verbose_name_plural = "recovery codes"

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1))

    def verify_token(self, token: Any) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        code = str(token or "")
        match = next(
            (
                pk
                for pk, code_hash in self.codes.values_list("pk", "code_hash")
                if recovery_code_matches(code, code_hash)
            ),
            None,
        )
        # Used once: whoever deletes the row signs in; a request racing with the same code
        # deletes nothing and fails.
        if match is not None and RecoveryCode.objects.filter(pk=match).delete()[0] == 1:
            self._succeeded()
            return True
        self._failed()
        return False


class RecoveryCode(models.Model):
    """One unused recovery code of a device: its salted hash, never the code."""

    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=128)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return f"recovery code of {self.device}"
