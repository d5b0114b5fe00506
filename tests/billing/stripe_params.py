"""Checks the parameters we send to Stripe against stripe-python's own types (stripe.params):
every key, nested ones included, must be one the TypedDict names, every required key present, and
every Literal value one it allows. Stripe's form encoding is decoded first (`a[b][0][c]=v`)."""

import re
import sys
import types
import typing
from urllib.parse import parse_qsl

import stripe
from typing_extensions import NotRequired, is_typeddict


def form_decode(body: str) -> dict:
    """Stripe's form body back into nested dicts and lists (values stay strings)."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _resolve(tp, namespace: dict):
    """Annotations are strings and forward references (evaluated lazily, only for keys we send:
    RequestOptions names StripeContext only under TYPE_CHECKING)."""
    while True:
        if isinstance(tp, str):
            tp = eval(tp, namespace)  # noqa: S307 - stripe-python's own annotations
        elif isinstance(tp, typing.ForwardRef):
            tp = eval(tp.__forward_arg__, namespace)  # noqa: S307
        elif typing.get_origin(tp) in (NotRequired, typing.NotRequired, typing.Required):
            tp = typing.get_args(tp)[0]
        else:
            return tp


def _annotations(tp) -> dict:
    """Every key of a TypedDict, its bases' too, with the namespace its annotation is written in."""
    found = {}
    for base in reversed(tp.__mro__):
        namespace = {**vars(stripe), **vars(sys.modules[base.__module__])}
        for key, annotation in vars(base).get("__annotations__", {}).items():
            found[key] = (annotation, namespace)
    return found


def _problems(value, tp, path: str, namespace: dict | None = None) -> list[str]:
    namespace = namespace or vars(stripe)
    tp = _resolve(tp, namespace)
    origin = typing.get_origin(tp)
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        hints = _annotations(tp)
        problems = [f"{path}.{key}: not a parameter of {tp.__name__}" for key in value if key not in hints]
        problems += [f"{path}.{key}: required by {tp.__name__}" for key in tp.__required_keys__
                     if key not in value and key not in ("api_key", "idempotency_key")]
        for key, item in value.items():
            if key in hints:
                annotation, key_namespace = hints[key]
                problems += _problems(item, annotation, f"{path}.{key}", key_namespace)
        return problems
    if origin in (typing.Union, types.UnionType):
        options = [_problems(value, option, path, namespace) for option in typing.get_args(tp)]
        return [] if any(not o for o in options) else min(options, key=len)
    if origin is typing.Literal:
        allowed = [str(a).lower() if isinstance(a, bool) else str(a) for a in typing.get_args(tp)]
        return [] if str(value) in allowed else [f"{path}: {value!r} is not one of {allowed}"]
    if origin in (list, typing.List):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value)
                for p in _problems(item, typing.get_args(tp)[0], f"{path}[{i}]", namespace)]
    if tp is bool:
        return [] if value in ("true", "false", True, False) else [f"{path}: {value!r} is not a boolean"]
    if tp is int:
        return [] if re.fullmatch(r"-?\d+", str(value)) else [f"{path}: {value!r} is not an integer"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    return []  # dicts of metadata and other free-form types


def assert_stripe_params(params: dict | str, params_type) -> None:
    """`params` (a dict, or a form-encoded body as sent) is valid for stripe-python's `params_type`."""
    if isinstance(params, str):
        params = form_decode(params)
    problems = _problems(params, params_type, params_type.__name__)
    assert not problems, "\n".join(problems)
