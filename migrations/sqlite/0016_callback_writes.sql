-- Less work for SQLite per confirmed payment (issue 10; BENCHMARKS.md, "SQLite's work per first
-- delivery"): each change below was measured by replaying a batch of 64 first deliveries with
-- and without it (instructions inside sqlite3_step), keeps every reader on its index (one plan
-- changed, for the better: the payments of a date no longer read every unpaid payment through
-- payments_paid_date's NULLs, they use payments_created), and keeps what the database refuses.
-- Deploying: the table rebuild and the index rebuilds below take time proportional to the
-- ledger's and the tables' size, during which writers wait (gateways are answered "retry"). SQLite dialect; migrations/postgres/0016_callback_writes.sql makes the
-- same index changes on PostgreSQL (its triggers are functions, unchanged).

-- ledger_entries.hash loses its UNIQUE index. An entry's hash is SHA-256(prev_hash ‖ canonical
-- entry) and the canonical entry begins with its seq, the primary key: two rows with one hash
-- would need a SHA-256 collision, so the index checked nothing the chain does not, while every
-- entry paid a write at a random place of a 64-character key. Nothing reads entries by hash;
-- `ledger verify` recomputes every hash and link. SQLite cannot drop a constraint in place: the
-- table is rebuilt with the same rows, indexes and triggers (append-only, open posting), the
-- ledger_postings trigger that reads it recreated below. DROP TABLE's implicit delete fires no
-- trigger. Measured: 11 k instructions per first delivery (three entries).
CREATE TABLE ledger_entries_copy AS SELECT * FROM ledger_entries;
DROP TABLE ledger_entries;
CREATE TABLE ledger_entries (
    seq           INTEGER PRIMARY KEY,
    posting_id    TEXT NOT NULL,
    line_no       INTEGER NOT NULL,
    business_date TEXT NOT NULL,
    kind          TEXT NOT NULL,
    account       TEXT NOT NULL,
    debit         INTEGER NOT NULL CHECK (debit >= 0),
    credit        INTEGER NOT NULL CHECK (credit >= 0),
    memo          TEXT NOT NULL,
    refs          TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    CHECK (debit = 0 OR credit = 0),
    UNIQUE (posting_id, line_no)
);
INSERT INTO ledger_entries (seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs,
                            prev_hash, hash)
SELECT seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs, prev_hash, hash
FROM ledger_entries_copy ORDER BY seq;
DROP TABLE ledger_entries_copy;
CREATE INDEX ledger_entries_date ON ledger_entries (business_date, seq);
CREATE INDEX ledger_entries_account ON ledger_entries (account, business_date, seq);

-- A completed posting takes no more entries: recreated as it was (BEFORE INSERT). Run AFTER, it
-- would cost 16 k instructions less per first delivery, but an entry repeating a line number
-- of a completed posting would then be refused by the (posting_id, line_no) UNIQUE constraint
-- before the trigger, with another message.
CREATE TRIGGER ledger_entry_open_posting BEFORE INSERT ON ledger_entries
WHEN EXISTS (SELECT 1 FROM ledger_postings WHERE posting_id = NEW.posting_id)
BEGIN
    SELECT RAISE(ABORT, 'the posting is complete; corrections are new postings');
END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only');
END;

-- A posting's row completes it only if its entries exist, number line_count and balance: the
-- same check, its three scans of the posting's entries made one, and run AFTER the row's insert
-- (a RAISE(ABORT) in an AFTER trigger still undoes the statement; the check reads
-- ledger_entries only, so it sees the same rows either way; a posting row that is both a
-- duplicate and unbalanced now reports the UNIQUE error first, as the store maps it). 27 k
-- instructions per first delivery before, 14 k after. PostgreSQL keeps its BEFORE trigger.
DROP TRIGGER ledger_posting_balances;
CREATE TRIGGER ledger_posting_balances AFTER INSERT ON ledger_postings
BEGIN
    SELECT RAISE(ABORT, 'unbalanced or incomplete posting')
    FROM (SELECT COUNT(*) AS n, COALESCE(SUM(debit), 0) AS dr, COALESCE(SUM(credit), 0) AS cr
          FROM ledger_entries WHERE posting_id = NEW.posting_id)
    WHERE n <> NEW.line_count OR dr <> NEW.total OR cr <> NEW.total;
END;

-- callbacks_txn_ref serves one reader: a payment's evidence, which finds by reference only the
-- messages linked to no payment (`payment_callbacks`: `payment_id IS NULL AND txn_ref = ...`);
-- those linked are found by callbacks_payment. Every applied callback is linked, so indexing
-- only the unlinked ones takes one index write off each (2 k instructions).
DROP INDEX callbacks_txn_ref;
CREATE INDEX callbacks_txn_ref ON callbacks (txn_ref) WHERE payment_id IS NULL;

-- receipts_related is read by `related_receipt_id = ...` or `IN (...)` only (the receipts that
-- correct one), which a NULL never matches: an original receipt, the one a callback issues,
-- has no entry to write (1 k instructions).
DROP INDEX receipts_related;
CREATE INDEX receipts_related ON receipts (related_receipt_id) WHERE related_receipt_id IS NOT NULL;

-- payments_paid_date is read by `paid_date = ...` (GET /api/v1/payments?date=; a payment not
-- paid is found there by created_at) or by a range of paid dates (a run's home payments), which
-- a NULL never matches: a pending payment has no entry, and its confirmation
-- adds one instead of moving one (a few k instructions).
DROP INDEX payments_paid_date;
CREATE INDEX payments_paid_date ON payments (paid_date) WHERE paid_date IS NOT NULL;
