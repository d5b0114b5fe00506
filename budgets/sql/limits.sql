-- Enforcement inside PostgreSQL (issue 26; SPEC sections 2 to 4): the one rule that decides how much a
-- run may reserve or which limit refuses it, and the spend counters a run counts in.
--
-- Called by usage/sql/runs.sql with the workspace's wallet row locked, in the same statement, so every
-- input read here (the period, plan caps, budgets, agent limits, counters) is at least as new as the
-- lock (issue 9): in READ COMMITTED each statement of a PL/pgSQL function sees what committed before
-- it started. budgets/limits.py holds the refusal codes' messages; nothing else decides.
--
-- Installed by budgets/migrations/0003_limit_functions.py, and again by each later migration that
-- changes it: the file is the one source, and a change to it comes with a new migration that runs it
-- again (tests/usage/test_run_functions.py fails until then).


-- The signatures before issue 29 (no token, no requested amount, no extension): dropped, so a call
-- can only reach the functions below.
DROP FUNCTION IF EXISTS budgets_run_counters_add(bigint, bigint, bigint, date, timestamptz, bigint, bigint);
DROP FUNCTION IF EXISTS budgets_run_reservation(billing_wallet, bigint, bigint, date, boolean);


-- The windows a run counts in are fixed at its authorization: the workspace's billing period, the
-- agent's UTC day, the agent's period, the member's period, and (for a run authorized with a
-- developer token) the token's UTC day and the token's period. This adds to all of them, creating
-- those that do not exist yet; a change of nothing writes nothing. Call under the wallet lock.
--
-- The counters almost always exist (a workspace's first run of a period or an agent's or token's
-- first of a day creates them), so they are updated first and only the missing ones inserted: an
-- upsert (ON CONFLICT DO UPDATE) locks each row it finds before it updates it, one more WAL record
-- per row.
CREATE OR REPLACE FUNCTION budgets_run_counters_add(p_workspace bigint, p_agent bigint, p_member bigint,
    p_token bigint, p_day date, p_period_start timestamptz, p_charged bigint, p_reserved bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_updated int;
BEGIN
  IF p_charged = 0 AND p_reserved = 0 THEN
    RETURN;
  END IF;
  UPDATE budgets_spendcounter c
     SET charged = c.charged + p_charged, reserved = c.reserved + p_reserved
   WHERE c.workspace_id = p_workspace
     AND (c.scope, c.scope_id, c.span, c.span_start) IN (
           ('workspace', p_workspace, 'period', p_period_start),
           ('agent', p_agent, 'day', p_day::timestamp AT TIME ZONE 'UTC'),
           ('agent', p_agent, 'period', p_period_start),
           ('member', p_member, 'period', p_period_start),
           ('token', p_token, 'day', p_day::timestamp AT TIME ZONE 'UTC'),  -- no match for a NULL token
           ('token', p_token, 'period', p_period_start));
  GET DIAGNOSTICS v_updated = ROW_COUNT;
  IF v_updated = 4 + 2 * (p_token IS NOT NULL)::int THEN  -- every counter the run counts in exists
    RETURN;
  END IF;
  -- The missing ones. Under the wallet lock no other writer creates one meanwhile; if one did, ON
  -- CONFLICT would add to it (the UPDATE above did not).
  INSERT INTO budgets_spendcounter (workspace_id, scope, scope_id, span, span_start, charged, reserved)
  SELECT p_workspace, k.scope, k.scope_id, k.span, k.span_start, p_charged, p_reserved
    FROM (VALUES ('workspace', p_workspace, 'period', p_period_start),
                 ('agent', p_agent, 'day', p_day::timestamp AT TIME ZONE 'UTC'),
                 ('agent', p_agent, 'period', p_period_start),
                 ('member', p_member, 'period', p_period_start),
                 ('token', p_token, 'day', p_day::timestamp AT TIME ZONE 'UTC'),
                 ('token', p_token, 'period', p_period_start)) AS k(scope, scope_id, span, span_start)
   WHERE k.scope_id IS NOT NULL  -- a run without a token counts in no token counter
     AND NOT EXISTS (SELECT 1 FROM budgets_spendcounter c
                      WHERE c.workspace_id = p_workspace AND c.scope = k.scope AND c.scope_id = k.scope_id
                        AND c.span = k.span AND c.span_start = k.span_start)
  ON CONFLICT (workspace_id, scope, scope_id, span, span_start) DO UPDATE
     SET charged = budgets_spendcounter.charged + EXCLUDED.charged,
         reserved = budgets_spendcounter.reserved + EXCLUDED.reserved;
END $$;


-- What a run may reserve, or the limit that refuses it. p_wallet is the workspace's wallet row, locked
-- by the caller. Two uses:
--   a new run (p_held NULL): the member's run of agent p_agent on model p_model, with developer token
--     p_token (NULL: none); the windows are the workspace's period as read here and the UTC day p_day;
--   an extension of a running run (p_held: what the run holds now): the run's own windows, fixed at
--     its authorization (p_day and p_run_period), and its member, agent and token.
-- p_request is what the client asked for (authorize's `reserve`, extend's `credits`; NULL: as much as
-- the limits allow). Returns
--   code NULL and amount: the reservation (or, for an extension, what it adds): the smallest of
--     p_request and what every limit leaves, the per-run maximums of the agent and the token included;
--   code and remaining: the refusal, with what is left of the limit that binds (<= 0);
--   code 'concurrency_limit' with running and allowed (new runs only);
--   code 'token_revoked', 'token_expired' or 'model_not_allowed' (new runs only): the token may not
--     start this run at all;
-- and always the period_start of the windows (the run and its counters use it).
-- p_community (the Community Edition: no platform credits, no plan limits) reserves nothing and
-- refuses nothing but what a token forbids.
--
-- A new limit is one more row in the `limits` list below (its code, and what is left of it, NULL when
-- it does not apply), one more input read above it, and its message in budgets/limits.py.
CREATE OR REPLACE FUNCTION budgets_run_reservation(p_wallet billing_wallet, p_member bigint, p_agent bigint,
    p_token bigint, p_model text, p_day date, p_now timestamptz, p_request bigint, p_held bigint,
    p_run_period timestamptz, p_community boolean,
    OUT code text, OUT remaining bigint, OUT amount bigint, OUT period_start timestamptz,
    OUT running int, OUT allowed int)
LANGUAGE plpgsql AS $$
DECLARE
  v_workspace bigint := p_wallet.workspace_id;
  v_available bigint := p_wallet.monthly + p_wallet.purchased - p_wallet.reserved;
  v_day_start timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
  v_workspace_limit bigint;  -- the monthly budget when its hard limit is on, else NULL
  v_member_budget bigint;    -- NULL: no member budget, or the member was removed
  v_token_run bigint;        -- the token's limits (issue 29); NULL: none, or no token
  v_token_day bigint;
  v_token_month bigint;
  v_token_models text[];
  v_token_expires timestamptz;
  v_token_revoked timestamptz;
  a usage_agent%ROWTYPE;
  u_workspace_period bigint;
  u_agent_day bigint;
  u_agent_period bigint;
  u_member_period bigint;
  u_token_day bigint;
  u_token_period bigint;
BEGIN
  -- The limit inputs: the workspace's period and plan cap (an Enterprise value overrides the
  -- plan's, as billing.models.concurrent_runs_allowed says), its budget, the member's budget, the
  -- token's limits.
  SELECT ws.period_start, coalesce(ws.custom_concurrent_runs, pl.concurrent_runs),
         CASE WHEN b.hard_limit_enabled THEN b.monthly_limit END,
         (SELECT m.monthly_budget FROM billing_membership m WHERE m.id = p_member AND m.removed_at IS NULL),
         t.max_credits_per_run, t.max_credits_per_day, t.max_credits_per_month, t.allowed_models::text[],
         t.expires_at, t.revoked_at
    INTO period_start, allowed, v_workspace_limit, v_member_budget, v_token_run, v_token_day, v_token_month,
         v_token_models, v_token_expires, v_token_revoked
    FROM billing_workspace ws
    JOIN billing_plan pl ON pl.id = ws.plan_id
    LEFT JOIN budgets_workspacebudget b ON b.workspace_id = ws.id
    LEFT JOIN usage_developertoken t ON t.id = p_token
   WHERE ws.id = v_workspace;
  IF p_held IS NOT NULL THEN
    period_start := p_run_period;  -- an extension counts in the windows its run counts in
  END IF;
  SELECT * INTO a FROM usage_agent WHERE id = p_agent;
  running := p_wallet.running_runs;
  IF p_held IS NULL AND p_token IS NOT NULL THEN
    -- What the token forbids, whatever the credits (checked again here, under the lock, after the
    -- API's authentication: a revocation or an expiry that lands meanwhile still refuses the run).
    IF v_token_revoked IS NOT NULL THEN
      code := 'token_revoked';
      RETURN;
    END IF;
    IF v_token_expires IS NOT NULL AND v_token_expires <= p_now THEN
      code := 'token_expired';
      RETURN;
    END IF;
    IF cardinality(v_token_models) > 0 AND NOT p_model = ANY(v_token_models) THEN
      code := 'model_not_allowed';
      RETURN;
    END IF;
  END IF;
  IF p_community THEN
    amount := 0;
    RETURN;
  END IF;
  IF p_held IS NULL AND p_wallet.running_runs >= allowed THEN
    code := 'concurrency_limit';
    RETURN;
  END IF;
  IF v_available <= 0 THEN
    code := 'insufficient_credits';
    remaining := v_available;
    RETURN;
  END IF;

  -- charged + reserved of the counters the run counts in (0 for one not created yet).
  SELECT coalesce(sum(c.charged + c.reserved) FILTER (WHERE c.scope = 'workspace' AND c.scope_id = v_workspace
                                                        AND c.span = 'period' AND c.span_start = period_start), 0),
         coalesce(sum(c.charged + c.reserved) FILTER (WHERE c.scope = 'agent' AND c.scope_id = p_agent
                                                        AND c.span = 'day' AND c.span_start = v_day_start), 0),
         coalesce(sum(c.charged + c.reserved) FILTER (WHERE c.scope = 'agent' AND c.scope_id = p_agent
                                                        AND c.span = 'period' AND c.span_start = period_start), 0),
         coalesce(sum(c.charged + c.reserved) FILTER (WHERE c.scope = 'member' AND c.scope_id = p_member
                                                        AND c.span = 'period' AND c.span_start = period_start), 0),
         coalesce(sum(c.charged + c.reserved) FILTER (WHERE c.scope = 'token' AND c.scope_id = p_token
                                                        AND c.span = 'day' AND c.span_start = v_day_start), 0),
         coalesce(sum(c.charged + c.reserved) FILTER (WHERE c.scope = 'token' AND c.scope_id = p_token
                                                        AND c.span = 'period' AND c.span_start = period_start), 0)
    INTO u_workspace_period, u_agent_day, u_agent_period, u_member_period, u_token_day, u_token_period
    FROM budgets_spendcounter c
   WHERE c.workspace_id = v_workspace AND c.scope_id IN (v_workspace, p_agent, p_member, p_token)
     AND c.span_start IN (period_start, v_day_start);

  -- Every limit and what is left of it; the smallest binds, and the first listed wins a tie. The
  -- per-run maximums count what the run holds already (nothing for a new run): a hold never grows
  -- past them.
  SELECT limits.code, limits.remaining INTO code, remaining
    FROM (VALUES (1, 'insufficient_credits', v_available),
                 (2, 'budget_exhausted', v_workspace_limit - u_workspace_period),
                 (3, 'member_budget_exceeded', v_member_budget - u_member_period),
                 (4, 'agent_monthly_budget_exceeded', a.max_per_month - u_agent_period),
                 (5, 'agent_daily_budget_exceeded', a.max_per_day - u_agent_day),
                 (6, 'token_monthly_budget_exceeded', v_token_month - u_token_period),
                 (7, 'token_daily_budget_exceeded', v_token_day - u_token_day),
                 (8, 'agent_run_budget_exceeded', a.max_per_run - coalesce(p_held, 0)),
                 (9, 'token_run_budget_exceeded', v_token_run - coalesce(p_held, 0)))
         AS limits(priority, code, remaining)
   WHERE limits.remaining IS NOT NULL
   ORDER BY limits.remaining, limits.priority
   LIMIT 1;
  IF remaining > 0 THEN
    amount := least(remaining, p_request);  -- least() ignores a NULL request
    code := NULL;
  END IF;
END $$;


-- Whether a completion needs the workspace's budget alerts checked (budgets/alerts.py decides which
-- fire or resolve; this only spares the check where nothing can change). A run counts in three period
-- budgets: the workspace's monthly budget, its agent's and its member's. The check is due when any of
-- them is at or above p_from_percent of its limit (the lowest alert threshold) before or after the
-- completion changed its charged + reserved by p_change, or when the run's period is not the
-- workspace's current one. Below that threshold, before and after, no alert can fire; an alert left
-- open by a fall below it (a hold released) is resolved by the periodic sweep. Call after the
-- counters were added to, under the wallet lock.
CREATE OR REPLACE FUNCTION budgets_alert_due(p_workspace bigint, p_agent bigint, p_member bigint,
    p_period_start timestamptz, p_change bigint, p_from_percent int) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1
      FROM (VALUES ('period', 0::bigint,  -- the period rolled while the run was open: always check
                    (SELECT CASE WHEN ws.period_start <> p_period_start THEN 0::bigint END
                       FROM billing_workspace ws WHERE ws.id = p_workspace)),
                   ('workspace', p_workspace,
                    (SELECT b.monthly_limit FROM budgets_workspacebudget b WHERE b.workspace_id = p_workspace)),
                   ('agent', p_agent, (SELECT a.max_per_month FROM usage_agent a WHERE a.id = p_agent)),
                   ('member', p_member, (SELECT m.monthly_budget FROM billing_membership m WHERE m.id = p_member)))
           AS budget(scope, scope_id, limit_)
      LEFT JOIN budgets_spendcounter c
             ON c.workspace_id = p_workspace AND c.scope = budget.scope AND c.scope_id = budget.scope_id
            AND c.span = 'period' AND c.span_start = p_period_start
     WHERE budget.limit_ IS NOT NULL
       AND (budget.limit_ <= 0  -- a zero budget, or the rolled period
            OR greatest(coalesce(c.charged + c.reserved, 0), coalesce(c.charged + c.reserved, 0) - p_change)::numeric
               * 100 >= budget.limit_::numeric * p_from_percent));
END $$;
