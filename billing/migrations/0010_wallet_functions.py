"""The wallet's rules inside PostgreSQL (issue 26): the hold, the charge of a run with its ledger
entries, and auto-recharge's trigger, as PL/pgSQL functions (billing/sql/wallet.sql)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0009_token_classes'),
    ]

    operations = [
        sql_file_install("billing/sql/wallet.sql", sha256="8b87fa43a08daa1bca64b428913bd80c325d3243bda2e46959740a5a0a9aedca"),
    ]
