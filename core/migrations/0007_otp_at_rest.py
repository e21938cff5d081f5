"""Second factors unreadable at rest (issue 15, hole 6).

core.otp's devices replace django-otp's plugin devices: every TOTP device moves with its key
encrypted (``EncryptedTextField``), every static token becomes a salted hash of itself, the
plugin rows are deleted, and the plugin tables refuse rows from then on (the plugin apps stay
installed only because earlier migrations, 0002_roles among them, name theirs). finance_admin
keeps its view of the devices. Sessions verified with a plugin device sign in again.

Reversed, the authenticators move back with their keys decrypted; recovery codes cannot be
recovered from their hashes: those users get new ones with ``manage.py mfa_enroll``.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import core.encryption
import core.otp
from core.otp import recovery_code_hash
from core.roles import Role, create_all_permissions, grant

DEVICE_FIELDS = (
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "created_at",
    "last_used_at",
)
TOTP_FIELDS = (*DEVICE_FIELDS, "key", "step", "t0", "digits", "tolerance", "drift", "last_t")
RETIRED_TABLES = ("otp_totp_totpdevice", "otp_static_staticdevice", "otp_static_statictoken")
DEVICE_PERMISSIONS = [
    f"core.{action}_{model}"
    for model in ("authenticatordevice", "recoverycodedevice")
    for action in ("view", "add", "change", "delete")
]


def _copy(source, target_model, fields, **extra):
    """A new ``target_model`` row with ``fields`` of ``source``, its creation date kept."""
    row = target_model.objects.create(
        user_id=source.user_id, **{name: getattr(source, name) for name in fields}, **extra
    )
    # created_at is auto_now_add: the insert stamped now, the device is older.
    target_model.objects.filter(pk=row.pk).update(created_at=source.created_at)
    return row


def devices_move(apps, schema_editor):
    """Plugin devices to core's: keys encrypted, tokens hashed, then the plain rows deleted."""
    PlainTotp = apps.get_model("otp_totp", "TOTPDevice")
    PlainStatic = apps.get_model("otp_static", "StaticDevice")
    PlainToken = apps.get_model("otp_static", "StaticToken")
    Authenticator = apps.get_model("core", "AuthenticatorDevice")
    RecoveryDevice = apps.get_model("core", "RecoveryCodeDevice")
    RecoveryCode = apps.get_model("core", "RecoveryCode")
    for plain in PlainTotp.objects.order_by("pk"):
        _copy(plain, Authenticator, TOTP_FIELDS)
    for plain in PlainStatic.objects.order_by("pk"):
        device = _copy(plain, RecoveryDevice, DEVICE_FIELDS)
        tokens = PlainToken.objects.filter(device=plain).order_by("pk")
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, code_hash=recovery_code_hash(token))
            for token in tokens.values_list("token", flat=True)
        )
    PlainToken.objects.all().delete()
    PlainStatic.objects.all().delete()
    PlainTotp.objects.all().delete()


def devices_move_back(apps, schema_editor):
    PlainTotp = apps.get_model("otp_totp", "TOTPDevice")
    Authenticator = apps.get_model("core", "AuthenticatorDevice")
    for device in Authenticator.objects.order_by("pk"):
        _copy(device, PlainTotp, TOTP_FIELDS)


def permissions_grant(apps, schema_editor):
    create_all_permissions(apps)
    grant(apps, Role.FINANCE_ADMIN, DEVICE_PERMISSIONS)


def retired_tables_lock(apps, schema_editor):
    """The plugin tables refuse every insert and update: no plain key or code lands there
    again (django-otp's ``addstatictoken`` command, a stray admin, a script)."""
    quote = schema_editor.quote_name
    if schema_editor.connection.vendor == "postgresql":
        # The rows just deleted left deferred foreign-key checks pending, and PostgreSQL
        # alters no table with pending trigger events: run them now.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for table in RETIRED_TABLES:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(table + '_retired')} "
                "CHECK (false)"
            )
        elif schema_editor.connection.vendor == "sqlite":
            for event in ("INSERT", "UPDATE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {quote(f'{table}_retired_{event.lower()}')} "
                    f"BEFORE {event} ON {quote(table)} BEGIN "
                    f"SELECT RAISE(ABORT, '{table} is retired: second factors are in core.otp'); "
                    "END"
                )


def retired_tables_unlock(apps, schema_editor):
    quote = schema_editor.quote_name
    for table in RETIRED_TABLES:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(table + '_retired')}"
            )
        elif schema_editor.connection.vendor == "sqlite":
            for event in ("insert", "update"):
                schema_editor.execute(
                    f"DROP TRIGGER IF EXISTS {quote(f'{table}_retired_{event}')}"
                )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0006_form_submission"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthenticatorDevice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="The human-readable name of this device.", max_length=64)),
                ("confirmed", models.BooleanField(default=True, help_text="Is this device ready for use?")),
                ("throttling_failure_timestamp", models.DateTimeField(blank=True, default=None, help_text="A timestamp of the last failed verification attempt. Null if last attempt succeeded.", null=True)),
                ("throttling_failure_count", models.PositiveIntegerField(default=0, help_text="Number of successive failed attempts.")),
                ("created_at", models.DateTimeField(auto_now_add=True, help_text="The date and time when this device was initially created in the system.", null=True)),
                ("last_used_at", models.DateTimeField(blank=True, help_text="The most recent date and time this device was used.", null=True)),
                ("key", core.encryption.EncryptedTextField(default=core.otp.default_key, validators=[core.otp.key_validator])),
                ("step", models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")),
                ("t0", models.BigIntegerField(default=0, help_text="The Unix time at which to begin counting steps.")),
                ("digits", models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)),
                ("tolerance", models.PositiveSmallIntegerField(default=1, help_text="The number of time steps in the past or future to allow.")),
                ("drift", models.SmallIntegerField(default=0, help_text="The number of time steps the authenticator's clock is off.")),
                ("last_t", models.BigIntegerField(default=-1, help_text="The time step of the latest code accepted.")),
                ("user", models.ForeignKey(help_text="The user that this device belongs to.", on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "authenticator (TOTP)",
                "verbose_name_plural": "authenticators (TOTP)",
            },
        ),
        migrations.CreateModel(
            name="RecoveryCodeDevice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="The human-readable name of this device.", max_length=64)),
                ("confirmed", models.BooleanField(default=True, help_text="Is this device ready for use?")),
                ("throttling_failure_timestamp", models.DateTimeField(blank=True, default=None, help_text="A timestamp of the last failed verification attempt. Null if last attempt succeeded.", null=True)),
                ("throttling_failure_count", models.PositiveIntegerField(default=0, help_text="Number of successive failed attempts.")),
                ("created_at", models.DateTimeField(auto_now_add=True, help_text="The date and time when this device was initially created in the system.", null=True)),
                ("last_used_at", models.DateTimeField(blank=True, help_text="The most recent date and time this device was used.", null=True)),
                ("user", models.ForeignKey(help_text="The user that this device belongs to.", on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "recovery codes",
                "verbose_name_plural": "recovery codes",
            },
        ),
        migrations.CreateModel(
            name="RecoveryCode",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code_hash", models.CharField(max_length=128)),
                ("device", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="codes", to="core.recoverycodedevice")),
            ],
            options={
                "ordering": ("pk",),
            },
        ),
        migrations.RunPython(devices_move, devices_move_back),
        migrations.RunPython(permissions_grant, migrations.RunPython.noop),
        migrations.RunPython(retired_tables_lock, retired_tables_unlock),
    ]
