"""Runs, their per-node breakdown, the daily rollups behind the dashboard, and developer tokens."""

import hashlib
import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import AIModel, Membership, Workspace
from budgets.models import Agent  # the model lives with its budgets (issue 9)

TOKEN_PREFIX = "lf_"


class Workflow(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="workflow_name_per_workspace")]

    def __str__(self):
        return self.name


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class DeveloperToken(models.Model):
    """Belongs to one member of one workspace. Only the SHA-256 of the token is stored.

    Its limits (issue 29) are enforced by budgets_run_reservation (budgets/sql/limits.sql), which reads
    them under the wallet lock in the same statement as the reservation: what a run with this token
    may reserve, what it may spend per UTC day and per billing period (charged + held, counted in the
    token's spend counters), which models it may use, and until when it works."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, default="API token")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise the token.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Limits; None (or an empty list) is no limit. Nanocredits, each > 0 when set.
    max_credits_per_run = models.BigIntegerField(null=True, blank=True)  # caps a run's hold, as the agent's does
    max_credits_per_day = models.BigIntegerField(null=True, blank=True)  # charged + held per UTC day
    max_credits_per_month = models.BigIntegerField(null=True, blank=True)  # charged + held per billing period
    allowed_models = ArrayField(models.CharField(max_length=64), default=list, blank=True)  # empty: every model
    expires_at = models.DateTimeField(null=True, blank=True)  # from then on the token is refused (401)
    # The limits an owner or admin last set on this token, as usage.tokens.TokenLimits.as_json writes
    # them: the token's member may lower each of them but never raise it past this. None: no admin
    # set any, so the member's own limits are theirs to change.
    admin_limits = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(max_credits_per_run__isnull=True) | Q(max_credits_per_run__gt=0))
                & (Q(max_credits_per_day__isnull=True) | Q(max_credits_per_day__gt=0))
                & (Q(max_credits_per_month__isnull=True) | Q(max_credits_per_month__gt=0)),
                name="token_limits_positive",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def has_limits(self) -> bool:
        return bool(self.max_credits_per_run or self.max_credits_per_day or self.max_credits_per_month
                    or self.allowed_models or self.expires_at)


class RunQuerySet(models.QuerySet):
    def for_public_id(self, *, workspace, public_id: str):
        """The run a client's id names, found through RunKey so PostgreSQL reads one partition
        (the key's run_created_at prunes the others at execution time)."""
        key = RunKey.objects.filter(workspace=workspace, public_id=public_id).order_by()
        return self.filter(workspace=workspace, id=models.Subquery(key.values("run_id")[:1]),
                           created_at=models.Subquery(key.values("run_created_at")[:1]))


class Run(models.Model):
    """On PostgreSQL the table is partitioned by month of created_at (usage/partitions.py); its
    primary key there is (id, created_at). A client's run id is kept unique by RunKey."""

    RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED = "running", "succeeded", "failed", "cancelled", "expired"
    STATUSES = [(s, s.title()) for s in (RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)]
    FINAL_STATUSES = (SUCCEEDED, FAILED, CANCELLED)

    # Indexes cost bytes and time on every run, twice (the completion's update changes indexed
    # columns, so it is not a HOT update; docs/scale.md, docs/performance.md): workspace_id leads
    # run_ws_recent already, and the rare delete check of a workflow, agent, member or model may scan.
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, db_index=False, related_name="runs")
    # The client's idempotency key (or a generated one); unique within the workspace through RunKey.
    public_id = models.CharField(max_length=100)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, db_index=False, related_name="runs")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, db_index=False, related_name="runs")
    member = models.ForeignKey(Membership, on_delete=models.PROTECT, db_index=False, related_name="runs")
    # The developer token that authorized the run (None for runs started without one: the demo seed,
    # older runs). The run counts in its token's day and period counters, fixed at authorization.
    # No foreign key constraint on the partitioned table: tokens are revoked, never deleted.
    token = models.ForeignKey(DeveloperToken, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False, related_name="+")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, db_index=False, related_name="+")
    status = models.CharField(max_length=16, choices=STATUSES, default=RUNNING)
    reserved = models.BigIntegerField(default=0)  # the hold, nanocredits
    credits = models.BigIntegerField(default=0)  # charged, nanocredits; set once by complete
    over_reservation = models.BooleanField(default=False)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    estimated_input_tokens = models.BigIntegerField(null=True, blank=True)
    # As the client sent them at authorization, so an extension recomputes max_output_tokens alike.
    estimated_cached_input_tokens = models.BigIntegerField(null=True, blank=True)
    requested_max_output_tokens = models.BigIntegerField(null=True, blank=True)
    max_output_tokens = models.BigIntegerField(null=True, blank=True)  # what the hold pays for (recomputed on extend)
    # Cost tags (issue 29): at most 10 pairs of short strings, validated by the API
    # (usage.api.serializers.TagsField); {} when none.
    tags = models.JSONField(default=dict, db_default={}, blank=True)
    # Windows the run counts in, fixed at authorization: the UTC day and the billing period.
    day = models.DateField()
    period_start = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)  # when the hold was released
    completed_at = models.DateTimeField(null=True, blank=True)  # set once, with the charge
    authorize_hash = models.CharField(max_length=64)  # the authorize body, for idempotent replays
    complete_hash = models.CharField(max_length=64, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(reserved__gte=0) & Q(credits__gte=0), name="run_amounts_not_negative"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="run_ws_recent"),
            # "This period" lists and sums the runs authorized in the workspace's billing period
            # (Run.period_start), newest first: without it, a seq scan over every partition.
            models.Index(fields=["workspace", "period_start", "-created_at", "-id"], name="run_ws_period_recent"),
            models.Index(fields=["status", "expires_at"], name="run_open_expiry", condition=Q(status="running")),
            # The usage CSV selects finished runs of a workspace by the day they were charged.
            models.Index(fields=["workspace", "completed_at"], name="run_ws_completed",
                         condition=Q(completed_at__isnull=False)),
        ]

    def __str__(self):
        return self.public_id

    @property
    def is_open(self) -> bool:
        return self.released_at is None


