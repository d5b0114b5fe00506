# The Agent model moves from usage to budgets (issue 9: budgets own every limit, and usage sits above
# budgets). Only Django's state changes: the table keeps its name, usage_agent, and its rows.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_stripe_events'),
        ('budgets', '0001_initial'),
        ('usage', '0002_run_ws_completed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Agent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('max_per_run', models.BigIntegerField(default=10000000000)),
                        ('max_per_day', models.BigIntegerField(default=100000000000)),
                        ('max_per_month', models.BigIntegerField(default=1000000000000)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='agents', to='billing.workspace')),
                    ],
                    options={
                        'db_table': 'usage_agent',
                        'ordering': ['name'],
                        'constraints': [
                            models.UniqueConstraint(fields=('workspace', 'name'), name='agent_name_per_workspace'),
                            models.CheckConstraint(condition=models.Q(('max_per_run__gt', 0), ('max_per_day__gt', 0), ('max_per_month__gt', 0)), name='agent_budgets_positive'),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
