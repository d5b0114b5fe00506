"""A running run's hold that grows (issue 29): billing_hold_grow in billing/sql/wallet.sql."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_wallet_functions'),
    ]

    operations = [
        sql_file_install("billing/sql/wallet.sql", sha256="311627f9274db2099d0326851e88b14a189cc5a939c0f62c23f2fd08494fc251"),
    ]
