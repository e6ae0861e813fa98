-- The National Public Service Portal's payment platform (DVCQG) as a fourth gateway (issue 22).
-- SQLite dialect; migrations/postgres/0011_dvcqg.sql is the same for PostgreSQL.

-- payments.gateway takes 'dvcqg', and payments.last_answer 'undecided' (the gateway said it does
-- not know the final state: asked again until its pending window ends). SQLite cannot change a
-- CHECK constraint in place: the table is rebuilt with the same rows and columns. Other tables
-- reference payments, so their foreign keys are deferred to the commit: the rows dropped with the
-- old table are back, under the same keys, before it.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE payments_copy AS SELECT * FROM payments;
DROP TABLE payments;
CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY,
    case_code       TEXT NOT NULL REFERENCES cases (case_code),
    case_version    INTEGER NOT NULL,
    gateway         TEXT NOT NULL CHECK (gateway IN ('vnpay', 'momo', 'zalopay', 'dvcqg')),
    txn_ref         TEXT UNIQUE,
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    budget_amount   INTEGER NOT NULL CHECK (budget_amount >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'expired', 'waived', 'budget_covered')),
    gateway_txn_no  TEXT,
    paid_at         TEXT,
    pay_url         TEXT,
    return_url      TEXT NOT NULL,
    client_ip       TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    quote           TEXT NOT NULL,
    phi_due         INTEGER NOT NULL DEFAULT 0,
    le_phi_due      INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_queried_at TEXT,
    confirmed_at    TEXT,
    query_count     INTEGER NOT NULL DEFAULT 0,
    next_query_at   TEXT,
    last_answer     TEXT CHECK (last_answer IN ('status', 'unusable', 'undecided')),
    paid_date       TEXT,
    home_date       TEXT,
    UNIQUE (created_by, case_code, idempotency_key)
);
INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status,
    gateway_txn_no, paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, phi_due, le_phi_due,
    created_at, expires_at, updated_at, last_queried_at, confirmed_at, query_count, next_query_at, last_answer,
    paid_date, home_date)
SELECT payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status,
    gateway_txn_no, paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, phi_due, le_phi_due,
    created_at, expires_at, updated_at, last_queried_at, confirmed_at, query_count, next_query_at, last_answer,
    paid_date, home_date
FROM payments_copy;
DROP TABLE payments_copy;
CREATE INDEX payments_case ON payments (case_code);
CREATE INDEX payments_status ON payments (status, created_at);
CREATE INDEX payments_home ON payments (gateway, status, home_date);

-- The gateway's own receipt of a paid payment (DVCQG GET_BILL), kept with its evidence: the
-- exact bytes fetched (a PDF, from the answer itself or from the UrlBienLai it named), their
-- hash and type, the request sent. A row is 'pending' until fetched, retried with backoff.
CREATE TABLE gateway_receipts (
    payment_id      TEXT PRIMARY KEY REFERENCES payments (payment_id),
    gateway         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'fetched')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    request         TEXT,
    content_type    TEXT,
    body            BLOB,
    sha256          TEXT,
    source_url      TEXT,
    detail          TEXT,
    fetched_at      TEXT,
    updated_at      TEXT NOT NULL,
    CHECK ((state = 'fetched') = (body IS NOT NULL))
);
CREATE INDEX gateway_receipts_due ON gateway_receipts (state, next_attempt_at);
