from django.db import migrations

from core.roles import Role, create_all_permissions, grant

LEDGER_READ = [
    "ledger.view_account",
    "ledger.view_journalentry",
    "ledger.view_journalline",
    "ledger.view_periodlock",
]
LEDGER_WRITE = [
    "ledger.post_journalentry",
    "ledger.reverse_journalentry",
    "ledger.view_trial_balance",
    "ledger.add_periodlock",
]
FX_READ = ["core.view_fxrate"]
FX_WRITE = ["core.add_fxrate", "core.change_fxrate"]
HISTORY_READ = ["ledger.view_historicalaccount", "core.view_historicalfxrate"]
OTP_ADMIN = [
    "otp_totp.view_totpdevice",
    "otp_totp.add_totpdevice",
    "otp_totp.change_totpdevice",
    "otp_totp.delete_totpdevice",
    "otp_static.view_staticdevice",
    "otp_static.add_staticdevice",
    "otp_static.change_staticdevice",
    "otp_static.delete_staticdevice",
]
USER_ADMIN = ["auth.view_user", "auth.add_user", "auth.change_user", "auth.view_group"]

GRANTS = {
    Role.FINANCE_ADMIN: [
        *LEDGER_READ,
        *LEDGER_WRITE,
        "ledger.add_account",
        "ledger.change_account",
        *FX_READ,
        *FX_WRITE,
        *HISTORY_READ,
        *OTP_ADMIN,
        *USER_ADMIN,
    ],
    Role.CONTROLLER: [*LEDGER_READ, *LEDGER_WRITE, *FX_READ, *FX_WRITE, *HISTORY_READ],
    Role.AR_CLERK: ["ledger.view_account", *FX_READ],
    Role.AP_CLERK: ["ledger.view_account", *FX_READ],
    Role.APPROVER: ["ledger.view_account"],
    Role.AUDITOR: [
        *LEDGER_READ,
        "ledger.view_trial_balance",
        *FX_READ,
        *HISTORY_READ,
        "auth.view_user",
        "auth.view_group",
    ],
    Role.INTEGRATION: [
        "ledger.view_account",
        "ledger.view_journalentry",
        "ledger.post_journalentry",
        "ledger.view_trial_balance",
        *FX_READ,
        "core.add_fxrate",
    ],
}


def create_roles(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("ledger", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
