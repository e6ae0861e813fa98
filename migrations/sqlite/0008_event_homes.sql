-- Reconciliation across days (SPEC §7.2 "Across days", §7.3).
-- SQLite dialect; migrations/postgres/0008_event_homes.sql is the same for PostgreSQL.

-- A paid payment's natural date (the business date of paid_at at +07:00, written when it
-- becomes paid), and its home date: the date whose close counted it. A home date is written
-- once, by a close, and never changes; an event without one is counted on its natural date, or
-- on the first open date after it when that date is closed.
ALTER TABLE payments ADD COLUMN paid_date TEXT;
ALTER TABLE payments ADD COLUMN home_date TEXT;
UPDATE payments SET paid_date = date(paid_at, '+7 hours') WHERE status = 'paid' AND paid_at IS NOT NULL;
-- A run of D reads the paid payments without a home, or homed on D.
CREATE INDEX payments_home ON payments (gateway, status, home_date);

-- A line is the first occurrence of its (gateway_txn_no, status) by import order then line
-- number, or a duplicate of one (decided at import, over every file of the gateway); and its home
-- date, as for payments. Lines are found by reference for the payments they may settle.
ALTER TABLE settlement_lines ADD COLUMN first_occurrence INTEGER NOT NULL DEFAULT 1;
ALTER TABLE settlement_lines ADD COLUMN home_date TEXT;
UPDATE settlement_lines SET first_occurrence = 0 WHERE EXISTS (
    SELECT 1 FROM settlement_lines e
    WHERE e.gateway = settlement_lines.gateway AND e.gateway_txn_no = settlement_lines.gateway_txn_no
      AND e.status = settlement_lines.status
      AND (e.file_seq < settlement_lines.file_seq OR (e.file_seq = settlement_lines.file_seq AND e.line_no < settlement_lines.line_no))
);
CREATE INDEX settlement_lines_home ON settlement_lines (gateway, home_date);
CREATE INDEX settlement_lines_ref ON settlement_lines (gateway, txn_ref);

-- An item classified against a counterpart counted on another date names that date.
ALTER TABLE reconciliation_items ADD COLUMN counterpart_date TEXT;

-- Exceptions may be superseded: a re-run of their open date no longer has their item, or has it
-- matched through another event. SQLite cannot change a CHECK constraint in place: the table is
-- rebuilt with the same rows.
CREATE TABLE exceptions_new (
    exception_id  TEXT PRIMARY KEY,
    gateway       TEXT NOT NULL,
    business_date TEXT NOT NULL,
    category      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'pending_approval', 'resolved', 'superseded')),
    resolution    TEXT,
    posting_id    TEXT,
    rejection     TEXT,
    updated_at    TEXT NOT NULL
);
INSERT INTO exceptions_new SELECT exception_id, gateway, business_date, category, state, resolution, posting_id,
    rejection, updated_at FROM exceptions;
DROP TABLE exceptions;
ALTER TABLE exceptions_new RENAME TO exceptions;
CREATE INDEX exceptions_gateway ON exceptions (gateway, business_date);
