-- Signed checkpoints of the ledger chain, and the signing key's public half (SPEC §8).
-- SQLite dialect; migrations/postgres/0004_ledger_checkpoints.sql is the same for PostgreSQL.

-- The public key every instance on this database signs with. serve refuses a key file whose
-- public key differs from the one recorded here.
CREATE TABLE ledger_keys (
    public_key  TEXT PRIMARY KEY,
    recorded_at TEXT NOT NULL
);

-- A signed statement of the chain at one point: its last seq, the head hash, and the cumulative
-- debit and credit per account through that seq (JSON), at each close of a (date, gateway) and
-- at the end of each business date (one end_of_day per date, whichever instance writes it:
-- gateway is '' for end_of_day). The signature is Ed25519 over the canonical message (README).
CREATE TABLE ledger_checkpoints (
    checkpoint_id TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('close', 'end_of_day')),
    business_date TEXT NOT NULL,
    gateway       TEXT NOT NULL,
    last_seq      INTEGER NOT NULL,
    head_hash     TEXT NOT NULL,
    totals        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    signature     TEXT NOT NULL,
    UNIQUE (kind, business_date, gateway)
);
CREATE INDEX ledger_checkpoints_seq ON ledger_checkpoints (last_seq);

CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'ledger_checkpoints is append-only');
END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'ledger_checkpoints is append-only');
END;
