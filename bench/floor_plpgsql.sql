-- A measurement sketch for the `floor` bench (bench/floor.py), installed in the bench database only.
-- NOT an implementation of the money rules and never called by the project: it makes the statements
-- of an admitted first authorize and a first completion (the same reads, inserts, updates and
-- upserts as usage.services) in one call each, to measure where one PL/pgSQL call per phase would
-- land. It leaves out everything else those services do: replays and conflicting ids, the answers
-- and alerts of a refusal, the Community Edition, auto-recharge (billing.recharge_trigger), tool
-- charges, the RUN_MAX_CREDITS check, the rollup row of a run whose model has no node, and the
-- budget alerts scheduled after a completion.
CREATE OR REPLACE FUNCTION floor_sketch_authorize(p_ws bigint, p_member bigint, p_workflow text, p_agent text,
    p_model text, p_public_id text, p_est bigint, p_max_out bigint, p_hash text, p_now timestamptz, p_ttl int)
RETURNS TABLE (o_public_id text, o_reserved bigint, o_max_out bigint, o_expires timestamptz, o_code text)
LANGUAGE plpgsql AS $$
DECLARE
  w billing_wallet%ROWTYPE;
  v_agent usage_agent%ROWTYPE;
  v_workflow bigint; v_rin bigint; v_rout bigint;
  v_period timestamptz; v_conc int; v_budget bigint; v_hard boolean; v_member_budget bigint;
  u_ws bigint := 0; u_ad bigint := 0; u_ap bigint := 0; u_mp bigint := 0;
  v_day date := (p_now AT TIME ZONE 'UTC')::date;
  v_day_start timestamptz := date_trunc('day', p_now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  v_avail bigint; v_remaining bigint; v_code text; v_res bigint; v_run bigint; v_maxout bigint;
BEGIN
  SELECT * INTO v_agent FROM usage_agent WHERE workspace_id = p_ws AND name = p_agent;
  SELECT id INTO v_workflow FROM usage_workflow WHERE workspace_id = p_ws AND name = p_workflow;
  SELECT input_nanos_per_token, output_nanos_per_token INTO v_rin, v_rout FROM billing_modelrate
   WHERE model_id = p_model AND effective_from <= p_now ORDER BY effective_from DESC LIMIT 1;
  SELECT * INTO w FROM billing_wallet WHERE workspace_id = p_ws FOR UPDATE;
  SELECT ws.period_start, coalesce(ws.custom_concurrent_runs, pl.concurrent_runs), b.monthly_limit, b.hard_limit_enabled,
         (SELECT m.monthly_budget FROM billing_membership m WHERE m.id = p_member)
    INTO v_period, v_conc, v_budget, v_hard, v_member_budget
    FROM billing_workspace ws JOIN billing_plan pl ON pl.id = ws.plan_id
    LEFT JOIN budgets_workspacebudget b ON b.workspace_id = ws.id WHERE ws.id = p_ws;
  SELECT * INTO v_agent FROM usage_agent WHERE id = v_agent.id;
  IF w.running_runs >= v_conc THEN RETURN QUERY SELECT NULL::text, 0::bigint, 0::bigint, NULL::timestamptz, 'concurrency_limit'; RETURN; END IF;
  v_avail := w.monthly + w.purchased - w.reserved;
  SELECT coalesce(sum(charged + reserved) FILTER (WHERE scope = 'workspace' AND span = 'period' AND span_start = v_period), 0),
         coalesce(sum(charged + reserved) FILTER (WHERE scope = 'agent' AND span = 'day' AND span_start = v_day_start), 0),
         coalesce(sum(charged + reserved) FILTER (WHERE scope = 'agent' AND span = 'period' AND span_start = v_period), 0),
         coalesce(sum(charged + reserved) FILTER (WHERE scope = 'member' AND span = 'period' AND span_start = v_period), 0)
    INTO u_ws, u_ad, u_ap, u_mp
    FROM budgets_spendcounter WHERE workspace_id = p_ws AND scope_id IN (p_ws, v_agent.id, p_member)
     AND span_start IN (v_period, v_day_start);
  v_code := 'insufficient_credits'; v_remaining := v_avail;
  IF v_budget IS NOT NULL AND v_hard AND v_budget - u_ws < v_remaining THEN v_code := 'budget_exhausted'; v_remaining := v_budget - u_ws; END IF;
  IF v_member_budget IS NOT NULL AND v_member_budget - u_mp < v_remaining THEN v_code := 'member_budget_exceeded'; v_remaining := v_member_budget - u_mp; END IF;
  IF v_agent.max_per_month - u_ap < v_remaining THEN v_code := 'agent_monthly_budget_exceeded'; v_remaining := v_agent.max_per_month - u_ap; END IF;
  IF v_agent.max_per_day - u_ad < v_remaining THEN v_code := 'agent_daily_budget_exceeded'; v_remaining := v_agent.max_per_day - u_ad; END IF;
  IF v_remaining <= 0 THEN RETURN QUERY SELECT NULL::text, v_remaining, 0::bigint, NULL::timestamptz, v_code; RETURN; END IF;
  v_res := least(v_agent.max_per_run, v_remaining);
  v_maxout := CASE WHEN v_rout = 0 THEN p_max_out ELSE least(p_max_out, greatest(v_res - coalesce(p_est, 0) * v_rin, 0) / v_rout) END;
  INSERT INTO usage_run (public_id, status, reserved, credits, over_reservation, input_tokens, output_tokens,
      estimated_input_tokens, max_output_tokens, day, period_start, created_at, expires_at, authorize_hash, complete_hash,
      agent_id, member_id, model_id, workspace_id, workflow_id)
    VALUES (p_public_id, 'running', v_res, 0, false, 0, 0, p_est, v_maxout, v_day, v_period, p_now,
      p_now + make_interval(secs => p_ttl), p_hash, '', v_agent.id, p_member, p_model, p_ws, v_workflow) RETURNING id INTO v_run;
  INSERT INTO usage_runkey (public_id, run_id, run_created_at, workspace_id) VALUES (p_public_id, v_run, p_now, p_ws);
  UPDATE billing_wallet SET reserved = reserved + v_res, running_runs = running_runs + 1, updated_at = p_now WHERE workspace_id = p_ws;
  INSERT INTO budgets_spendcounter (scope, scope_id, span, span_start, charged, reserved, workspace_id) VALUES
    ('workspace', p_ws, 'period', v_period, 0, v_res, p_ws), ('agent', v_agent.id, 'day', v_day_start, 0, v_res, p_ws),
    ('agent', v_agent.id, 'period', v_period, 0, v_res, p_ws), ('member', p_member, 'period', v_period, 0, v_res, p_ws)
    ON CONFLICT (workspace_id, scope, scope_id, span, span_start) DO UPDATE SET
      charged = budgets_spendcounter.charged + EXCLUDED.charged, reserved = budgets_spendcounter.reserved + EXCLUDED.reserved;
  RETURN QUERY SELECT p_public_id, v_res, v_maxout, p_now + make_interval(secs => p_ttl), NULL::text;
END $$;

CREATE OR REPLACE FUNCTION floor_sketch_complete(p_ws bigint, p_public_id text, p_status text, p_names text[], p_models text[],
    p_in bigint[], p_out bigint[], p_hash text, p_now timestamptz)
RETURNS TABLE (o_credits bigint, o_won boolean, o_workflow text, o_agent text, o_model text, o_email text,
               o_reserved bigint, o_created timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  r usage_run%ROWTYPE; w billing_wallet%ROWTYPE; v_cost bigint := 0; v_open int; v_done int;
  v_from_monthly bigint; v_in bigint; v_out bigint; v_day_start timestamptz; v_rins bigint[]; v_routs bigint[]; v_credits bigint[];
BEGIN
  SELECT run.* INTO r FROM usage_runkey k JOIN usage_run run ON run.id = k.run_id AND run.created_at = k.run_created_at
   WHERE k.workspace_id = p_ws AND k.public_id = p_public_id;
  SELECT array_agg(rt.input_nanos_per_token ORDER BY n.ord), array_agg(rt.output_nanos_per_token ORDER BY n.ord),
         array_agg(n.i * rt.input_nanos_per_token + n.o * rt.output_nanos_per_token ORDER BY n.ord),
         sum(n.i * rt.input_nanos_per_token + n.o * rt.output_nanos_per_token), sum(n.i), sum(n.o)
    INTO v_rins, v_routs, v_credits, v_cost, v_in, v_out
    FROM unnest(p_models, p_in, p_out) WITH ORDINALITY AS n(model, i, o, ord)
    CROSS JOIN LATERAL (SELECT input_nanos_per_token, output_nanos_per_token FROM billing_modelrate
                         WHERE model_id = n.model AND effective_from <= r.created_at ORDER BY effective_from DESC LIMIT 1) rt;
  SELECT * INTO w FROM billing_wallet WHERE workspace_id = p_ws FOR UPDATE;
  UPDATE usage_run SET released_at = p_now, status = p_status, credits = v_cost, completed_at = p_now, complete_hash = p_hash,
      over_reservation = v_cost > r.reserved, input_tokens = v_in, output_tokens = v_out
   WHERE id = r.id AND created_at = r.created_at AND completed_at IS NULL AND released_at IS NULL;
  GET DIAGNOSTICS v_open = ROW_COUNT;
  IF v_open = 0 THEN RETURN QUERY SELECT v_cost, false, ''::text, ''::text, ''::text, ''::text, r.reserved, r.created_at; RETURN; END IF;
  INSERT INTO usage_runnode (position, name, input_tokens, output_tokens, input_nanos_per_token, output_nanos_per_token,
      token_credits, tool_credits, credits, tools, model_id, run_id, run_created_at)
    SELECT ord - 1, name, i, o, rin, rout, c, 0, c, '[]'::jsonb, model, r.id, r.created_at
      FROM unnest(p_names, p_models, p_in, p_out, v_rins, v_routs, v_credits) WITH ORDINALITY AS n(name, model, i, o, rin, rout, c, ord);
  v_from_monthly := least(v_cost, greatest(w.monthly, 0));
  INSERT INTO billing_ledgerentry (kind, bucket, amount, bucket_balance_after, balance_after, reason, idempotency_key,
      created_at, run_id, workspace_id)
    SELECT 'charge', b, a, ba, w.monthly + w.purchased - v_cost, 'Run ' || p_public_id, 'run:' || r.id || ':charge:' || b, p_now, r.id, p_ws
      FROM (VALUES ('monthly', -v_from_monthly, w.monthly - v_from_monthly),
                   ('purchased', -(v_cost - v_from_monthly), w.purchased - (v_cost - v_from_monthly))) AS e(b, a, ba)
     WHERE a <> 0;
  UPDATE billing_wallet SET monthly = monthly - v_from_monthly, purchased = purchased - (v_cost - v_from_monthly),
      reserved = reserved - r.reserved, running_runs = running_runs - 1, updated_at = p_now WHERE workspace_id = p_ws;
  v_day_start := r.day::timestamp AT TIME ZONE 'UTC';
  INSERT INTO budgets_spendcounter (scope, scope_id, span, span_start, charged, reserved, workspace_id) VALUES
    ('workspace', p_ws, 'period', r.period_start, v_cost, -r.reserved, p_ws), ('agent', r.agent_id, 'day', v_day_start, v_cost, -r.reserved, p_ws),
    ('agent', r.agent_id, 'period', r.period_start, v_cost, -r.reserved, p_ws), ('member', r.member_id, 'period', r.period_start, v_cost, -r.reserved, p_ws)
    ON CONFLICT (workspace_id, scope, scope_id, span, span_start) DO UPDATE SET
      charged = budgets_spendcounter.charged + EXCLUDED.charged, reserved = budgets_spendcounter.reserved + EXCLUDED.reserved;
  INSERT INTO usage_dailyusage (day, credits, input_tokens, output_tokens, runs, agent_id, member_id, model_id, workspace_id, period_start)
    SELECT (p_now AT TIME ZONE 'UTC')::date, sum(c), sum(i), sum(o),
           CASE WHEN model = r.model_id THEN 1 ELSE 0 END, r.agent_id, r.member_id, model, p_ws, r.period_start
      FROM unnest(p_models, p_in, p_out, v_credits) AS n(model, i, o, c) GROUP BY model
    ON CONFLICT (workspace_id, day, agent_id, model_id, member_id, period_start) DO UPDATE SET
      credits = usage_dailyusage.credits + EXCLUDED.credits, input_tokens = usage_dailyusage.input_tokens + EXCLUDED.input_tokens,
      output_tokens = usage_dailyusage.output_tokens + EXCLUDED.output_tokens, runs = usage_dailyusage.runs + EXCLUDED.runs;
  RETURN QUERY SELECT v_cost, true, (SELECT name FROM usage_workflow WHERE id = r.workflow_id)::text,
      (SELECT name FROM usage_agent WHERE id = r.agent_id)::text, r.model_id::text,
      (SELECT u.email FROM billing_membership m JOIN billing_user u ON u.id = m.user_id WHERE m.id = r.member_id)::text,
      r.reserved, r.created_at;
END $$;
