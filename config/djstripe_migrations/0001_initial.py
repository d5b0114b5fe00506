"""dj-stripe's own migration 0001_initial, as the installed dj-stripe ships it (see __init__.py)."""

from importlib import import_module

Migration = import_module("djstripe.migrations.0001_initial").Migration
