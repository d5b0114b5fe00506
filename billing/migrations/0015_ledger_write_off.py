"""The debt bound (issue 25): a ledger entry of kind write_off, and billing_run_charge writing it for
what a charge would take below -OVERDRAFT_MAX_CREDITS (billing/sql/wallet.sql)."""

from django.db import migrations, models

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_wallet_functions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ledgerentry',
            name='kind',
            field=models.CharField(choices=[('grant', 'Grant'), ('purchase', 'Purchase'), ('bonus', 'Bonus'), ('charge', 'Charge'), ('expiry', 'Expiry'), ('adjustment', 'Adjustment'), ('refund', 'Refund'), ('write_off', 'Write-off')], max_length=16),
        ),
        sql_file_install("billing/sql/wallet.sql", sha256="71dc98e6e531d00aff9a629f0e503049916c73ff0cc1cc892d267a74645ad2e3"),
    ]
