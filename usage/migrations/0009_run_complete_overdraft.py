"""usage_run_complete passes the overdraft bound to billing_run_charge (issue 25, the debt bound)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0015_ledger_write_off'),
        ('usage', '0008_run_functions'),
    ]

    operations = [
        sql_file_install("usage/sql/runs.sql", sha256="c29cabe4e27b9d4a00eadbab0d47817c58ad9879fa214cec3d45bb82fef4e149"),
    ]
