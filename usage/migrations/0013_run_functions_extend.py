"""The run functions with token limits, a requested reserve, cost tags and extensions (issue 29):
usage/sql/runs.sql again (usage_run_authorize's new signature, usage_run_extend, and the token's
counters in completion and expiry)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0018_hold_grow'),
        ('budgets', '0006_token_limits'),
        ('usage', '0012_token_limits_tags_extensions'),
    ]

    operations = [
        sql_file_install("usage/sql/runs.sql", sha256="682d8e1de2a6e88688795aa067d55a9b16a6173819c15fe15630ff8d17d9a490"),
    ]
