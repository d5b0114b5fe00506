"""Tenancy and the money core: users, workspaces, plans, packs, rates, wallets and the ledger.

Every amount of credits is a whole number of nanocredits (1 credit = 10**9) in a 64-bit column.
"""

import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .money import NANOS_PER_CREDIT, nanos_display


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """People sign in with their e-mail address."""

    username = None
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self):
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


class Plan(models.Model):
    id = models.SlugField(primary_key=True, max_length=32)  # free, pro, team, enterprise
    name = models.CharField(max_length=64)
    monthly_credits = models.BigIntegerField(help_text="Nanocredits granted each period.")
    price_cents = models.IntegerField(null=True, blank=True, help_text="Per month; empty means contact sales.")
    requests_per_minute = models.IntegerField()
    concurrent_runs = models.IntegerField()
    max_members = models.IntegerField(null=True, blank=True, help_text="Empty means unlimited.")
    features = models.CharField(max_length=200, blank=True)
    stripe_price_id = models.CharField(max_length=100, blank=True)
    is_custom = models.BooleanField(default=False, help_text="Enterprise: values are set per workspace.")
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order"]

    def __str__(self):
        return self.name


class CreditPack(models.Model):
    id = models.SlugField(primary_key=True, max_length=32)  # starter, builder, pro, team
    name = models.CharField(max_length=64)
    credits = models.BigIntegerField(help_text="Nanocredits.")
    bonus = models.BigIntegerField(default=0, help_text="Nanocredits, on top of `credits`.")
    price_cents = models.IntegerField()
    stripe_price_id = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order"]

    def __str__(self):
        return self.name

    @property
    def total_credits(self) -> int:
        return self.credits + self.bonus


class AIModel(models.Model):
    """A model the engine can call; its prices live in versioned ModelRate rows."""

    id = models.SlugField(primary_key=True, max_length=64)  # gpt-4o, claude-sonnet-4, ...
    name = models.CharField(max_length=100)
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]
        verbose_name = "model"

    def __str__(self):
        return self.name


class ModelRate(models.Model):
    """One version of a model's prices. Append-only: a change is a new row with a later effective_from,
    so a run is always priced with the version in force when it was authorized."""

    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="rates")
    # nanocredits per token == credits per 1M tokens * 1000 (exact for rates with <= 3 decimals)
    input_nanos_per_token = models.BigIntegerField()
    output_nanos_per_token = models.BigIntegerField()
    effective_from = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["model_id", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["model", "effective_from"], name="one_rate_per_model_instant")]

    def __str__(self):
        return f"{self.model_id} from {self.effective_from:%Y-%m-%d %H:%M}"


class ToolRate(models.Model):
    """Credits per call of a tool, versioned like ModelRate. A tool without a rate is free."""

    tool = models.SlugField(max_length=64)
    nanos_per_call = models.BigIntegerField()
    effective_from = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["tool", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["tool", "effective_from"], name="one_rate_per_tool_instant")]

    def __str__(self):
        return f"{self.tool} from {self.effective_from:%Y-%m-%d %H:%M}"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class Workspace(models.Model):
    PERSONAL, TEAM = "personal", "team"

    slug = models.SlugField(unique=True, max_length=64)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=[(PERSONAL, "Personal"), (TEAM, "Team")], default=TEAM)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)
    # The current billing period [period_start, period_end). Free rolls monthly from created_at.
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # Enterprise values (None: the plan's).
    custom_monthly_credits = models.BigIntegerField(null=True, blank=True)
    custom_requests_per_minute = models.IntegerField(null=True, blank=True)
    custom_concurrent_runs = models.IntegerField(null=True, blank=True)
    # Stripe subscription state
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    scheduled_plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="A downgrade that takes effect at the period end.",
    )
    # Invoicing details, editable on the History page.
    billing_name = models.CharField(max_length=200, blank=True)
    billing_address = models.TextField(blank=True)
    tax_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def monthly_credits(self) -> int:
        return self.custom_monthly_credits if self.custom_monthly_credits is not None else self.plan.monthly_credits

    @property
    def requests_per_minute(self) -> int:
        value = self.custom_requests_per_minute
        return value if value is not None else self.plan.requests_per_minute

    @property
    def concurrent_runs(self) -> int:
        return self.custom_concurrent_runs if self.custom_concurrent_runs is not None else self.plan.concurrent_runs

    def plan_switch(self, plan: Plan, *, requests_per_minute: int | None = None, concurrent_runs: int | None = None,
                    monthly_credits: int | None = None) -> None:
        """Put the workspace on `plan` (in memory; the caller saves). The custom (Enterprise) values
        belong to the plan they were set on: a switch to another plan clears them; staying on a
        custom plan keeps them, except those given here. The one place that decides it (plan
        changes, Stripe's subscription end, the period roll)."""
        changed = plan.pk != self.plan_id
        if not changed and requests_per_minute is None and concurrent_runs is None and monthly_credits is None:
            return
        keep = plan.is_custom and not changed
        self.custom_requests_per_minute = requests_per_minute if requests_per_minute is not None else (
            self.custom_requests_per_minute if keep else None)
        self.custom_concurrent_runs = concurrent_runs if concurrent_runs is not None else (
            self.custom_concurrent_runs if keep else None)
        self.custom_monthly_credits = monthly_credits if monthly_credits is not None else (
            self.custom_monthly_credits if keep else None)
        self.plan = plan

    @property
    def owner(self):
        membership = self.memberships.filter(role=Membership.OWNER).select_related("user").first()
        return membership.user if membership else None


