-- Fewer index writes per confirmed payment (issue 10; BENCHMARKS.md, "SQLite's work per first
-- delivery"). PostgreSQL dialect; migrations/sqlite/0016_callback_writes.sql gives the reasons
-- in full: the schemas stay the same shape. Deploying: each statement locks its table until the
-- migration commits and each CREATE INDEX reads its table, a pause proportional to their size.

-- The hash covers seq, the primary key: two equal hashes would be a SHA-256 collision. Nothing
-- reads entries by hash; `ledger verify` recomputes every hash and link.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_hash_key;

-- Only messages linked to no payment are found by reference (`payment_callbacks`).
DROP INDEX callbacks_txn_ref;
CREATE INDEX callbacks_txn_ref ON callbacks (txn_ref) WHERE payment_id IS NULL;

-- Read by `related_receipt_id = ...` or `IN (...)` only: an original receipt needs no entry.
DROP INDEX receipts_related;
CREATE INDEX receipts_related ON receipts (related_receipt_id) WHERE related_receipt_id IS NOT NULL;

-- Read by `paid_date = ...` or a range of paid dates, which a NULL never matches: a pending
-- payment needs no entry.
DROP INDEX payments_paid_date;
CREATE INDEX payments_paid_date ON payments (paid_date) WHERE paid_date IS NOT NULL;
