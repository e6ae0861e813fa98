-- Reconciliation across days (SPEC §7.2 "Across days", §7.3).
-- PostgreSQL dialect; migrations/sqlite/0008_event_homes.sql is the same for SQLite.

-- A paid payment's natural date (the business date of paid_at at +07:00, written when it
-- becomes paid), and its home date: the date whose close counted it. A home date is written
-- once, by a close, and never changes; an event without one is counted on its natural date, or
-- on the first open date after it when that date is closed.
ALTER TABLE payments ADD COLUMN paid_date DATE;
ALTER TABLE payments ADD COLUMN home_date DATE;
UPDATE payments SET paid_date = ((paid_at AT TIME ZONE 'UTC') + INTERVAL '7 hours')::date WHERE status = 'paid' AND paid_at IS NOT NULL;
-- A run of D reads the paid payments without a home, or homed on D.
CREATE INDEX payments_home ON payments (gateway, status, home_date);

-- A line is the first occurrence of its (gateway_txn_no, status) by import order then line
-- number, or a duplicate of one (decided at import, over every file of the gateway); and its home
-- date, as for payments. Lines are found by reference for the payments they may settle.
ALTER TABLE settlement_lines ADD COLUMN first_occurrence BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE settlement_lines ADD COLUMN home_date DATE;
UPDATE settlement_lines l SET first_occurrence = FALSE WHERE EXISTS (
    SELECT 1 FROM settlement_lines e
    WHERE e.gateway = l.gateway AND e.gateway_txn_no = l.gateway_txn_no AND e.status = l.status
      AND (e.file_seq < l.file_seq OR (e.file_seq = l.file_seq AND e.line_no < l.line_no))
);
CREATE INDEX settlement_lines_home ON settlement_lines (gateway, home_date);
CREATE INDEX settlement_lines_ref ON settlement_lines (gateway, txn_ref);

-- An item classified against a counterpart counted on another date names that date.
ALTER TABLE reconciliation_items ADD COLUMN counterpart_date DATE;

-- Exceptions may be superseded: a re-run of their open date no longer has their item, or has it
-- matched through another event.
ALTER TABLE exceptions DROP CONSTRAINT exceptions_state_check;
ALTER TABLE exceptions ADD CONSTRAINT exceptions_state_check
    CHECK (state IN ('open', 'pending_approval', 'resolved', 'superseded'));
CREATE INDEX exceptions_gateway ON exceptions (gateway, business_date);
