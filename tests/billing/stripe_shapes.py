"""Stripe objects in the shape the pinned stripe-python declares, for replaying webhooks.

Each object has every field its stripe-python class annotates (lists empty, maps empty, nested
objects of the class's own types as dicts of their fields, everything else None), so a handler that reads a field
Stripe sends, or trips over one it did not expect to be null, is exercised as with a real
delivery. A test sets only the values its scenario needs."""

import typing

import stripe

CLASSES = {
    "checkout_session": stripe.checkout.Session, "customer": stripe.Customer, "event": stripe.Event,
    "tax_id": stripe.TaxId, "tax_rate": stripe.TaxRate,
}
ONLY_WHEN_DELETED = {"deleted"}


def _empty(cls, hint):
    """A list field is [], a map {}, one of the class's own nested types a dict of its fields."""
    for candidate in (hint, *typing.get_args(hint)):
        if typing.get_origin(candidate) is list:
            return []
        if typing.get_origin(candidate) is dict:
            return {}
        if isinstance(candidate, type) and issubclass(candidate, stripe.StripeObject) \
                and candidate.__qualname__.startswith(cls.__qualname__.split(".")[0] + "."):
            return _fields(candidate)
    return None


def _fields(cls) -> dict:
    annotations = {}
    for klass in reversed(cls.__mro__):
        annotations.update(vars(klass).get("__annotations__", {}))
    shape = {}
    for name, hint in annotations.items():
        if name.startswith("_") or name.isupper() or name in ONLY_WHEN_DELETED or typing.get_origin(hint) is typing.ClassVar:
            continue
        shape[name] = _empty(cls, hint)
    return shape


def stripe_object(kind: str, /, **values) -> dict:
    cls = CLASSES[kind]
    obj = _fields(cls)
    obj.update(object=cls.OBJECT_NAME, livemode=False, **values)
    return obj
