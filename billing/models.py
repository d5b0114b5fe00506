"""Tenancy and the money core: users, workspaces, plans, packs, rates, wallets and the ledger.

Every amount of credits is a whole number of nanocredits (1 credit = 10**9) in a 64-bit column.
"""

import secrets
import unicodedata
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_countries.fields import CountryField

from .money import NANOS_PER_CREDIT, nanos_display


def email_canonical(address: str) -> str:
    """The one spelling of an e-mail address that is stored, compared and looked up: NFKC-normalised
    and case-folded, so that "Owner@X", "owner@x" and "owner@ｘ" are one account."""
    return unicodedata.normalize("NFKC", address or "").strip().casefold()


def email_plain_check(address: str) -> None:
    """A Django validator: after email_canonical the address must be plain ASCII. Look-alike letters
    survive NFKC and case-folding ("admın" with a dotless i, "İ" folding to "i" and a combining dot),
    and a second account spelled like the first would receive its invitations and resets in the
    eyes of a reader. Internationalised domains can be given in their ASCII (xn--) form."""
    if not email_canonical(address).isascii():
        raise ValidationError("Use the plain (ASCII) spelling of the address: it contains a letter that only "
                              "looks like a Latin one.", code="not_plain")


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email):
        return email_canonical(email)

    def get_by_natural_key(self, username):
        """Sign-in finds the account by its canonical address ("Owner@Demo.test" signs in owner@demo.test)."""
        return self.get(email=email_canonical(username))

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        try:
            email_plain_check(email)
        except ValidationError as error:
            raise ValueError(error.messages[0]) from None
        user = self.model(email=self.normalize_email(email), **extra)
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
    # Where "/" sends them after login: the workspace they used last (kept by billing.tenancy).
    last_workspace = models.ForeignKey("billing.Workspace", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")

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
    # Token classes (issue 28), the same unit. NULL: the class is priced at its parent's rate
    # (cached input and cache write at the input rate, reasoning at the output rate).
    cached_input_nanos_per_token = models.BigIntegerField(null=True, blank=True)
    cache_write_nanos_per_token = models.BigIntegerField(null=True, blank=True)
    reasoning_nanos_per_token = models.BigIntegerField(null=True, blank=True)
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


def concurrent_runs_allowed(*, custom: int | None, plan: int) -> int:
    """How many runs a workspace may have running at once: its Enterprise value, else its plan's.
    The one home of the rule (Workspace.concurrent_runs, and the charge path's fixed SQL)."""
    return custom if custom is not None else plan


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
    # Billing details (Settings -> Billing -> Billing details; invoices.services.
    # workspace_billing_details_update is the only writer): printed on invoices issued from then on.
    billing_name = models.CharField(max_length=200, blank=True)  # the legal name
    billing_address = models.TextField(blank=True)
    billing_country = CountryField(blank=True, default="")  # ISO 3166-1 alpha-2; decides the tax (invoices/tax.py)
    tax_id = models.CharField(max_length=64, blank=True)  # normalised, and valid for billing_country when it can be checked
    billing_email = models.EmailField(blank=True)  # where invoices go; empty: the owner's e-mail
    # Owners and admins must sign in with a second factor before they reach the workspace's pages
    # (billing.tenancy.membership_for; set through accounts.two_factor.two_factor_requirement_set).
    two_factor_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        # The period job asks every few minutes which workspaces' periods have ended: an index
        # range instead of a walk over every workspace (billing.grants.due_workspaces).
        indexes = [models.Index(fields=["period_end"], name="workspace_period_end")]

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
        return concurrent_runs_allowed(custom=self.custom_concurrent_runs, plan=self.plan.concurrent_runs)

    @property
    def custom_limits(self) -> list[str]:
        """Which of the limits above are this workspace's own (set by staff, Enterprise), not its plan's."""
        return [name for name, value in (("monthly_credits", self.custom_monthly_credits),
                                         ("requests_per_minute", self.custom_requests_per_minute),
                                         ("concurrent_runs", self.custom_concurrent_runs)) if value is not None]

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


class ActiveMembershipManager(models.Manager):
    """The default manager: removed memberships are invisible to pages, the API, caps and alerts.
    Their rows stay (runs, rollups and counters point at them: history is kept), reachable through
    `Membership.all_objects` and forward foreign keys (`run.member`), which use the base manager."""

    def get_queryset(self):
        return super().get_queryset().filter(removed_at__isnull=True)


class Membership(models.Model):
    OWNER, ADMIN, MEMBER = "owner", "admin", "member"
    ROLES = [(OWNER, "Owner"), (ADMIN, "Admin"), (MEMBER, "Member")]

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=MEMBER)
    # Nanocredits per billing period for runs started with this member's tokens; None: no limit.
    monthly_budget = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the member was removed or left; None while they belong to the workspace. Joining again
    # (a new invitation) clears it, so one person keeps one membership row per workspace.
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = ActiveMembershipManager()
    all_objects = models.Manager()

    class Meta:
        ordering = ["workspace", "created_at"]
        base_manager_name = "all_objects"
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
    # Auto-recharge's trigger, kept on the row every writer already holds locked, so watching the
    # threshold costs no query (billing/recharge_trigger.py). None: auto-recharge is off or paused.
    auto_recharge_threshold = models.BigIntegerField(null=True, blank=True)
    # False from a crossing until available is back at or above the threshold (re-arm).
    auto_recharge_armed = models.BooleanField(default=True)
    # Crossings so far; the next crossing's number is the DB-unique key of its attempt.
    auto_recharge_crossings = models.IntegerField(default=0)
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

    GRANT, PURCHASE, BONUS, CHARGE, EXPIRY, ADJUSTMENT, REFUND, WRITE_OFF = (
        "grant", "purchase", "bonus", "charge", "expiry", "adjustment", "refund", "write_off",
    )
    # write_off: what a run's charge would have taken below the overdraft bound, absorbed by the
    # platform (billing/sql/wallet.sql, billing_run_charge).
    KINDS = [(k, k.title()) for k in (GRANT, PURCHASE, BONUS, CHARGE, EXPIRY, ADJUSTMENT, REFUND)] + [
        (WRITE_OFF, "Write-off")]
    MONTHLY, PURCHASED = "monthly", "purchased"
    BUCKETS = [(MONTHLY, "Monthly"), (PURCHASED, "Purchased")]

    # The indexes are chosen for the charge path, which adds an entry per charge (docs/performance.md):
    # the workspace leads ledger_ws_recent, and actor and purchase are indexed only where set.
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, db_index=False, related_name="ledger")
    kind = models.CharField(max_length=16, choices=KINDS)
    bucket = models.CharField(max_length=16, choices=BUCKETS)
    amount = models.BigIntegerField(help_text="Signed nanocredits: + into the bucket, - out of it.")
    bucket_balance_after = models.BigIntegerField(help_text="The bucket's balance after this entry.")
    balance_after = models.BigIntegerField(help_text="monthly + purchased after this entry.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, db_index=False)
    reason = models.CharField(max_length=300)
    # Unique per business event ("run:<id>:charge:monthly", "grant:<ws>:<period>"): the database
    # refuses a second entry for the same event, whatever the code does (one_entry_per_key).
    idempotency_key = models.CharField(max_length=200)
    # No database constraint: on PostgreSQL runs live in month partitions (whose key is (id,
    # created_at)) and retention drops old months whole; the ledger keeps its entries forever.
    run = models.ForeignKey("usage.Run", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                            related_name="ledger_entries")
    purchase = models.ForeignKey("billing.Purchase", null=True, blank=True, on_delete=models.PROTECT, db_index=False,
                                 related_name="ledger_entries")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            # A constraint rather than unique=True: the same unique index, without the second,
            # pattern-matching copy of every key that Django adds to a unique CharField.
            models.UniqueConstraint(fields=["idempotency_key"], name="one_entry_per_key"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="ledger_ws_recent"),
            models.Index(fields=["actor"], name="ledger_actor", condition=Q(actor__isnull=False)),
            models.Index(fields=["purchase"], name="ledger_purchase", condition=Q(purchase__isnull=False)),
        ]

    def __str__(self):
        return f"{self.kind} {nanos_display(self.amount)} ({self.bucket})"

    @property
    def actor_label(self) -> str:
        return self.actor.email if self.actor_id else "system"


