"""No single-column indexes on the runs, their keys and the daily rollup that a composite index
already leads or no read uses (issue 26): each cost an index entry on every run, twice for the run."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0017_lean_indexes'),
        ('budgets', '0004_lean_indexes'),
        ('usage', '0009_run_complete_overdraft'),
    ]

    operations = [
        migrations.AlterField(
            model_name='dailyusage',
            name='agent',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='budgets.agent'),
        ),
        migrations.AlterField(
            model_name='dailyusage',
            name='member',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.membership'),
        ),
        migrations.AlterField(
            model_name='dailyusage',
            name='model',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.aimodel'),
        ),
        migrations.AlterField(
            model_name='dailyusage',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.workspace'),
        ),
        migrations.AlterField(
            model_name='run',
            name='agent',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='budgets.agent'),
        ),
        migrations.AlterField(
            model_name='run',
            name='member',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='billing.membership'),
        ),
        migrations.AlterField(
            model_name='run',
            name='workflow',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='usage.workflow'),
        ),
        migrations.AlterField(
            model_name='runkey',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.workspace'),
        ),
    ]
