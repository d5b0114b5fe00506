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
        sql_file_install("budgets/sql/limits.sql", sha256="59c41f94a2da2867aa4850cdb4f47ebe61b2fe82776d1f5c147825c517d4c319"),
    ]
