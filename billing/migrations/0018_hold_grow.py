"""A running run's hold that grows (issue 29): billing_hold_grow in billing/sql/wallet.sql."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0017_lean_indexes'),
    ]

    operations = [
        sql_file_install("billing/sql/wallet.sql", sha256="1d005a8a37777698a692f7b4e1b16fdacbb1860a6a6100c28cbe8015dc8e585a"),
    ]
