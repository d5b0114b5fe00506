# Daily rollups also key on the billing period their runs were authorized in, so the Usage page's
# "this period" chart and tables equal the period counters (issue 10). Existing rows are rebuilt
# from the runs so they carry their period too.

from django.db import migrations, models


REBUILD = """
DELETE FROM usage_dailyusage;
INSERT INTO usage_dailyusage (workspace_id, day, agent_id, model_id, member_id, period_start,
                              credits, input_tokens, output_tokens, runs)
SELECT r.workspace_id, (r.completed_at AT TIME ZONE 'UTC')::date, r.agent_id, m.model_id, r.member_id,
       r.period_start, COALESCE(SUM(n.credits), 0), COALESCE(SUM(n.input_tokens), 0),
       COALESCE(SUM(n.output_tokens), 0), COUNT(DISTINCT r.id) FILTER (WHERE m.model_id = r.model_id)
FROM usage_run r
JOIN LATERAL (SELECT DISTINCT model_id FROM usage_runnode WHERE run_id = r.id
              UNION SELECT r.model_id) m ON TRUE
LEFT JOIN usage_runnode n ON n.run_id = r.id AND n.model_id = m.model_id
WHERE r.completed_at IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
"""


def rebuild(apps, schema_editor):
    schema_editor.execute(REBUILD)


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0003_agent_moves_to_budgets'),
    ]

    operations = [
        migrations.AddField(
            model_name='dailyusage',
            name='period_start',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RemoveConstraint(
            model_name='dailyusage',
            name='one_rollup_row',
        ),
        migrations.AddConstraint(
            model_name='dailyusage',
            constraint=models.UniqueConstraint(fields=('workspace', 'day', 'agent', 'model', 'member', 'period_start'), name='one_rollup_row_per_period'),
        ),
        migrations.RunPython(rebuild, migrations.RunPython.noop),
    ]
