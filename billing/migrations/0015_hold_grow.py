"""A running run's hold that grows (issue 29): billing_hold_grow in billing/sql/wallet.sql."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_wallet_functions'),
    ]

    operations = [
        sql_file_install("billing/sql/wallet.sql", sha256="1da3fc74b25e8e2a8a78cb5caac5d3a64c5337ceb5846328282c214543f9ccd4"),
    ]
