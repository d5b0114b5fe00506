"""The Django admin that staff use to run the business, one module per section.

Money is edited and shown in credits (never raw nanocredits alone). Rates are append-only: a
change in the admin or an import creates a new version effective now, so a run authorized
earlier is still priced with the version it was authorized under. The ledger, purchases and the
audit trail are read-only here; a credit correction goes through the "adjust credits" form, which
calls billing.ledger.credits_adjust with the staff user as the actor.

- ``fields``: credits widgets and form fields, ``ReadOnlyAdmin``, ``amount_cell`` and ``credits_column``;
- ``users``, ``catalog`` (plans and packs), ``rates``, ``workspaces`` (with memberships),
  ``records`` (wallets, ledger, purchases, audit);
- ``site``: the admin's branding and the dj-stripe models staff do not use, hidden.
"""

from . import catalog, rates, records, site, users, workspaces  # noqa: F401  (registers the admins)
from .catalog import CreditPackResource, PlanResource  # noqa: F401
from .fields import CreditFieldsMixin, CreditsWidget, RateWidget, ReadOnlyAdmin, amount_cell, credits_column  # noqa: F401
from .rates import ModelRateResource, ToolRateResource  # noqa: F401
