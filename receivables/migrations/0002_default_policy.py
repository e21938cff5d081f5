"""The default dunning policy, from the system settings (written down in the README notes):

- reminder       due - 3 days   email
- due            due date       email
- overdue        due + grace+1  email, the day the first late fee is charged (grace: 10)
- final notice   due + 30       email (or grace+2 if the grace period is longer)
- escalation     due + 45       pause the customer's subscriptions and email
Late fees: the system settings' percentage and grace period (the policy overrides are empty).
"""

from django.db import migrations

from core.system_settings import system_settings


def forward(apps, schema_editor):
    DunningPolicy = apps.get_model("receivables", "DunningPolicy")
    DunningStep = apps.get_model("receivables", "DunningStep")
    if DunningPolicy.objects.filter(is_default=True).exists():
        return
    grace = system_settings().billing.collections_grace_period
    final = max(30, grace + 2)
    escalation = max(45, final + 15)
    policy = DunningPolicy.objects.create(name="Standard", is_default=True)
    for code, name, offset, action, template in [
        ("reminder", "Reminder before due", -3, "email", "reminder"),
        ("due", "Due today", 0, "email", "due"),
        ("overdue", "Overdue past grace period", grace + 1, "email", "overdue"),
        ("final_notice", "Final notice", final, "email", "final_notice"),
        ("escalation", "Escalation: suspend subscriptions", escalation, "suspend", "escalation"),
    ]:
        DunningStep.objects.create(
            policy=policy,
            code=code,
            name=name,
            offset_days=offset,
            action=action,
            template=template,
        )


class Migration(migrations.Migration):
    dependencies = [("receivables", "0001_initial")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