class RunKey(models.Model):
    """A client's run id, unique per workspace across every month partition.

    PostgreSQL puts the partition key into every unique constraint of a partitioned table, so
    (workspace, public_id) cannot be unique on the runs table itself. This plain table holds it,
    written in the run's transaction: a replay or a racing twin fails on this row whatever month
    the first run landed in. It outlives retention (about 80 bytes a run), so an id is never
    charged twice, even years later."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, db_index=False, related_name="+")  # leads the unique key
    public_id = models.CharField(max_length=100)
    run_id = models.BigIntegerField()  # the run's id; with run_created_at it finds one partition
    run_created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "public_id"], name="run_public_id_per_workspace")]


class RunExtension(models.Model):
    """One extension of a run's hold (POST /v1/runs/<id>/extend), by the client's extension key.

    (workspace, run, key) is unique in the database: a replay, or a racing twin, can never add to
    the hold twice. The row keeps the request's hash, to tell a replay from a conflicting reuse of
    the key, and the answer it was given, which a replay repeats. Written in the same statement as
    the hold grows (usage_run_extend, usage/sql/runs.sql); a refused extension writes none."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    run_public_id = models.CharField(max_length=100)  # the run's client id (RunKey), unique in the workspace
    key = models.CharField(max_length=100)  # the client's extension key
    request_hash = models.CharField(max_length=64)
    requested = models.BigIntegerField()  # nanocredits asked for
    added = models.BigIntegerField()  # nanocredits the hold grew by (at most requested)
    reserved = models.BigIntegerField()  # the run's hold after this extension
    max_output_tokens = models.BigIntegerField(null=True, blank=True)  # recomputed for that hold
    expires_at = models.DateTimeField()  # the run's new expiry
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "run_public_id", "key"], name="run_extension_key_once"),
            models.CheckConstraint(condition=Q(added__gte=0) & Q(added__lte=models.F("requested")),
                                   name="run_extension_adds_at_most_requested"),
        ]


