"""dj-stripe's migrations, plus one squashed migration that replaces them (MIGRATION_MODULES in
config/settings.py).

Why: dj-stripe 2.10's migration removes 514 fields one operation at a time, and Django re-renders
every related model for each removal (dj-stripe's ~60 models all point at each other). On a fresh
database that alone took over two minutes of CPU, the bulk of `make run`'s first start. The squashed
migration (written by `manage.py squashmigrations djstripe 0003_2_11`) creates the final tables
directly, in seconds. Django uses it on a fresh database; a database that applied dj-stripe's own
migrations keeps them (the squash `replaces` them), so nothing changes for an existing deployment.

The other modules here load dj-stripe's own migrations from the installed package, unchanged.
When a dj-stripe upgrade ships a new migration, add a module for it here like the others:
tests/test_migrations.py fails until the two lists match."""
