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
        sql_file_install("usage/sql/runs.sql", sha256="dfbe006eb8154d459c5840a24b97baf31609d1137b0986484f428ff533af7e70"),
    ]