class RunNode(models.Model):
    """Partitioned on PostgreSQL by the month of its run's created_at (copied into run_created_at)."""

    # node_position_per_run (run_id first) serves lookups by run; no separate index.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="nodes")
    run_created_at = models.DateTimeField()  # = run.created_at: the partition key, for pruning
    position = models.IntegerField()
    name = models.CharField(max_length=200)
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, db_index=False, related_name="+")
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    input_nanos_per_token = models.BigIntegerField()  # the rate used
    output_nanos_per_token = models.BigIntegerField()
    # Token classes (issue 28): cached_input_tokens + cache_write_tokens <= input_tokens and
    # reasoning_tokens <= output_tokens (subsets, never extra tokens). 0 on nodes that sent none.
    cached_input_tokens = models.BigIntegerField(default=0, db_default=0)
    cache_write_tokens = models.BigIntegerField(default=0, db_default=0)
    reasoning_tokens = models.BigIntegerField(default=0, db_default=0)
    # The class rates used, after the fallback to the parent's rate; NULL on nodes charged before
    # token classes existed (they had none).
    cached_input_nanos_per_token = models.BigIntegerField(null=True, blank=True)
    cache_write_nanos_per_token = models.BigIntegerField(null=True, blank=True)
    reasoning_nanos_per_token = models.BigIntegerField(null=True, blank=True)
    token_credits = models.BigIntegerField()
    tool_credits = models.BigIntegerField(default=0)
    credits = models.BigIntegerField()  # token_credits + tool_credits
    # [{"name": "web_search", "calls": 3, "nanos_per_call": 10000000, "credits": 30000000}]
    tools = models.JSONField(default=list, blank=True)

    @property
    def cache_saving(self) -> int:
        """Nanocredits prompt caching saved on this node: its cached and written tokens at the plain
        input rate, minus what they were charged (negative when cache writes cost more than reads saved)."""
        plain = self.input_nanos_per_token
        cached = plain if self.cached_input_nanos_per_token is None else self.cached_input_nanos_per_token
        write = plain if self.cache_write_nanos_per_token is None else self.cache_write_nanos_per_token
        return self.cached_input_tokens * (plain - cached) + self.cache_write_tokens * (plain - write)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position", "run_created_at"],
                                               name="node_position_per_run")]


class DailyUsage(models.Model):
    """Charged credits per workspace, UTC day, agent, model and member, updated in the charge's
    transaction so the dashboard reads a few hundred rows however many runs there are."""

    # No single-column indexes: every read is a workspace's days (rollup_ws_day) and the charge's
    # upsert finds its row by one_rollup_row_per_period; a delete of an agent, model or member scans.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, db_index=False, related_name="+")
    day = models.DateField()
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, db_index=False, related_name="+")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, db_index=False, related_name="+")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, db_index=False, related_name="+")
    credits = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    # Token classes (issue 28), subsets of input_tokens and output_tokens as on RunNode.
    cached_input_tokens = models.BigIntegerField(default=0, db_default=0)
    cache_write_tokens = models.BigIntegerField(default=0, db_default=0)
    reasoning_tokens = models.BigIntegerField(default=0, db_default=0)
    # Nanocredits prompt caching saved (RunNode.cache_saving summed); may be negative.
    cache_saving = models.BigIntegerField(default=0, db_default=0)
    runs = models.IntegerField(default=0)  # a run counts once, in the row of its authorized model
    # The billing period the runs were authorized in (Run.period_start), so "this period" tables
    # equal the period counters; null only on rows written before the column existed.
    period_start = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "agent", "model", "member", "period_start"],
                                    name="one_rollup_row_per_period")
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="rollup_ws_day")]


class DroppedRunMonth(models.Model):
    """A month whose run and node detail retention removed. Its rollups, ledger entries and
    invoices stay; pages, the API and the CSV say that detail before kept_from is gone."""

    month = models.DateField(unique=True)  # the first day of the month, UTC
    runs = models.BigIntegerField()  # how many runs the month held when it was dropped
    credits = models.BigIntegerField()  # their charged nanocredits (the rollups keep the same total)
    dropped_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-month"]
