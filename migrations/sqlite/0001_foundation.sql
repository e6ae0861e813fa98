-- Foundation: users and their API tokens, cases with every version kept, and the audit log.
-- SQLite dialect; migrations/postgres/0001_foundation.sql is the same schema for PostgreSQL.

-- A user is a person or a machine client with exactly one role (SPEC §3.2).
-- password_hash is an argon2id PHC string, or NULL for a machine client that cannot log in.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('portal', 'finance', 'auditor', 'admin')),
    password_hash TEXT,
    created_at    TEXT NOT NULL
);

-- An API token. Only the SHA-256 of its secret part is stored; the token is shown once at
-- creation. A token is usable while revoked_at is NULL and expires_at is NULL or in the future.
CREATE TABLE api_tokens (
    token_id      TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    label         TEXT,
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- A case (hồ sơ). The row holds which version is current; the content lives in case_versions,
-- which keeps every version ever accepted (an identical update adds none).
CREATE TABLE cases (
    case_code       TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL CHECK (current_version >= 1),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- One accepted version of a case. subjects is a JSON array of subject tags, sorted.
-- received_at is the instant; its date at +07:00 equals the code's YYMMDD (checked before insert).
CREATE TABLE case_versions (
    case_code      TEXT NOT NULL REFERENCES cases (case_code),
    version        INTEGER NOT NULL CHECK (version >= 1),
    procedure_code TEXT NOT NULL,
    applicant_name TEXT NOT NULL,
    channel        TEXT NOT NULL CHECK (channel IN ('online_full', 'online_partial', 'counter', 'post')),
    subjects       TEXT NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity >= 1),
    received_at    TEXT NOT NULL,
    receiving_unit TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    PRIMARY KEY (case_code, version)
);

-- The head of each hash chain (the audit log now, the ledger later): appending reads and moves
-- the head inside the appending transaction, which serialises appends (no forks, no gaps).
CREATE TABLE chain_heads (
    chain     TEXT PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO chain_heads (chain, last_seq, last_hash)
VALUES ('audit', 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Every manual action (SPEC §8): who, when, what, on what. Chained like the ledger:
-- hash = SHA-256(prev_hash || canonical bytes of the row). Append-only.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
