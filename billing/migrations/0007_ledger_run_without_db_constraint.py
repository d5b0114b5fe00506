import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Runs move into month partitions (usage 0005), whose primary key is (id, created_at): a
    foreign key on run_id alone cannot reference them, and retention drops old months whole
    while the ledger keeps every entry."""

    dependencies = [
        ('billing', '0006_auto_recharge'),
        ('usage', '0002_run_ws_completed'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ledgerentry',
            name='run',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True,
                                    on_delete=django.db.models.deletion.DO_NOTHING, related_name='ledger_entries',
                                    to='usage.run'),
        ),
    ]
