import importlib

import pytest


@pytest.fixture
def catalog(db):
    """Plans, packs and rates. A transaction=True test flushes the tables at its end, seeded rows
    included, so the next test seeds them again (idempotent: update_or_create)."""
    from django.apps import apps

    importlib.import_module("billing.migrations.0003_seed_catalog").seed(apps, None)


@pytest.fixture
def team(catalog):
    from tests.factories import make_workspace

    return make_workspace()


@pytest.fixture
def outsider(catalog):
    from billing.services import user_get_or_create, workspace_create

    user = user_get_or_create(email="outsider@example.com", password="pw-outsider-1")
    workspace_create(slug="elsewhere", name="Elsewhere", owner=user, plan_id="free", kind="personal")
    return user
