"""The enforcement rule and the spend counters inside PostgreSQL (issue 26), as PL/pgSQL functions
(budgets/sql/limits.sql)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_wallet_functions'),
        ('budgets', '0002_agent_moves_from_usage'),
    ]

    operations = [
        sql_file_install("budgets/sql/limits.sql", sha256="8c860e02fe554c45212992cd47fb29bce4638f3ab7cf505898333cd56f7ba07d"),
    ]
