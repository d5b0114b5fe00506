"""Django's {# #} comments end on their own line: one that spans lines is printed on the page as text."""

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_it_has_no_template_comment_that_spans_lines():
    unclosed = [f"{path.relative_to(TEMPLATES)}:{number}"
                for path in sorted(TEMPLATES.rglob("*.html")) + sorted(TEMPLATES.rglob("*.txt"))
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if "{#" in line and "#}" not in line.split("{#", 1)[1]]
    assert not unclosed, f"use {{% comment %}} for these: {unclosed}"
