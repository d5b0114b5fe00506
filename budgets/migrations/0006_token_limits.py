"""Limits on developer tokens in the one limit decision, and holds that grow (issue 29):
budgets_run_reservation and budgets_run_counters_add of budgets/sql/limits.sql again, with the token's
inputs, its counters, and a requested amount."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    # No dependency on the token columns (usage 0012): PL/pgSQL resolves them when the functions
    # run, and usage 0013, which installs their only caller, depends on both.
    dependencies = [
        ('budgets', '0005_alert_due'),
    ]

    operations = [
        sql_file_install("budgets/sql/limits.sql", sha256="e4f8522d11b174a42d85cad4e3c17e73a9c5ac5cac9801d9b42b339a476b5f85"),
    ]
