"""A running run's hold that grows (issue 29): billing_hold_grow in billing/sql/wallet.sql."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_wallet_functions'),
    ]

    operations = [
        sql_file_install("billing/sql/wallet.sql", sha256="8131e49ea47874beb4f75b50a7ed3f11f7ffe049882f2dd160ab61753c7fac5a"),
    ]
