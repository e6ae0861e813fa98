-- Settlement files, reconciliation runs and their items, exceptions and day closures (SPEC §7).
-- SQLite dialect; migrations/postgres/0003_settlement_reconciliation.sql is the same for PostgreSQL.

-- When a payment became paid in our records (not the gateway's payment time): a payment of a day
-- that was closed before it arrived is reconciled on the next open date.
ALTER TABLE payments ADD COLUMN confirmed_at TEXT;

-- One imported settlement file: its exact bytes and their SHA-256 (unique: a file is imported
-- once). import_seq orders files by import, which decides which of two equal lines comes first.
CREATE TABLE settlement_files (
    file_id     TEXT PRIMARY KEY,
    import_seq  INTEGER NOT NULL UNIQUE,
    gateway     TEXT NOT NULL,
    profile     TEXT NOT NULL,
    name        TEXT NOT NULL,
    sha256      TEXT NOT NULL UNIQUE,
    bytes       BLOB NOT NULL,
    line_count  INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    imported_by TEXT NOT NULL
);

-- One line of a settlement file, in canonical form. amount and fee are whole đồng (any amount
-- scale of the file already divided), txn_time the instant, business_date its date at +07:00.
-- A file has millions of lines: they name it by its small import_seq, not its file_id.
CREATE TABLE settlement_lines (
    file_seq       INTEGER NOT NULL REFERENCES settlement_files (import_seq),
    line_no        INTEGER NOT NULL,
    gateway        TEXT NOT NULL,
    gateway_txn_no TEXT NOT NULL,
    txn_ref        TEXT NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount >= 0),
    fee            INTEGER NOT NULL CHECK (fee >= 0),
    txn_time       TEXT NOT NULL,
    business_date  TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('success', 'refund')),
    PRIMARY KEY (file_seq, line_no)
);
-- Finding the line a "confirm from settlement" resolution confirms. Reconciliation reads all of
-- a gateway's lines in one scan and needs no index; every index here slows the import of a
-- million-line file, so there is only this one.
CREATE INDEX settlement_lines_txn ON settlement_lines (gateway, gateway_txn_no);

-- A reconciliation run of one (business date, gateway): its report, as JSON (exceptions only,
-- without states and resolutions), and every item. run_seq numbers runs in creation order; a
-- run's million items name it by run_seq, not its run_id.
CREATE TABLE reconciliation_runs (
    run_id        TEXT PRIMARY KEY,
    run_seq       INTEGER NOT NULL UNIQUE,
    business_date TEXT NOT NULL,
    gateway       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    report_hash   TEXT NOT NULL,
    report        TEXT NOT NULL
);
CREATE INDEX reconciliation_runs_day ON reconciliation_runs (business_date, gateway, created_at);

CREATE TABLE reconciliation_items (
    run_seq         INTEGER NOT NULL REFERENCES reconciliation_runs (run_seq),
    item_key        TEXT NOT NULL,
    category        TEXT NOT NULL,
    business_date   TEXT NOT NULL,
    case_code       TEXT,
    payment_id      TEXT,
    txn_ref         TEXT,
    gateway_txn_no  TEXT,
    line_status     TEXT,
    recorded_amount INTEGER,
    settled_amount  INTEGER,
    expected_amount INTEGER,
    fee             INTEGER,
    settles_payment INTEGER NOT NULL,
    PRIMARY KEY (run_seq, item_key)
);
CREATE INDEX reconciliation_items_category ON reconciliation_items (run_seq, category, item_key);

-- An exception, by its item key (stable across runs). state: open, pending_approval, resolved.
-- resolution: the action requested or applied, with its note, actor and time (JSON); posting_id
-- the ledger posting its money movement made, if any; rejection the last rejection (JSON).
CREATE TABLE exceptions (
    exception_id  TEXT PRIMARY KEY,
    gateway       TEXT NOT NULL,
    business_date TEXT NOT NULL,
    category      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'pending_approval', 'resolved')),
    resolution    TEXT,
    posting_id    TEXT,
    rejection     TEXT,
    updated_at    TEXT NOT NULL
);

-- A closed (business date, gateway): nothing about it changes any more.
CREATE TABLE day_closures (
    business_date TEXT NOT NULL,
    gateway       TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    closed_at     TEXT NOT NULL,
    closed_by     TEXT NOT NULL,
    PRIMARY KEY (business_date, gateway)
);
