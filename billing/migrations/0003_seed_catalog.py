"""Plans, packs, model and tool rates from the product page (SPEC sections 2 and 3)."""

from datetime import datetime, timezone

from django.db import migrations

CREDIT = 10**9
SEEDED_AT = datetime(2025, 1, 1, tzinfo=timezone.utc)

PLANS = [
    # id, name, monthly credits, price cents, rpm, concurrent, members, features, custom
    ("free", "Free", 50, 0, 10, 1, 1, "Personal workspace, community access", False),
    ("pro", "Pro", 1000, 2900, 60, 5, 10, "Team workspaces, priority support", False),
    ("team", "Team", 5000, 9900, 300, 20, None, "Unlimited members, API access", False),
    ("enterprise", "Enterprise", 0, None, 300, 20, None, "SLA, SSO, dedicated support", True),
]
PACKS = [("starter", "Starter", 100, 500, 0), ("builder", "Builder", 500, 2000, 25),
         ("pro", "Pro", 2000, 7500, 150), ("team", "Team", 10000, 35000, 1000)]
# model id, name, input and output credits per 1M tokens, times 1000 = nanocredits per token
MODELS = [("gpt-4o", "GPT-4o", 5000, 15000), ("gpt-4o-mini", "GPT-4o-mini", 300, 1200),
          ("claude-sonnet-4", "Claude Sonnet 4", 6000, 30000), ("claude-opus-4", "Claude Opus 4", 30000, 150000),
          ("gemini-2.0-flash", "Gemini 2.0 Flash", 150, 600), ("ollama", "Ollama (BYOK)", 0, 0)]
TOOLS = [("web_search", CREDIT // 100), ("code_interpreter", 3 * CREDIT // 100)]


def seed(apps, schema_editor):
    Plan, CreditPack = apps.get_model("billing", "Plan"), apps.get_model("billing", "CreditPack")
    AIModel, ModelRate, ToolRate = (apps.get_model("billing", n) for n in ("AIModel", "ModelRate", "ToolRate"))
    for order, (pid, name, monthly, price, rpm, conc, members, features, custom) in enumerate(PLANS):
        Plan.objects.update_or_create(id=pid, defaults=dict(
            name=name, monthly_credits=monthly * CREDIT, price_cents=price, requests_per_minute=rpm,
            concurrent_runs=conc, max_members=members, features=features, is_custom=custom, sort_order=order))
    for order, (pid, name, amount, price, bonus) in enumerate(PACKS):
        CreditPack.objects.update_or_create(id=pid, defaults=dict(
            name=name, credits=amount * CREDIT, bonus=bonus * CREDIT, price_cents=price, sort_order=order))
    for order, (mid, name, rate_in, rate_out) in enumerate(MODELS):
        AIModel.objects.update_or_create(id=mid, defaults=dict(name=name, sort_order=order))
        ModelRate.objects.get_or_create(model_id=mid, effective_from=SEEDED_AT, defaults=dict(
            input_nanos_per_token=rate_in, output_nanos_per_token=rate_out))
    for tool, nanos in TOOLS:
        ToolRate.objects.get_or_create(tool=tool, effective_from=SEEDED_AT, defaults=dict(nanos_per_call=nanos))


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