class Membership(models.Model):
    OWNER, ADMIN, MEMBER = "owner", "admin", "member"
    ROLES = [(OWNER, "Owner"), (ADMIN, "Admin"), (MEMBER, "Member")]

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=MEMBER)
    # Nanocredits per billing period for runs started with this member's tokens; None: no limit.
    monthly_budget = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user"),
            models.UniqueConstraint(fields=["workspace"], condition=Q(role="owner"), name="one_owner_per_workspace"),
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.workspace}"

    @property
    def can_manage_billing(self) -> bool:
        return self.role in (self.OWNER, self.ADMIN)


class Wallet(models.Model):
    """The balances of one workspace. Each bucket equals the sum of its ledger entries (reconcile
    checks it); `reserved` is the sum of open run holds and `running_runs` their count."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="wallet")
    monthly = models.BigIntegerField(default=0)  # expires at period end; never below zero
    purchased = models.BigIntegerField(default=0)  # never expires; below zero only by a run's overrun
    reserved = models.BigIntegerField(default=0)  # >= 0
    running_runs = models.IntegerField(default=0)  # >= 0
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(monthly__gte=0), name="wallet_monthly_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="wallet_reserved_not_negative"),
            models.CheckConstraint(condition=Q(running_runs__gte=0), name="wallet_running_not_negative"),
        ]

    def __str__(self):
        return f"Wallet of {self.workspace_id}"

    @property
    def balance(self) -> int:
        return self.monthly + self.purchased

    @property
    def available(self) -> int:
        return self.balance - self.reserved


class LedgerEntry(models.Model):
    """Append-only: never updated or deleted; a correction is a new entry."""

    GRANT, PURCHASE, BONUS, CHARGE, EXPIRY, ADJUSTMENT, REFUND = (
        "grant", "purchase", "bonus", "charge", "expiry", "adjustment", "refund",
    )
    KINDS = [(k, k.title()) for k in (GRANT, PURCHASE, BONUS, CHARGE, EXPIRY, ADJUSTMENT, REFUND)]
    MONTHLY, PURCHASED = "monthly", "purchased"
    BUCKETS = [(MONTHLY, "Monthly"), (PURCHASED, "Purchased")]

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=16, choices=KINDS)
    bucket = models.CharField(max_length=16, choices=BUCKETS)
    amount = models.BigIntegerField(help_text="Signed nanocredits: + into the bucket, - out of it.")
    bucket_balance_after = models.BigIntegerField(help_text="The bucket's balance after this entry.")
    balance_after = models.BigIntegerField(help_text="monthly + purchased after this entry.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.CharField(max_length=300)
    # Unique per business event ("run:<id>:charge:monthly", "grant:<ws>:<period>"): the database
    # refuses a second entry for the same event, whatever the code does.
    idempotency_key = models.CharField(max_length=200, unique=True)
    run = models.ForeignKey("usage.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries")
    purchase = models.ForeignKey("billing.Purchase", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["workspace", "-id"], name="ledger_ws_recent")]

    def __str__(self):
        return f"{self.kind} {nanos_display(self.amount)} ({self.bucket})"

    @property
    def actor_label(self) -> str:
        return self.actor.email if self.actor_id else "system"


class Purchase(models.Model):
    """A credit-pack sale. Fulfilled exactly once: the ledger keys derive from its id."""

    PENDING, PAID, REFUNDED, PARTIALLY_REFUNDED = "pending", "paid", "refunded", "partially_refunded"
    STATUSES = [(PENDING, "Pending"), (PAID, "Paid"), (REFUNDED, "Refunded"), (PARTIALLY_REFUNDED, "Partially refunded")]
    STRIPE, TEST, MANUAL = "stripe", "test", "manual"

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="purchases")
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT)
    status = models.CharField(max_length=24, choices=STATUSES, default=PENDING)
    source = models.CharField(max_length=16, choices=[(STRIPE, "Stripe"), (TEST, "Test checkout"), (MANUAL, "Manual")])
    credits = models.BigIntegerField()  # snapshot of the pack at purchase time
    bonus = models.BigIntegerField()
    amount_cents = models.IntegerField()
    refunded_cents = models.IntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    stripe_checkout_session_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # record_purchase with the same bank reference twice is one purchase.
            models.UniqueConstraint(fields=["workspace", "reference"], condition=Q(source="manual") & ~Q(reference=""),
                                    name="one_manual_purchase_per_reference"),
        ]

    def __str__(self):
        return f"{self.pack} for {self.workspace} ({self.status})"


class AuditEvent(models.Model):
    """Who changed what outside the ledger (plans, budgets, roles, tokens)."""

    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


def credits(n: int | str) -> int:
    """Whole credits to nanocredits, for seeds and tests: credits(50) == 50 * 10**9."""
    return int(Decimal(str(n)) * NANOS_PER_CREDIT)



class StripeEvent(models.Model):
    """One row per Stripe event we acted on. dj-stripe stores every delivery but does not dedupe, so
    the unique event id here is what makes a replayed or duplicated delivery change nothing twice.
    `stripe_created` and `object_id` let a handler see that a newer event about the same object was
    already applied (out-of-order delivery)."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=200, blank=True, db_index=True)
    stripe_created = models.DateTimeField()
    livemode = models.BooleanField(default=False)
    outcome = models.CharField(max_length=200, blank=True, help_text="What the handler did, for staff.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.type} {self.event_id}"
