"""budgets_alert_due, whether a completion needs the budget alert check, and spend counters updated
before any is inserted (budgets/sql/limits.sql; issue 26)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('budgets', '0004_lean_indexes'),
    ]

    operations = [
        sql_file_install("budgets/sql/limits.sql", sha256="487eee5fe7616e17c08626136495c0285f101022842f2a8c5e7746f06a096067"),
    ]
