"""Customer.acquired_on ("customer since"): existing customers were won the day their record
was made."""

import django.utils.timezone
from django.db import migrations, models
from django.db.models.functions import TruncDate


def from_created(apps, schema_editor):
    Customer = apps.get_model("billing", "Customer")
    Customer.objects.update(acquired_on=TruncDate("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0016_invoice_closed_unpaid'),
    ]

    operations = [
        migrations.AddField(
            model_name='customer',
            name='acquired_on',
            field=models.DateField(blank=True, default=django.utils.timezone.localdate, help_text='The day the customer was won; empty: the day the record is made.', verbose_name='customer since'),
        ),
        migrations.AddField(
            model_name='historicalcustomer',
            name='acquired_on',
            field=models.DateField(blank=True, default=django.utils.timezone.localdate, help_text='The day the customer was won; empty: the day the record is made.', verbose_name='customer since'),
        ),
        migrations.RunPython(from_created, migrations.RunPython.noop),
    ]
