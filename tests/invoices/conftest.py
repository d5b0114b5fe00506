import importlib

import pytest


def _seed_catalog():
    from django.apps import apps

    # The data migration's own function: idempotent (update_or_create).
    importlib.import_module("billing.migrations.0003_seed_catalog").seed(apps, None)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """A reused test database may have been left flushed by a transactional test: seed it again."""
    with django_db_blocker.unblock():
        _seed_catalog()


@pytest.fixture(autouse=True)
def catalog_after_flush(request):
    """A transactional test ends by flushing every table, seeded plans and packs included, so the next
    transactional test would find none. Re-seed them before each transactional test."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        _seed_catalog()
