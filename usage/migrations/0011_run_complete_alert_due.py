"""usage_run_complete answers whether the budget alerts need a check (issue 26: no Redis round trip
for a completion that cannot change an alert)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('budgets', '0005_alert_due'),
        ('usage', '0010_lean_indexes'),
    ]

    operations = [
        sql_file_install("usage/sql/runs.sql", sha256="5ded8c921f0387df12d6f374980dc879b24070d1adc65f1d21b9b98ea9ef74a5"),
    ]
