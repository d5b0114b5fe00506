"""Cost tags on runs (issue 29): the one home of their rules.

A run may carry at most MAX_TAGS pairs; a key matches [a-z0-9_.-]{1,40}, a value is 1 to 100
printable characters (str.isprintable: no control, format or separator characters other than the
space). The API refuses anything else with 400 invalid_request, and the tag filter (`tag=key:value`)
and the grouping (`group_by=tag:key`) of the API and the Usage page read keys and values by the same
rules. Tag values are user data: templates escape them and the CSV neutralises them as text cells."""

import re

MAX_TAGS = 10
KEY_MAX = 40
VALUE_MAX = 100
KEY = re.compile(rf"[a-z0-9_.-]{{1,{KEY_MAX}}}")
GROUP_PREFIX = "tag:"


class InvalidTag(ValueError):
    pass


def tag_key_check(key) -> str:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise InvalidTag(f"tag key {str(key)[:50]!r} must be 1 to {KEY_MAX} of a-z, 0-9, _ . and -.")
    return key


def tag_value_check(key: str, value) -> str:
    if not isinstance(value, str):
        raise InvalidTag(f"tag {key!r} must have a string value.")
    if not 1 <= len(value) <= VALUE_MAX:
        raise InvalidTag(f"tag {key!r} must have a value of 1 to {VALUE_MAX} characters.")
    if not value.isprintable():
        raise InvalidTag(f"tag {key!r} has a value with characters that are not printable.")
    return value


def tags_check(tags) -> dict[str, str]:
    """The tags of a run, as sent; InvalidTag names the first problem."""
    if not isinstance(tags, dict):
        raise InvalidTag("tags must be an object of key: value strings.")
    if len(tags) > MAX_TAGS:
        raise InvalidTag(f"tags: at most {MAX_TAGS} pairs.")
    return {tag_key_check(key): tag_value_check(key, value) for key, value in tags.items()}


def tag_filter_parse(text: str) -> tuple[str, str]:
    """`key:value` (the value may itself contain colons) -> (key, value)."""
    key, colon, value = str(text).partition(":")
    if not colon:
        raise InvalidTag("tag filter must be written key:value.")
    return tag_key_check(key), tag_value_check(key, value)


def tag_group_parse(text: str) -> str:
    """`tag:key` -> key."""
    if not str(text).startswith(GROUP_PREFIX):
        raise InvalidTag(f"group_by must be written {GROUP_PREFIX}key.")
    return tag_key_check(text[len(GROUP_PREFIX):])
