"""budgets_alert_due: whether a completion needs the budget alert check (budgets/sql/limits.sql)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('budgets', '0004_lean_indexes'),
    ]

    operations = [
        sql_file_install("budgets/sql/limits.sql", sha256="0c41d161197550969da85358cce51aaa326793640d2ce563d317d9454ba3ca49"),
    ]
