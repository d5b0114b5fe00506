"""Fewer ledger indexes for the charge path (issue 26): the key's uniqueness as a constraint, which
keeps one index instead of two; no index on the workspace alone (ledger_ws_recent leads with it); the
actor and the purchase indexed only where set. The constraint is added before the old unique index
goes, so the key is never unguarded."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0016_purchase_cancelled'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='ledgerentry',
            constraint=models.UniqueConstraint(fields=('idempotency_key',), name='one_entry_per_key'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='actor',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='idempotency_key',
            field=models.CharField(max_length=200),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='purchase',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_entries', to='billing.purchase'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='ledger', to='billing.workspace'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('actor__isnull', False)), fields=['actor'], name='ledger_actor'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('purchase__isnull', False)), fields=['purchase'], name='ledger_purchase'),
        ),
    ]
