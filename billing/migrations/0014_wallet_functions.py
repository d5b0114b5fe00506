"""The wallet's rules inside PostgreSQL (issue 26): the hold, the charge of a run with its ledger
entries, and auto-recharge's trigger, as PL/pgSQL functions (billing/sql/wallet.sql)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0013_workspace_two_factor_required'),
    ]

    operations = [
        sql_file_install("billing/sql/wallet.sql", sha256="a8affce293d3f6292dfb3beadbbb98372d48b70a67b93d4d64d1bcb45d853ed6"),
    ]
