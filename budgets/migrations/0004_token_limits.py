"""Limits on developer tokens in the one limit decision, and holds that grow (issue 29):
budgets_run_reservation and budgets_run_counters_add of budgets/sql/limits.sql again, with the token's
inputs, its counters, and a requested amount."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    # No dependency on the token columns (usage 0009): PL/pgSQL resolves them when the functions
    # run, and usage 0010, which installs their only caller, depends on both.
    dependencies = [
        ('budgets', '0003_limit_functions'),
    ]

    operations = [
        sql_file_install("budgets/sql/limits.sql", sha256="0105de68e732796d58b37f4b1fada10737237cc718b78009f350d965d4a9b498"),
    ]