class Purchase(models.Model):
    """A credit-pack sale. Fulfilled exactly once: the ledger keys derive from its id."""

    PENDING, PAID, REFUNDED, PARTIALLY_REFUNDED = "pending", "paid", "refunded", "partially_refunded"
    # Cancelled: the buyer left the checkout, or it expired (buying.purchases.purchase_cancel). A
    # payment that still lands for it is fulfilled all the same: money received is never ignored.
    CANCELLED = "cancelled"
    STATUSES = [(PENDING, "Pending"), (PAID, "Paid"), (REFUNDED, "Refunded"), (PARTIALLY_REFUNDED, "Partially refunded"),
                (CANCELLED, "Cancelled")]
    UNPAID = (PENDING, CANCELLED)  # no payment received (yet): nothing to refund, a payment still fulfils it
    STRIPE, TEST, MANUAL = "stripe", "test", "manual"

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="purchases")
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT)
    status = models.CharField(max_length=24, choices=STATUSES, default=PENDING)
    source = models.CharField(max_length=16, choices=[(STRIPE, "Stripe"), (TEST, "Test checkout"), (MANUAL, "Manual")])
    credits = models.BigIntegerField()  # snapshot of the pack at purchase time
    bonus = models.BigIntegerField()
    amount_cents = models.IntegerField()  # the price, before tax
    # The tax on top of the price, and how it was decided (invoices/tax.py's TaxDecision as JSON):
    # from the tax table when the purchase starts (test checkout, manual), from Stripe Tax when the
    # payment is made through Stripe. The buyer pays amount_cents + tax_cents (`total_cents`).
    tax_cents = models.IntegerField(default=0)
    tax_detail = models.JSONField(default=dict, blank=True)
    refunded_cents = models.IntegerField(default=0)  # of total_cents: what went back to the buyer
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

    @property
    def total_cents(self) -> int:
        """What the buyer pays: the price and its tax."""
        return self.amount_cents + self.tax_cents


