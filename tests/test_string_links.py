"""Links the import contract cannot see (issue 27, item 4): a Celery task named as a string, a URL
named as a string (in code and in templates), and a table or function named in hand-written SQL.
Each must resolve, so that a rename fails here, loudly, instead of in whichever test happens to
touch it. Each checker is also shown to catch a misspelling."""

import ast
import re
from pathlib import Path

import pytest
from django.db import connection
from django.urls import NoReverseMatch, reverse

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "billing", "budgets", "buying", "invoices", "operations", "usage", "config")
TASK_NAME = re.compile(r"^(%s)\.tasks\.[a-z_]+$" % "|".join(APPS))
URL_IN_CODE = re.compile(r"""\b(?:reverse|redirect|reverse_lazy|resolve_url)\(\s*["']([\w:-]+)["']""")
URL_IN_TEMPLATE = re.compile(r"""{%\s*url\s+["']([\w:-]+)["']""")
SQL_WORDS = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|JOIN|FROM)\b")
SQL_NAME = re.compile(r"\b((?:%s)_[a-z0-9_]+)\b" % "|".join(a for a in APPS if a != "config"))


def _python_files():
    for app in APPS:
        yield from (path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts)


def _string_constants(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def task_names() -> set[str]:
    return {text for path in _python_files() for text in _string_constants(path) if TASK_NAME.match(text)}


def url_names() -> set[str]:
    names = set()
    for path in _python_files():
        names |= set(URL_IN_CODE.findall(path.read_text()))
    for path in (ROOT / "templates").rglob("*.html"):
        names |= set(URL_IN_TEMPLATE.findall(path.read_text()))
    return names


def sql_names() -> dict[str, set[str]]:
    """Every app-prefixed name in hand-written SQL (the SQL files, and Python strings that hold a
    statement), by the file it is in."""
    found: dict[str, set[str]] = {}
    for path in ROOT.glob("*/sql/*.sql"):
        text = re.sub(r"--[^\n]*", "", path.read_text())  # names in comments are prose
        found[str(path.relative_to(ROOT))] = set(SQL_NAME.findall(text))
    for path in _python_files():
        for text in _string_constants(path):
            if SQL_WORDS.search(text):
                found.setdefault(str(path.relative_to(ROOT)), set()).update(SQL_NAME.findall(text))
    return found


def unknown_tasks(names) -> list[str]:
    from config.celery import app

    app.loader.import_default_modules()
    return sorted(name for name in names if name not in app.tasks)


def unknown_urls(names) -> list[str]:
    unknown = []
    for name in names:
        try:
            reverse(name)
        except NoReverseMatch as error:
            if "is not a valid view function or pattern name" in str(error) or "is not a registered namespace" in str(error):
                unknown.append(name)
    return sorted(unknown)


def unknown_sql_names(names_by_file) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class UNION SELECT proname FROM pg_proc UNION SELECT conname FROM pg_constraint")
        known = {row[0] for row in cursor.fetchall()}
    partition = re.compile(r"^usage_(run|runnode)_p(\d{4}_\d{2})?$")  # a month partition, or its prefix
    return sorted(f"{file}: {name}" for file, names in names_by_file.items() for name in names
                  if name not in known and not partition.match(name))


@pytest.mark.django_db
def test_every_task_named_as_a_string_is_registered():
    names = task_names()
    assert "buying.tasks.auto_recharge_pay" in names and "buying.tasks.expire_pending_purchases" in names
    assert unknown_tasks(names) == []
    assert unknown_tasks({"buying.tasks.auto_recharge_pays"}) == ["buying.tasks.auto_recharge_pays"]


@pytest.mark.django_db
def test_every_url_named_as_a_string_resolves():
    names = url_names()
    assert "billing:checkout_cancelled" in names and len(names) > 50
    assert unknown_urls(names) == []
    assert unknown_urls({"billing:chekout", "nowhere:buy"}) == ["billing:chekout", "nowhere:buy"]


@pytest.mark.django_db
def test_every_table_and_function_hand_written_sql_names_exists():
    names = sql_names()
    assert {"billing_wallet", "budgets_spendcounter", "usage_run"} <= names["usage/sql/runs.sql"] | names[
        "budgets/sql/limits.sql"]
    assert unknown_sql_names(names) == []
    assert unknown_sql_names({"x.sql": {"billing_walet"}}) == ["x.sql: billing_walet"]
