"""The spend counters' workspace index goes: one_counter leads with the workspace (issue 26)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0017_lean_indexes'),
        ('budgets', '0003_limit_functions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='spendcounter',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.workspace'),
        ),
    ]
