"""The run functions with token limits, a requested reserve, cost tags and extensions (issue 29):
usage/sql/runs.sql again (usage_run_authorize's new signature, usage_run_extend, and the token's
counters in completion and expiry)."""

from django.db import migrations

from billing.sql import sql_file_install


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0015_hold_grow'),
        ('budgets', '0004_token_limits'),
        ('usage', '0009_token_limits_tags_extensions'),
    ]

    operations = [
        sql_file_install("usage/sql/runs.sql", sha256="e5f9d00c30b74d0a53f6beea0662327d2a1aae02537d708f94eacf280f15003d"),
    ]