INVITATION_TTL = timedelta(days=7)  # SPEC section 5


def invitation_expiry(at=None):
    return (at or timezone.now()) + INVITATION_TTL


class Invitation(models.Model):
    """An e-mailed offer to join a workspace with a role. The link carries the id and `nonce`, signed
    and timestamped (billing.invitations); it works once (accepted_at is set by a conditional UPDATE)
    and until `expires_at`. A resend draws a new nonce and a new expiry, so older links stop working."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()  # lower-cased
    role = models.CharField(max_length=16, choices=[(Membership.ADMIN, "Admin"), (Membership.MEMBER, "Member")])
    nonce = models.CharField(max_length=32)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and workspace: inviting again resends it.
            models.UniqueConstraint(fields=["workspace", "email"],
                                    condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                                    name="one_open_invitation_per_email"),
        ]

    def __str__(self):
        return f"{self.email} to {self.workspace_id} as {self.role}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

    def is_pending(self, now=None) -> bool:
        """Open and not expired: counts against the plan's member cap."""
        return self.is_open and self.expires_at > (now or timezone.now())


class AuditEvent(models.Model):
    """Who changed what outside the ledger, from where, with the fields before and after. Written
    only through billing.audit.audit_record; append-only (the database refuses updates and deletes)."""

    USER, STAFF, SYSTEM = "user", "staff", "system"
    ACTOR_KINDS = [(USER, "User"), (STAFF, "Staff"), (SYSTEM, "System")]

    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_kind = models.CharField(max_length=8, choices=ACTOR_KINDS, default=SYSTEM)
    action = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    before = models.JSONField(default=dict, blank=True)
    detail = models.JSONField(default=dict, blank=True)  # the fields after the change
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_workspace_recent")]

    @property
    def kind(self) -> str:
        """What the change concerns: the part of `action` before the dot (budget, member, token...)."""
        return self.action.split(".", 1)[0]


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


