# The Agent model now lives in budgets (see budgets/migrations/0002_agent_moves_from_usage.py). The
# foreign keys point at the same table; only Django's state changes.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('budgets', '0002_agent_moves_from_usage'),
        ('usage', '0002_run_ws_completed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='run',
                    name='agent',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='budgets.agent'),
                ),
                migrations.AlterField(
                    model_name='dailyusage',
                    name='agent',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='budgets.agent'),
                ),
                migrations.DeleteModel(name='Agent'),
            ],
            database_operations=[],
        ),
    ]
