"""/v1/docs/ shows what every answer contains, and the declared response schemas match real answers."""

import pytest
from rest_framework import serializers

from usage.api import schema as schemas

from .conftest import TWO_NODES, authorize


def fields_of(serializer) -> dict:
    """The field tree a response schema declares: {name: subtree or None}."""
    if isinstance(serializer, serializers.ListSerializer):
        serializer = serializer.child
    return {name: fields_of(field) if isinstance(field, (serializers.Serializer, serializers.ListSerializer)) else None
            for name, field in serializer.fields.items()}


def optional_of(serializer) -> set:
    """Names the schema declares as optional (required=False), anywhere in the tree."""
    if isinstance(serializer, serializers.ListSerializer):
        serializer = serializer.child
    names = {name for name, field in serializer.fields.items() if not field.required}
    for field in serializer.fields.values():
        if isinstance(field, (serializers.Serializer, serializers.ListSerializer)):
            names |= optional_of(field)
    return names


def keys_of(value):
    if isinstance(value, list):
        return keys_of(value[0]) if value else None
    if isinstance(value, dict):
        return {key: keys_of(item) for key, item in value.items()}
    return None


def assert_matches(schema, answer):
    declared, actual, optional = fields_of(schema()), keys_of(answer), optional_of(schema())

    def walk(declared, actual, path):
        missing = set(declared) - set(actual) - optional
        assert not missing and set(actual) <= set(declared), \
            f"{path or 'answer'}: declared {sorted(declared)}, answered {sorted(actual)}"
        for name, sub in declared.items():
            if sub is not None and actual.get(name) is not None:
                walk(sub, actual[name], f"{path}.{name}")

    walk(declared, actual, "")


@pytest.mark.django_db
def test_the_declared_response_schemas_match_real_answers(owner_api):
    authorized = authorize(owner_api, run_id="docs-1")
    assert authorized.status_code == 201
    assert_matches(schemas.Authorization, authorized.json())
    completed = owner_api.post("/v1/runs/docs-1/complete", TWO_NODES)
    assert_matches(schemas.RunOut, completed.json())
    assert_matches(schemas.RunOut, owner_api.get("/v1/runs/docs-1").json())
    assert_matches(schemas.RunPage, owner_api.get("/v1/runs").json())
    assert_matches(schemas.Balance, owner_api.get("/v1/billing/balance").json())
    assert_matches(schemas.Rates, owner_api.get("/v1/billing/rates").json())
    assert_matches(schemas.UsageFrom, owner_api.get("/v1/usage").json())
    assert_matches(schemas.Error, owner_api.get("/v1/runs/nope").json())
    # Issue 29: a grown hold, the tag grouping, a limited token's block, a token refusal's limit.
    authorize(owner_api, run_id="docs-2", reserve="1", tags={"customer": "acme"})
    assert_matches(schemas.ExtensionOut, owner_api.post("/v1/runs/docs-2/extend", {"id": "k", "credits": "1"}).json())
    grouped = owner_api.get("/v1/usage", {"group_by": "tag:customer"}).json()
    assert "by_tag" in grouped
    assert_matches(schemas.UsageFrom, grouped)


@pytest.mark.django_db
def test_the_declared_token_block_and_refusal_match_real_answers(team):
    from billing.models import credits
    from usage.tokens import TokenLimits, token_create

    from .conftest import Api

    api = Api(token_create(membership=team.membership(team.member), name="capped",
                           limits=TokenLimits(max_credits_per_day=credits(1))).raw)
    authorize(api, run_id="t-1")
    balance = api.get("/v1/billing/balance").json()
    assert balance["token"] is not None
    assert_matches(schemas.Balance, balance)
    refusal = authorize(api, run_id="t-2").json()
    assert refusal["error"]["limit"] == "max_credits_per_day"
    assert_matches(schemas.Error, refusal)


@pytest.mark.django_db
def test_the_docs_page_links_back_to_the_portal_and_the_schema_lists_responses(client):
    page = client.get("/v1/docs/").content.decode()
    assert "Back to the billing portal" in page
    schema = client.get("/v1/schema/").content.decode()
    for component in ("Balance:", "RunOut:", "RunPage:", "UsageFrom:", "Rates:", "Authorization:", "Error:"):
        assert f"    {component}" in schema
    assert "$ref: '#/components/schemas/Balance'" in schema