class AutoRecharge(models.Model):
    """A workspace's auto-recharge settings (issue 15, docs/auto-recharge.md). The threshold that
    triggers lives on the Wallet too (copied there while on and not paused)."""

    TEST_CARD_OK, TEST_CARD_DECLINE, TEST_CARD_AUTH = "succeeds", "declines", "requires_action"
    TEST_CARDS = [(TEST_CARD_OK, "Succeeds"), (TEST_CARD_DECLINE, "Is declined"),
                  (TEST_CARD_AUTH, "Requires authentication (3-D Secure)")]
    PAUSED_DECLINED, PAUSED_ACTION = "declined", "requires_action"

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="auto_recharge")
    enabled = models.BooleanField(default=False)
    threshold = models.BigIntegerField(help_text="Nanocredits: recharge when available credits fall below.")
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT)
    max_per_period = models.PositiveSmallIntegerField(default=3, help_text="The ceiling per billing period.")
    paused_reason = models.CharField(max_length=32, blank=True)  # "", declined, requires_action
    paused_at = models.DateTimeField(null=True, blank=True)
    # Test-checkout mode: the built-in test card on file, and how it answers.
    test_card = models.CharField(max_length=32, choices=TEST_CARDS, blank=True)
    # Stripe: the saved payment method (dj-stripe mirrors the customer; we keep what a charge needs).
    stripe_payment_method_id = models.CharField(max_length=100, blank=True)
    card_label = models.CharField(max_length=100, blank=True, help_text="e.g. Visa ending 4242")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(threshold__gt=0), name="auto_recharge_threshold_positive"),
                       models.CheckConstraint(condition=Q(max_per_period__gte=1), name="auto_recharge_ceiling_positive")]

    @property
    def has_payment_method(self) -> bool:
        return bool(self.test_card or self.stripe_payment_method_id)

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.paused_reason


class AutoRechargeAttempt(models.Model):
    """One crossing of the threshold and what it bought. `key` is unique per workspace crossing, and
    at most one attempt per workspace is in flight (partial unique index): however many runs cross
    together, one purchase is made."""

    PENDING, RETRYING, SUCCEEDED, REQUIRES_ACTION, FAILED, SKIPPED = (
        "pending", "retrying", "succeeded", "requires_action", "failed", "skipped")
    STATUSES = [(s, s.replace("_", " ").capitalize()) for s in (PENDING, RETRYING, SUCCEEDED, REQUIRES_ACTION,
                                                                FAILED, SKIPPED)]
    IN_FLIGHT = (PENDING, RETRYING)

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="auto_recharges")
    key = models.CharField(max_length=100, unique=True)  # "auto-recharge:<workspace>:<crossing>"
    status = models.CharField(max_length=24, choices=STATUSES, default=PENDING)
    period_start = models.DateTimeField(help_text="The billing period it counts in (the ceiling).")
    available_at_trigger = models.BigIntegerField()
    threshold = models.BigIntegerField()
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT)
    purchase = models.OneToOneField(Purchase, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="auto_recharge")
    tries = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=200, blank=True)
    action_url = models.URLField(max_length=500, blank=True, help_text="Where the owner finishes 3-D Secure.")
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace"], condition=Q(status__in=["pending", "retrying"]),
                                               name="one_auto_recharge_in_flight")]
        indexes = [models.Index(fields=["status", "next_try_at"], name="auto_recharge_due",
                                condition=Q(status="retrying"))]
