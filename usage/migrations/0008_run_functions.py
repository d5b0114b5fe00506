"""The run lifecycle's locked decisions inside PostgreSQL (issue 26): authorize, complete and expire,
one PL/pgSQL call each (usage/sql/runs.sql)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('budgets', '0003_limit_functions'),
        ('usage', '0007_token_classes'),
    ]

    operations = [
        sql_file_install("usage/sql/runs.sql", sha256="ba22dd313a10f8e55ec49a399c78f61426d4194b994233691c3b8cba4e78d044"),
    ]
