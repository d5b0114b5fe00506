-- The wallet's rules that run inside PostgreSQL (issue 26; docs/performance.md, "One call per phase").
--
-- A run's authorization, completion and expiry are each ONE statement: a call of a PL/pgSQL function
-- of usage/sql/runs.sql, which locks the workspace's wallet row first and keeps it locked only for
-- that statement. These functions are the wallet's part of those calls, and the only implementation
-- of their rules: the hold of a run, the charge of a finished run (monthly bucket first, then
-- purchased) with its ledger entries, and auto-recharge's trigger.
--
-- Every function here expects the caller to hold the wallet row locked (SELECT ... FOR UPDATE, or
-- billing.ledger.wallet_lock in Python), in the caller's transaction.
--
-- Installed by billing/migrations/0014_wallet_functions.py, and again by each later migration that
-- changes it: the file is the one source, and a change to it comes with a new migration that runs it
-- again (tests/usage/test_run_functions.py fails until then).
-- operations/reconcile.py re-derives every figure written here from the ledger and the runs, in
-- Python, without calling these functions.


-- Auto-recharge's trigger (docs/auto-recharge.md). Called after every change of a wallet, under its
-- lock; returns the key of the attempt a crossing made, for the caller to enqueue after commit
-- (buying.tasks.auto_recharge_pay), or NULL.
--
-- - available >= threshold: re-armed (written only when it was disarmed).
-- - available < threshold and armed: one crossing. The wallet is disarmed and the crossing numbered;
--   the attempt's key auto-recharge:<workspace>:<crossing> is unique in the database, and at most one
--   attempt is in flight per workspace (a partial unique index): ON CONFLICT DO NOTHING never aborts
--   the caller's transaction. Past the ceiling of the period the attempt is recorded as skipped.
CREATE OR REPLACE FUNCTION billing_wallet_watch(p_workspace bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  w billing_wallet%ROWTYPE;
  s billing_autorecharge%ROWTYPE;
  v_available bigint;
  v_crossing int;
  v_period timestamptz;
  v_used int;
  v_status text;
  v_key text;
BEGIN
  SELECT * INTO w FROM billing_wallet WHERE workspace_id = p_workspace;
  IF w.auto_recharge_threshold IS NULL THEN
    RETURN NULL;  -- off, or paused
  END IF;
  v_available := w.monthly + w.purchased - w.reserved;
  IF v_available >= w.auto_recharge_threshold THEN
    IF NOT w.auto_recharge_armed THEN
      UPDATE billing_wallet SET auto_recharge_armed = true WHERE workspace_id = p_workspace;
    END IF;
    RETURN NULL;
  END IF;
  IF NOT w.auto_recharge_armed THEN
    RETURN NULL;  -- this crossing was seen already; the credits it buys re-arm the trigger
  END IF;

  v_crossing := w.auto_recharge_crossings + 1;
  UPDATE billing_wallet SET auto_recharge_armed = false, auto_recharge_crossings = v_crossing
   WHERE workspace_id = p_workspace;
  SELECT * INTO s FROM billing_autorecharge WHERE workspace_id = p_workspace;
  IF NOT FOUND OR NOT s.enabled OR s.paused_reason <> '' THEN
    RETURN NULL;  -- AutoRecharge.is_active is false
  END IF;
  IF EXISTS (SELECT 1 FROM billing_autorechargeattempt
              WHERE workspace_id = p_workspace AND status IN ('pending', 'retrying')) THEN
    RETURN NULL;  -- one in flight already: its credits re-arm the trigger
  END IF;
  SELECT period_start INTO v_period FROM billing_workspace WHERE id = p_workspace;
  -- The ceiling counts what this period bought or is buying (billing.recharge_trigger.COUNTED).
  SELECT count(*) INTO v_used FROM billing_autorechargeattempt
   WHERE workspace_id = p_workspace AND period_start = v_period
     AND status IN ('pending', 'retrying', 'succeeded', 'requires_action');
  v_status := CASE WHEN v_used < s.max_per_period THEN 'pending' ELSE 'skipped' END;
  v_key := 'auto-recharge:' || p_workspace || ':' || v_crossing;
  INSERT INTO billing_autorechargeattempt (workspace_id, key, status, period_start, available_at_trigger, threshold,
      pack_id, tries, stripe_payment_intent_id, action_url, last_error, created_at)
  VALUES (p_workspace, v_key, v_status, v_period, v_available, w.auto_recharge_threshold, s.pack_id, 0, '', '',
      CASE WHEN v_status = 'pending' THEN ''
           ELSE 'The ceiling of ' || s.max_per_period || ' auto-recharges this period was reached.' END,
      now())
  ON CONFLICT DO NOTHING;
  RETURN CASE WHEN v_status = 'pending' THEN v_key END;
END $$;


-- A run's hold: p_amount more reserved and one more running run. Not a ledger entry (SPEC section 2):
-- the buckets do not change, available does. Returns billing_wallet_watch's key.
CREATE OR REPLACE FUNCTION billing_hold_place(p_workspace bigint, p_amount bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_threshold bigint;
BEGIN
  UPDATE billing_wallet SET reserved = reserved + p_amount, running_runs = running_runs + 1, updated_at = now()
   WHERE workspace_id = p_workspace
  RETURNING auto_recharge_threshold INTO v_threshold;
  IF v_threshold IS NULL THEN
    RETURN NULL;  -- no threshold, nothing to watch: skip the watch's read
  END IF;
  RETURN billing_wallet_watch(p_workspace);  -- a hold can take available below the threshold
END $$;


-- A running run's hold grows by p_amount (POST /v1/runs/<id>/extend, issue 29): more reserved, the
-- same number of running runs. Not a ledger entry, as the hold it adds to is not. Returns
-- billing_wallet_watch's key.
CREATE OR REPLACE FUNCTION billing_hold_grow(p_workspace bigint, p_amount bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_threshold bigint;
BEGIN
  IF p_amount = 0 THEN
    RETURN NULL;
  END IF;
  UPDATE billing_wallet SET reserved = reserved + p_amount, updated_at = now()
   WHERE workspace_id = p_workspace
  RETURNING auto_recharge_threshold INTO v_threshold;
  IF v_threshold IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN billing_wallet_watch(p_workspace);  -- a grown hold can take available below the threshold
END $$;


-- The end of a run's hold without a charge (the sweeper expired it).
CREATE OR REPLACE FUNCTION billing_hold_release(p_workspace bigint, p_amount bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE billing_wallet SET reserved = reserved - p_amount, running_runs = running_runs - 1, updated_at = now()
   WHERE workspace_id = p_workspace;
  RETURN billing_wallet_watch(p_workspace);  -- a released hold can re-arm auto-recharge
END $$;


-- Charge a finished run p_cost nanocredits and, when p_release is not NULL, release its open hold of
-- p_release. w is the wallet row as the caller locked it. The monthly bucket pays first, then
-- purchased, which may go below zero by an over-reservation (the monthly bucket never does). One
-- ledger entry per bucket that pays (none for zero), keyed run:<run id>:charge:<bucket>
-- (database-unique: a run is charged once), each with the bucket's balance and the wallet's balance
-- after it.
--
-- The debt bound (issue 25): a workspace never owes more than p_overdraft (OVERDRAFT_MAX_CREDITS).
-- Each run's overrun is bounded (RUN_MAX_CREDITS), but many runs over their reservations at once are
-- not; what a charge would take the balance below -p_overdraft is written off: one more entry,
-- kind 'write_off', into the purchased bucket, keyed run:<run id>:write_off. The charge entries
-- still say what the run cost; the write-off says what the platform absorbed.
DROP FUNCTION IF EXISTS billing_run_charge(billing_wallet, bigint, text, bigint, bigint, timestamptz);
CREATE OR REPLACE FUNCTION billing_run_charge(w billing_wallet, p_run bigint, p_public_id text, p_cost bigint,
    p_release bigint, p_at timestamptz, p_overdraft bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  p_workspace bigint := w.workspace_id;
  v_from_monthly bigint;
  v_from_purchased bigint;
  v_written_off bigint;
BEGIN
  v_from_monthly := least(p_cost, greatest(w.monthly, 0));
  v_from_purchased := p_cost - v_from_monthly;
  -- What takes the balance below -p_overdraft, at most this run's cost (a balance already below it,
  -- after a refund of spent credits or a lowered bound, is not this run's to write off).
  v_written_off := least(p_cost, greatest(-p_overdraft - (w.monthly + w.purchased - p_cost), 0));
  INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after, balance_after, reason,
      idempotency_key, run_id, created_at)
  SELECT p_workspace, 'charge', e.bucket, e.amount, e.bucket_after, e.balance_after, 'Run ' || p_public_id,
         'run:' || p_run || ':charge:' || e.bucket, p_run, p_at
    FROM (VALUES (1, 'monthly', -v_from_monthly, w.monthly - v_from_monthly,
                  w.monthly - v_from_monthly + w.purchased),
                 (2, 'purchased', -v_from_purchased, w.purchased - v_from_purchased,
                  w.monthly - v_from_monthly + w.purchased - v_from_purchased))
         AS e(position, bucket, amount, bucket_after, balance_after)
   WHERE e.amount <> 0
   ORDER BY e.position;
  IF v_written_off > 0 THEN
    INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after, balance_after, reason,
        idempotency_key, run_id, created_at)
    VALUES (p_workspace, 'write_off', 'purchased', v_written_off, w.purchased - v_from_purchased + v_written_off,
        w.monthly + w.purchased - p_cost + v_written_off,
        'Run ' || p_public_id || ': beyond the overdraft limit of ' || (p_overdraft / 1000000000) || ' credits',
        'run:' || p_run || ':write_off', p_run, p_at);
  END IF;
  UPDATE billing_wallet
     SET monthly = monthly - v_from_monthly, purchased = purchased - v_from_purchased + v_written_off,
         reserved = reserved - coalesce(p_release, 0),
         running_runs = running_runs - CASE WHEN p_release IS NULL THEN 0 ELSE 1 END,
         updated_at = now()
   WHERE workspace_id = p_workspace;
  IF w.auto_recharge_threshold IS NULL THEN
    RETURN NULL;  -- no threshold, nothing to watch (the lock keeps it from changing meanwhile)
  END IF;
  RETURN billing_wallet_watch(p_workspace);
END $$;
