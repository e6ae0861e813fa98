-- The gateway receipts a payment is expected to get (DVCQG GET_BILL; issue 23, "a day that does
-- not grow with history"). PostgreSQL dialect; migrations/sqlite/0017_gateway_receipts_expected.sql
-- is the same for SQLite.
--
-- The worker that fetches them used to find the receipts due by joining every paid payment of
-- the gateway to its receipt row, on each round (every 5 s by default): a scan of the history.
-- From now on the commit that pays a payment of a gateway that issues receipts writes its row,
-- `pending` with no attempt, due at once (src/store/gateway_receipts.rs), and the worker reads
-- only the pending rows that are due, by `gateway_receipts_due` (state, next_attempt_at).
--
-- Payments paid before this migration whose receipt was never attempted get that row here, due
-- at their payment time (or their last change, for one paid without a time), so the worker
-- still fetches them, oldest first. Only DVCQG issues receipts (`Gateway::issues_receipts`).
INSERT INTO gateway_receipts (payment_id, gateway, state, attempts, next_attempt_at, updated_at)
SELECT p.payment_id, p.gateway, 'pending', 0, COALESCE(p.paid_at, p.updated_at), p.updated_at
FROM payments p
WHERE p.status = 'paid' AND p.gateway = 'dvcqg'
  AND NOT EXISTS (SELECT 1 FROM gateway_receipts r WHERE r.payment_id = p.payment_id);
