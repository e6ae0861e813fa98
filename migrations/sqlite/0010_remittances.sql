-- Treasury remittance (issue 19; ../shared/reference/after-collection.md §2): the statement of
-- each period's collected fees by budget sub-item, frozen when its remittance is first requested,
-- and the remittances finance records under four eyes.
-- SQLite dialect; migrations/postgres/0010_remittances.sql is the same schema for PostgreSQL.
--
-- What a period owes is read from the ledger itself: every revenue entry carries its fee, budget
-- sub-item and remittance period at the end of its refs (README "Remittance"), so no amount is
-- stored here that the ledger does not already hold.

-- A period whose statement is frozen: `period` is `YYYY-MM` (a month), `YYYY-Www` (an ISO week)
-- or `YYYY-MM-DD` (a day); `through_seq` is the ledger's last seq when its remittance was first
-- requested. The statement counts the revenue entries up to that seq whose home is the period;
-- an entry that arrives later for it is counted in the next period of its kind. Rows are
-- append-only (triggers below): a frozen statement never changes, even when the request that
-- froze it is rejected (a new request records the same figures).
CREATE TABLE remittance_periods (
    period      TEXT PRIMARY KEY,
    period_kind TEXT NOT NULL CHECK (period_kind IN ('day', 'week', 'month')),
    through_seq INTEGER NOT NULL CHECK (through_seq >= 0),
    frozen_at   TEXT NOT NULL,
    frozen_by   TEXT NOT NULL
);

CREATE TRIGGER remittance_periods_no_update BEFORE UPDATE ON remittance_periods
BEGIN
    SELECT RAISE(ABORT, 'remittance_periods is append-only');
END;
CREATE TRIGGER remittance_periods_no_delete BEFORE DELETE ON remittance_periods
BEGIN
    SELECT RAISE(ABORT, 'remittance_periods is append-only');
END;

-- One request to record that a period's statement was transferred to the treasury (the C1-02/NS
-- transfers): requested by a finance user (`pending_approval`), then `recorded` by another, which
-- posts it in the ledger (`posting_id`), or `rejected`. `amount` is the statement's total, which
-- the request must repeat; `transferred_on` the date of the transfer; `reference` the transfer's
-- number or the treasury's reference. A period has at most one request pending or recorded, so a
-- remittance is never recorded (nor posted) twice; a decided row never changes again.
CREATE TABLE remittances (
    remittance_id  TEXT PRIMARY KEY,
    period         TEXT NOT NULL REFERENCES remittance_periods (period),
    state          TEXT NOT NULL CHECK (state IN ('pending_approval', 'recorded', 'rejected')),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    transferred_on TEXT NOT NULL,
    reference      TEXT NOT NULL,
    note           TEXT NOT NULL,
    requested_by   TEXT NOT NULL,
    requested_at   TEXT NOT NULL,
    decided_by     TEXT,
    decided_at     TEXT,
    decision_note  TEXT,
    posting_id     TEXT,
    CHECK ((state = 'recorded') = (posting_id IS NOT NULL)),
    CHECK ((state = 'pending_approval') = (decided_by IS NULL))
);
CREATE UNIQUE INDEX remittances_one_live ON remittances (period) WHERE state <> 'rejected';
CREATE INDEX remittances_period ON remittances (period, requested_at);

CREATE TRIGGER remittances_decided_once BEFORE UPDATE ON remittances
WHEN OLD.state <> 'pending_approval' OR NEW.remittance_id <> OLD.remittance_id OR NEW.period <> OLD.period
     OR NEW.amount <> OLD.amount OR NEW.requested_by <> OLD.requested_by
BEGIN
    SELECT RAISE(ABORT, 'a decided remittance never changes');
END;
CREATE TRIGGER remittances_no_delete BEFORE DELETE ON remittances
BEGIN
    SELECT RAISE(ABORT, 'remittances are kept');
END;

-- Revenue entries are read by account for the statements.
CREATE INDEX ledger_entries_account ON ledger_entries (account, business_date, seq);
