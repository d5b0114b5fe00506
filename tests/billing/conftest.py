"""A transactional test (real threads) ends by flushing every table, the seeded plans, packs and
rates included: seed them again (same pattern as tests/usage and tests/invoices)."""

import importlib

import pytest


def _seed_catalog():
    from django.apps import apps

    importlib.import_module("billing.migrations.0003_seed_catalog").seed(apps, None)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _seed_catalog()


@pytest.fixture(autouse=True)
def catalog_after_flush(request):
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        _seed_catalog()
