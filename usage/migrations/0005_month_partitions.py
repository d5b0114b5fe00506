import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def keys_backfill(apps, schema_editor):
    schema_editor.execute(
        "INSERT INTO usage_runkey (workspace_id, public_id, run_id, run_created_at) "
        "SELECT workspace_id, public_id, id, created_at FROM usage_run")


def nodes_backfill(apps, schema_editor):
    schema_editor.execute(
        "UPDATE usage_runnode SET run_created_at = "
        "(SELECT r.created_at FROM usage_run r WHERE r.id = usage_runnode.run_id)")


def tables_partition(apps, schema_editor):
    """Rebuild runs and nodes as tables partitioned by month, rows included."""
    from usage.partitions import table_convert_to_partitioned

    table_convert_to_partitioned(schema_editor, table="usage_run", column="created_at")
    table_convert_to_partitioned(schema_editor, table="usage_runnode", column="run_created_at")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_ledger_run_without_db_constraint'),
        ('usage', '0004_dailyusage_period_start'),
    ]

    operations = [
        migrations.CreateModel(
            name='RunKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(max_length=100)),
                ('run_id', models.BigIntegerField()),
                ('run_created_at', models.DateTimeField()),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                                to='billing.workspace')),
            ],
        ),
        migrations.RunPython(keys_backfill, migrations.RunPython.noop),
        # The same name moves from the runs table to RunKey.
        migrations.RemoveConstraint(model_name='run', name='run_public_id_per_workspace'),
        migrations.AddConstraint(
            model_name='runkey',
            constraint=models.UniqueConstraint(fields=('workspace', 'public_id'), name='run_public_id_per_workspace'),
        ),
        migrations.CreateModel(
            name='DroppedRunMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField(unique=True)),
                ('runs', models.BigIntegerField()),
                ('credits', models.BigIntegerField()),
                ('dropped_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={'ordering': ['-month']},
        ),
        migrations.AddField(model_name='runnode', name='run_created_at', field=models.DateTimeField(null=True)),
        migrations.RunPython(nodes_backfill, migrations.RunPython.noop),
        migrations.AlterField(model_name='runnode', name='run_created_at', field=models.DateTimeField()),
        migrations.AlterField(
            model_name='runnode',
            name='run',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='nodes', to='usage.run'),
        ),
        # Fewer bytes per run: these indexes are covered by others or serve only rare catalogue deletes.
        migrations.AlterField(
            model_name='runnode', name='model',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+',
                                    to='billing.aimodel'),
        ),
        migrations.AlterField(
            model_name='run', name='model',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+',
                                    to='billing.aimodel'),
        ),
        migrations.AlterField(
            model_name='run', name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='runs',
                                    to='billing.workspace'),
        ),
        migrations.RemoveConstraint(model_name='runnode', name='node_position_per_run'),
        migrations.AddConstraint(
            model_name='runnode',
            constraint=models.UniqueConstraint(fields=('run', 'position', 'run_created_at'),
                                               name='node_position_per_run'),
        ),
        migrations.RunPython(tables_partition, migrations.RunPython.noop),
    ]
