-- Foundation: users and their API tokens, cases with every version kept, and the audit log.
-- PostgreSQL dialect; migrations/sqlite/0001_foundation.sql is the same schema for SQLite.

-- A user is a person or a machine client with exactly one role (SPEC §3.2).
-- password_hash is an argon2id PHC string, or NULL for a machine client that cannot log in.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('portal', 'finance', 'auditor', 'admin')),
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);

-- An API token. Only the SHA-256 of its secret part is stored; the token is shown once at
-- creation. A token is usable while revoked_at is NULL and expires_at is NULL or in the future.
CREATE TABLE api_tokens (
    token_id      TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    label         TEXT,
    secret_sha256 TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- A case (hồ sơ). The row holds which version is current; the content lives in case_versions,
-- which keeps every version ever accepted (an identical update adds none).
CREATE TABLE cases (
    case_code       TEXT PRIMARY KEY,
    current_version BIGINT NOT NULL CHECK (current_version >= 1),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

-- One accepted version of a case. subjects is a JSON array of subject tags, sorted.
-- received_at is the instant; its date at +07:00 equals the code's YYMMDD (checked before insert).
CREATE TABLE case_versions (
    case_code      TEXT NOT NULL REFERENCES cases (case_code),
    version        BIGINT NOT NULL CHECK (version >= 1),
    procedure_code TEXT NOT NULL,
    applicant_name TEXT NOT NULL,
    channel        TEXT NOT NULL CHECK (channel IN ('online_full', 'online_partial', 'counter', 'post')),
    subjects       TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity >= 1),
    received_at    TIMESTAMPTZ NOT NULL,
    receiving_unit TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    recorded_by    TEXT NOT NULL,
    PRIMARY KEY (case_code, version)
);

-- The head of each hash chain (the audit log now, the ledger later): appending locks and moves
-- the head inside the appending transaction (SELECT ... FOR UPDATE), which serialises appends
-- across every instance on this database (no forks, no gaps).
CREATE TABLE chain_heads (
    chain     TEXT PRIMARY KEY,
    last_seq  BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO chain_heads (chain, last_seq, last_hash)
VALUES ('audit', 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Every manual action (SPEC §8): who, when, what, on what. Chained like the ledger:
-- hash = SHA-256(prev_hash || canonical bytes of the row). Append-only.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);

CREATE FUNCTION feerecon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION feerecon_append_only();

-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION feerecon_append_only();
