-- The run lifecycle's locked decisions, one statement each (issue 26; docs/performance.md, "One call
-- per phase"): usage.services validates the request, calls one of these functions, and turns what it
-- returns into the answer (the API's JSON, a refusal's message, alerts and auto-recharge after commit).
--
-- Each function locks the workspace's wallet row (SELECT ... FOR UPDATE) before it reads any input of
-- the decision, and makes every write of its phase in the same statement: every writer of a wallet
-- takes that lock first, so a check made under it cannot go stale, and the lock is held for one
-- statement instead of a round trip per write. Called outside a transaction the statement is its own
-- transaction (the API's case); inside one, it joins it.
--
-- The rules they call live with their data: budgets/sql/limits.sql (the reservation, the counters),
-- billing/sql/wallet.sql (the hold, the charge and its ledger entries, auto-recharge's trigger).
--
-- Installed by usage/migrations/0008_run_functions.py, and again by each later migration that
-- changes it: the file is the one source, and a change to it comes with a new migration that runs it
-- again (tests/usage/test_run_functions.py fails until then).


-- The run a client's id names, for a completion (or a replayed authorize): the run row, the names its
-- answer shows, and the rates in force when it was authorized for p_models and p_tools (what the
-- caller prices the nodes with: a class without a rate of its own is NULL here, priced at its
-- parent's by billing.pricing). No row when there is no such run. Found through usage_runkey: the
-- key's run_created_at names the run's month partition. A read: it locks nothing. A function rather
-- than a statement because PL/pgSQL keeps its statements' plans for the session, and planning this
-- lookup over the month partitions cost several times its execution.
CREATE OR REPLACE FUNCTION usage_run_for_completion(p_workspace bigint, p_public_id text, p_models text[],
    p_tools text[])
RETURNS TABLE (run usage_run, workflow_name text, agent_name text, user_id bigint, email text, model_rates json,
               tool_rates json)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_run bigint;
  v_created timestamptz;
BEGIN
  SELECT k.run_id, k.run_created_at INTO v_run, v_created
    FROM usage_runkey k WHERE k.workspace_id = p_workspace AND k.public_id = p_public_id;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT r, f.name::text, a.name::text, m.user_id, u.email::text,
         (SELECT json_agg(json_build_array(x.model_id, x.input_nanos_per_token, x.output_nanos_per_token,
                                           x.cached_input_nanos_per_token, x.cache_write_nanos_per_token,
                                           x.reasoning_nanos_per_token))
            FROM (SELECT DISTINCT ON (mr.model_id) mr.*
                    FROM billing_modelrate mr
                   WHERE mr.model_id = ANY(p_models) AND mr.effective_from <= v_created
                   ORDER BY mr.model_id, mr.effective_from DESC) x),
         (SELECT json_agg(json_build_array(t.tool, t.nanos_per_call))
            FROM (SELECT DISTINCT ON (tr.tool) tr.tool, tr.nanos_per_call
                    FROM billing_toolrate tr
                   WHERE tr.tool = ANY(p_tools) AND tr.effective_from <= v_created
                   ORDER BY tr.tool, tr.effective_from DESC) t)
    FROM usage_run r
    JOIN usage_workflow f ON f.id = r.workflow_id
    JOIN usage_agent a ON a.id = r.agent_id
    JOIN billing_membership m ON m.id = r.member_id
    JOIN billing_user u ON u.id = m.user_id
   WHERE r.id = v_run AND r.created_at = v_created AND r.workspace_id = p_workspace;
END $$;


-- The signature before issue 29 (no token, no reserve, no tags): dropped, so a call can only reach
-- the function below.
DROP FUNCTION IF EXISTS usage_run_authorize(bigint, bigint, text, text, text, text, bigint, bigint, bigint, text,
    timestamptz, date, int, boolean);


-- What a hold of p_amount can pay for at the output rate after the estimated input (of which the
-- cached part at the cached input rate); the client's own cap when lower, and that cap alone when
-- output is free. Numeric: no overflow. Authorize and extend both answer it.
CREATE OR REPLACE FUNCTION usage_run_max_output(p_amount bigint, p_estimated_input bigint,
    p_estimated_cached_input bigint, p_cap bigint, p_input_rate bigint, p_output_rate bigint, p_cached_rate bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_output_rate = 0 THEN p_cap
              ELSE least(div(greatest(p_amount::numeric
                                      - (coalesce(p_estimated_input, 0) - coalesce(p_estimated_cached_input, 0))::numeric
                                        * p_input_rate
                                      - coalesce(p_estimated_cached_input, 0)::numeric * p_cached_rate, 0),
                             p_output_rate),
                         p_cap)::bigint  -- least() ignores a NULL cap
         END
$$;


-- Authorize a run: reserve credits, or refuse with the code of the limit that binds. Returns one row;
-- `outcome` says which of these it is:
--   'authorized'     the run was created (run_id, run_created_at, reserved, max_output_tokens,
--                    period_start, workflow_id, agent_id; recharge_key: an auto-recharge to enqueue)
--   'replay'         p_public_id is taken in this workspace: run_id and run_created_at name the first
--                    run (its answer is repeated when the body is the same), nothing was written
--   a refusal code   budgets_run_reservation's code, with remaining, or running and allowed; nothing
--                    was written
--   'unknown_model'  no rate is in force for p_model; nothing was locked or written
--   'new_name'       the agent or the workflow does not exist yet; the caller creates them (with the
--                    model's defaults) and calls again
-- p_token: the developer token that authorizes the run (NULL: none); its limits are among the
-- limits, and the run counts in its counters. p_reserve: the client's `reserve` (NULL: as much as the
-- limits allow). p_tags: the run's cost tags, validated by the caller.
-- p_community: the Community Edition reserves nothing, refuses nothing and prices at zero.
CREATE OR REPLACE FUNCTION usage_run_authorize(p_workspace bigint, p_member bigint, p_token bigint, p_workflow text,
    p_agent text, p_model text, p_public_id text, p_estimated_input bigint, p_estimated_cached_input bigint,
    p_max_output bigint, p_reserve bigint, p_tags jsonb, p_hash text, p_now timestamptz, p_day date,
    p_ttl_seconds int, p_community boolean)
RETURNS TABLE (outcome text, remaining bigint, running int, allowed int, run_id bigint, run_created_at timestamptz,
               reserved bigint, max_output_tokens bigint, period_start timestamptz, workflow_id bigint,
               agent_id bigint, recharge_key text)
LANGUAGE plpgsql AS $$
DECLARE
  v_input_rate bigint;
  v_output_rate bigint;
  v_cached_rate bigint;
  v_agent bigint;
  v_workflow bigint;
  w billing_wallet%ROWTYPE;
  d record;
  v_run bigint;
  v_created timestamptz;
  v_max_output bigint;
  v_key text;
BEGIN
  -- The model's rate in force (a class without a rate of its own is priced at its parent's).
  SELECT r.input_nanos_per_token, r.output_nanos_per_token,
         coalesce(r.cached_input_nanos_per_token, r.input_nanos_per_token)
    INTO v_input_rate, v_output_rate, v_cached_rate
    FROM billing_modelrate r
   WHERE r.model_id = p_model AND r.effective_from <= p_now
   ORDER BY r.effective_from DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unknown_model', NULL::bigint, NULL::int, NULL::int, NULL::bigint, NULL::timestamptz,
                        NULL::bigint, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  IF p_community THEN
    v_input_rate := 0; v_output_rate := 0; v_cached_rate := 0;
  END IF;
  SELECT a.id INTO v_agent FROM usage_agent a WHERE a.workspace_id = p_workspace AND a.name = p_agent;
  SELECT f.id INTO v_workflow FROM usage_workflow f WHERE f.workspace_id = p_workspace AND f.name = p_workflow;
  IF v_agent IS NULL OR v_workflow IS NULL THEN
    RETURN QUERY SELECT 'new_name', NULL::bigint, NULL::int, NULL::int, NULL::bigint, NULL::timestamptz,
                        NULL::bigint, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text;
    RETURN;
  END IF;

  SELECT * INTO w FROM billing_wallet WHERE workspace_id = p_workspace FOR UPDATE;
  -- The client's id, already used: a replay (or a racing twin that got the lock first, and
  -- committed: this statement sees it). The unique key on usage_runkey holds it even without this.
  SELECT k.run_id, k.run_created_at INTO v_run, v_created
    FROM usage_runkey k WHERE k.workspace_id = p_workspace AND k.public_id = p_public_id;
  IF FOUND THEN
    RETURN QUERY SELECT 'replay', NULL::bigint, NULL::int, NULL::int, v_run, v_created,
                        NULL::bigint, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::text;
    RETURN;
  END IF;

  SELECT * INTO d FROM budgets_run_reservation(w, p_member, v_agent, p_token, p_model, p_day, p_now, p_reserve,
                                               NULL, NULL, p_community);
  IF d.code IS NOT NULL THEN
    RETURN QUERY SELECT d.code, d.remaining, d.running, d.allowed, NULL::bigint, NULL::timestamptz,
                        NULL::bigint, NULL::bigint, d.period_start, v_workflow, v_agent, NULL::text;
    RETURN;
  END IF;

  v_max_output := usage_run_max_output(d.amount, p_estimated_input, p_estimated_cached_input, p_max_output,
                                       v_input_rate, v_output_rate, v_cached_rate);

  INSERT INTO usage_run (workspace_id, public_id, workflow_id, agent_id, member_id, token_id, model_id, status,
      reserved, credits, over_reservation, input_tokens, output_tokens, estimated_input_tokens,
      estimated_cached_input_tokens, requested_max_output_tokens, max_output_tokens, tags, day, period_start,
      created_at, expires_at, authorize_hash, complete_hash)
  VALUES (p_workspace, p_public_id, v_workflow, v_agent, p_member, p_token, p_model, 'running', d.amount, 0, false,
      0, 0, p_estimated_input, p_estimated_cached_input, p_max_output, v_max_output, coalesce(p_tags, '{}'), p_day,
      d.period_start, p_now, p_now + make_interval(secs => p_ttl_seconds), p_hash, '')
  RETURNING id INTO v_run;
  -- The exactly-once guard for the client's id (see usage.models.RunKey).
  INSERT INTO usage_runkey (workspace_id, public_id, run_id, run_created_at)
  VALUES (p_workspace, p_public_id, v_run, p_now);
  v_key := billing_hold_place(p_workspace, d.amount);
  PERFORM budgets_run_counters_add(p_workspace, v_agent, p_member, p_token, p_day, d.period_start, 0, d.amount);
  RETURN QUERY SELECT 'authorized', NULL::bigint, NULL::int, NULL::int, v_run, p_now, d.amount, v_max_output,
                      d.period_start, v_workflow, v_agent, v_key;
END $$;


-- Grow a running run's hold (POST /v1/runs/<id>/extend, issue 29): the same locked decision as
-- authorize, against every limit, in the run's own windows (its day and period, its member, agent and
-- token), the per-run maximums included. The hold grows by the smaller of p_credits and what the
-- limits leave. Returns one row; `outcome` says which of these it is:
--   'extended'         the hold grew by `added`; reserved, max_output_tokens and expires_at are the
--                      run's new figures (expires_at: p_now plus the reservation TTL); the extension
--                      key is stored with them (usage_runextension, unique per run and key)
--   'replay'           the key was used for this run before: request_hash and the figures of that
--                      answer; nothing was written
--   'not_found'        no run has that id in this workspace
--   'run_not_running'  the run was completed, or expired (swept, or past its expires_at); status says
--                      which; nothing was written
--   a refusal code     budgets_run_reservation's, with remaining; nothing was written
-- agent_id, member_id and token_id name the run's, for a refusal's message and alerts; recharge_key
-- an auto-recharge to enqueue, as authorize's.
CREATE OR REPLACE FUNCTION usage_run_extend(p_workspace bigint, p_public_id text, p_key text, p_credits bigint,
    p_hash text, p_now timestamptz, p_ttl_seconds int, p_community boolean)
RETURNS TABLE (outcome text, remaining bigint, request_hash text, status text, added bigint, reserved bigint,
               max_output_tokens bigint, expires_at timestamptz, agent_id bigint, member_id bigint, token_id bigint,
               recharge_key text)
LANGUAGE plpgsql AS $$
DECLARE
  w billing_wallet%ROWTYPE;
  x record;  -- (not %ROWTYPE: an older migration installs this file before the table exists)
  r usage_run%ROWTYPE;
  d record;
  v_run bigint;
  v_created timestamptz;
  v_input_rate bigint;
  v_output_rate bigint;
  v_cached_rate bigint;
  v_max_output bigint;
  v_expires timestamptz := p_now + make_interval(secs => p_ttl_seconds);
  v_key text;
BEGIN
  SELECT * INTO w FROM billing_wallet WHERE workspace_id = p_workspace FOR UPDATE;
  -- The key, already used for this run: a replay (or a racing twin that got the lock first). The
  -- unique key on usage_runextension holds it even without this.
  SELECT * INTO x FROM usage_runextension e
   WHERE e.workspace_id = p_workspace AND e.run_public_id = p_public_id AND e.key = p_key;
  IF FOUND THEN
    RETURN QUERY SELECT 'replay', NULL::bigint, x.request_hash::text, 'running'::text, x.added, x.reserved,
                        x.max_output_tokens, x.expires_at, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  SELECT k.run_id, k.run_created_at INTO v_run, v_created
    FROM usage_runkey k WHERE k.workspace_id = p_workspace AND k.public_id = p_public_id;
  IF FOUND THEN
    SELECT * INTO r FROM usage_run WHERE id = v_run AND created_at = v_created AND workspace_id = p_workspace;
  END IF;
  IF r.id IS NULL THEN
    RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::bigint,
                        NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text;
    RETURN;
  END IF;
  IF r.completed_at IS NOT NULL OR r.released_at IS NOT NULL OR r.expires_at <= p_now THEN
    RETURN QUERY SELECT 'run_not_running', NULL::bigint, NULL::text,
                        CASE WHEN r.completed_at IS NULL THEN 'expired' ELSE r.status END::text, NULL::bigint,
                        r.reserved, NULL::bigint, r.expires_at, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text;
    RETURN;
  END IF;

  SELECT * INTO d FROM budgets_run_reservation(w, r.member_id, r.agent_id, r.token_id, r.model_id, r.day, p_now,
                                               p_credits, r.reserved, r.period_start, p_community);
  IF d.code IS NOT NULL THEN
    RETURN QUERY SELECT d.code, d.remaining, NULL::text, r.status::text, NULL::bigint, r.reserved, NULL::bigint,
                        r.expires_at, r.agent_id, r.member_id, r.token_id, NULL::text;
    RETURN;
  END IF;

  -- max_output_tokens for the grown hold, at the rates the run was authorized with.
  SELECT mr.input_nanos_per_token, mr.output_nanos_per_token,
         coalesce(mr.cached_input_nanos_per_token, mr.input_nanos_per_token)
    INTO v_input_rate, v_output_rate, v_cached_rate
    FROM billing_modelrate mr
   WHERE mr.model_id = r.model_id AND mr.effective_from <= r.created_at
   ORDER BY mr.effective_from DESC LIMIT 1;
  IF p_community THEN
    v_input_rate := 0; v_output_rate := 0; v_cached_rate := 0;
  END IF;
  v_max_output := usage_run_max_output(r.reserved + d.amount, r.estimated_input_tokens,
                                       r.estimated_cached_input_tokens, r.requested_max_output_tokens,
                                       v_input_rate, v_output_rate, v_cached_rate);

  UPDATE usage_run SET reserved = usage_run.reserved + d.amount, max_output_tokens = v_max_output,
                       expires_at = v_expires
   WHERE id = v_run AND created_at = v_created;
  INSERT INTO usage_runextension (workspace_id, run_public_id, key, request_hash, requested, added, reserved,
      max_output_tokens, expires_at, created_at)
  VALUES (p_workspace, p_public_id, p_key, p_hash, p_credits, d.amount, r.reserved + d.amount, v_max_output,
      v_expires, p_now);
  v_key := billing_hold_grow(p_workspace, d.amount);
  PERFORM budgets_run_counters_add(p_workspace, r.agent_id, r.member_id, r.token_id, r.day, r.period_start, 0,
                                   d.amount);
  RETURN QUERY SELECT 'extended', NULL::bigint, NULL::text, 'running'::text, d.amount, r.reserved + d.amount,
                      v_max_output, v_expires, r.agent_id, r.member_id, r.token_id, v_key;
END $$;


-- Charge a finished run exactly once and release its hold. The caller priced the nodes (the rates in
-- force when the run was authorized; billing.pricing) and sends them as a JSON array of usage_runnode
-- rows (with each node's cache_saving for the rollup). Returns one row:
--   outcome 'charged': this call completed the run; released: its hold was still open (a run the
--     sweeper expired is charged, but its hold is not released twice); recharge_key as above;
--     alert_due: the workspace's budget alerts need a check (budgets_alert_due, p_alert_from the
--     lowest alert threshold in percent)
--   outcome 'replay': the run was completed before (by a replay or a racing twin); nothing written
-- The cost is always charged (the tokens were spent); above the reservation the run is flagged
-- over_reservation, and what would take the balance below -p_overdraft is written off
-- (billing_run_charge).
DROP FUNCTION IF EXISTS usage_run_complete;  -- its arguments or its answer changed: replaced whole
CREATE OR REPLACE FUNCTION usage_run_complete(p_workspace bigint, p_run bigint, p_run_created_at timestamptz,
    p_status text, p_cost bigint, p_input_tokens bigint, p_output_tokens bigint, p_nodes jsonb, p_hash text,
    p_now timestamptz, p_today date, p_overdraft bigint, p_alert_from int)
RETURNS TABLE (outcome text, released boolean, recharge_key text, alert_due boolean)
LANGUAGE plpgsql AS $$
DECLARE
  w billing_wallet%ROWTYPE;
  r usage_run%ROWTYPE;
  v_open boolean := true;
  v_key text;
BEGIN
  SELECT * INTO w FROM billing_wallet WHERE workspace_id = p_workspace FOR UPDATE;
  -- Conditional, under the lock: the first completion wins and a replay changes nothing. The run's
  -- created_at names its month partition.
  UPDATE usage_run
     SET status = p_status, credits = p_cost, completed_at = p_now, complete_hash = p_hash,
         over_reservation = p_cost > usage_run.reserved, input_tokens = p_input_tokens,
         output_tokens = p_output_tokens, released_at = p_now
   WHERE id = p_run AND created_at = p_run_created_at AND completed_at IS NULL AND released_at IS NULL
  RETURNING * INTO r;
  IF NOT FOUND THEN
    v_open := false;  -- expired by the sweeper meanwhile: charged, its hold already released
    UPDATE usage_run
       SET status = p_status, credits = p_cost, completed_at = p_now, complete_hash = p_hash,
           over_reservation = p_cost > usage_run.reserved, input_tokens = p_input_tokens,
           output_tokens = p_output_tokens
     WHERE id = p_run AND created_at = p_run_created_at AND completed_at IS NULL
    RETURNING * INTO r;
    IF NOT FOUND THEN
      RETURN QUERY SELECT 'replay', false, NULL::text, false;
      RETURN;
    END IF;
  END IF;

  INSERT INTO usage_runnode (run_id, run_created_at, position, name, model_id, input_tokens, output_tokens,
      cached_input_tokens, cache_write_tokens, reasoning_tokens, input_nanos_per_token, output_nanos_per_token,
      cached_input_nanos_per_token, cache_write_nanos_per_token, reasoning_nanos_per_token, token_credits,
      tool_credits, credits, tools)
  SELECT r.id, r.created_at, n.position, n.name, n.model_id, n.input_tokens, n.output_tokens,
         n.cached_input_tokens, n.cache_write_tokens, n.reasoning_tokens, n.input_nanos_per_token,
         n.output_nanos_per_token, n.cached_input_nanos_per_token, n.cache_write_nanos_per_token,
         n.reasoning_nanos_per_token, n.token_credits, n.tool_credits, n.credits, n.tools
    FROM jsonb_to_recordset(p_nodes) AS n(position int, name text, model_id text, input_tokens bigint,
         output_tokens bigint, cached_input_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint,
         input_nanos_per_token bigint, output_nanos_per_token bigint, cached_input_nanos_per_token bigint,
         cache_write_nanos_per_token bigint, reasoning_nanos_per_token bigint, token_credits bigint,
         tool_credits bigint, credits bigint, tools jsonb, cache_saving bigint)
   ORDER BY n.position;

  v_key := billing_run_charge(w, r.id, r.public_id, p_cost, CASE WHEN v_open THEN r.reserved END, p_now,
                             p_overdraft);
  PERFORM budgets_run_counters_add(p_workspace, r.agent_id, r.member_id, r.token_id, r.day, r.period_start, p_cost,
                                   CASE WHEN v_open THEN -r.reserved ELSE 0 END);

  -- The daily rollup (the dashboard's rows): the nodes' sums per model on the day of the charge; the
  -- run counts once, in the row of the model it was authorized for (created when no node used it).
  INSERT INTO usage_dailyusage (workspace_id, day, agent_id, model_id, member_id, period_start, credits, input_tokens,
      output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cache_saving, runs)
  SELECT p_workspace, p_today, r.agent_id, per_model.model_id, r.member_id, r.period_start, sum(per_model.credits),
         sum(per_model.input_tokens), sum(per_model.output_tokens), sum(per_model.cached_input_tokens),
         sum(per_model.cache_write_tokens), sum(per_model.reasoning_tokens), sum(per_model.cache_saving),
         sum(per_model.runs)
    FROM (SELECT n.model_id, n.credits, n.input_tokens, n.output_tokens, n.cached_input_tokens, n.cache_write_tokens,
                 n.reasoning_tokens, n.cache_saving, 0 AS runs
            FROM jsonb_to_recordset(p_nodes) AS n(model_id text, credits bigint, input_tokens bigint,
                 output_tokens bigint, cached_input_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint,
                 cache_saving bigint)
          UNION ALL
          SELECT r.model_id, 0, 0, 0, 0, 0, 0, 0, 1) AS per_model
   GROUP BY per_model.model_id
   ORDER BY per_model.model_id
  ON CONFLICT (workspace_id, day, agent_id, model_id, member_id, period_start) DO UPDATE
     SET credits = usage_dailyusage.credits + EXCLUDED.credits,
         input_tokens = usage_dailyusage.input_tokens + EXCLUDED.input_tokens,
         output_tokens = usage_dailyusage.output_tokens + EXCLUDED.output_tokens,
         cached_input_tokens = usage_dailyusage.cached_input_tokens + EXCLUDED.cached_input_tokens,
         cache_write_tokens = usage_dailyusage.cache_write_tokens + EXCLUDED.cache_write_tokens,
         reasoning_tokens = usage_dailyusage.reasoning_tokens + EXCLUDED.reasoning_tokens,
         cache_saving = usage_dailyusage.cache_saving + EXCLUDED.cache_saving,
         runs = usage_dailyusage.runs + EXCLUDED.runs;

  RETURN QUERY SELECT 'charged', v_open, v_key,
                      budgets_alert_due(p_workspace, r.agent_id, r.member_id, r.period_start,
                                        p_cost - CASE WHEN v_open THEN r.reserved ELSE 0 END, p_alert_from);
END $$;


-- Release the hold of a run not completed within its TTL (the sweeper). Returns released = false when
-- it was completed or released before; a late completion still charges, once.
CREATE OR REPLACE FUNCTION usage_run_expire(p_workspace bigint, p_run bigint, p_run_created_at timestamptz,
    p_now timestamptz)
RETURNS TABLE (released boolean, recharge_key text)
LANGUAGE plpgsql AS $$
DECLARE
  r usage_run%ROWTYPE;
  v_key text;
BEGIN
  PERFORM 1 FROM billing_wallet WHERE workspace_id = p_workspace FOR UPDATE;
  UPDATE usage_run SET status = 'expired', released_at = p_now
   WHERE id = p_run AND created_at = p_run_created_at AND released_at IS NULL AND completed_at IS NULL
  RETURNING * INTO r;
  IF NOT FOUND THEN
    RETURN QUERY SELECT false, NULL::text;
    RETURN;
  END IF;
  v_key := billing_hold_release(p_workspace, r.reserved);
  PERFORM budgets_run_counters_add(p_workspace, r.agent_id, r.member_id, r.token_id, r.day, r.period_start, 0,
                                   -r.reserved);
  RETURN QUERY SELECT true, v_key;
END $$;
