"""dj-stripe's migrations run through config/djstripe_migrations: its own migrations, unchanged,
plus one squashed migration that a fresh database applies instead (about 20 s of CPU instead of
over two minutes: dj-stripe 2.10 removes 514 fields one by one)."""

import pkgutil
from importlib import import_module

from django.db.migrations.loader import MigrationLoader

import config.djstripe_migrations
import djstripe.migrations

SQUASH = "0001_squashed_0003_2_11"


def _names(package) -> set[str]:
    return {module.name for module in pkgutil.iter_modules(package.__path__)}


def test_every_djstripe_migration_has_its_module_here():
    """A dj-stripe upgrade that ships a new migration must add its module beside the others."""
    assert _names(config.djstripe_migrations) - {SQUASH} == _names(djstripe.migrations)


def test_the_squash_replaces_djstripes_migrations_and_ends_in_the_same_state():
    squash = import_module(f"config.djstripe_migrations.{SQUASH}").Migration
    assert set(squash.replaces) == {("djstripe", name) for name in _names(djstripe.migrations) if name <= "0003_2_11"}
    originals = MigrationLoader(None, replace_migrations=False, load=True)
    squashed = MigrationLoader(None, replace_migrations=True, load=True)
    before = originals.project_state(("djstripe", "0003_2_11"), at_end=True)
    after = squashed.project_state(("djstripe", SQUASH), at_end=True)

    def tables(state):
        return {name: ({field: f.deconstruct()[1:] for field, f in model.fields.items()},
                       {k: v for k, v in model.options.items() if k != "verbose_name"})
                for (app, name), model in state.models.items() if app == "djstripe"}
    assert tables(after) == tables(before)
