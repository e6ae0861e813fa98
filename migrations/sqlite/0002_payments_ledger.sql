-- Payments, gateway callbacks, the portal outbox and the double-entry ledger.
-- SQLite dialect; migrations/postgres/0002_payments_ledger.sql is the same schema for PostgreSQL.

-- One attempt to pay a case (SPEC §6.1). amount is the citizen's due at creation, in đồng;
-- budget_amount what the province's budget owes. txn_ref is the reference sent to the gateway
-- (NULL for waived and budget-covered payments, which involve no gateway). quote holds the quote
-- JSON at creation: its fee kinds split the revenue when the payment is confirmed; phi_due and
-- le_phi_due are the citizen's part of it per kind, kept as columns for reconciliation totals.
-- The idempotency key is scoped per (user, case): the same key returns the same payment.
CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY,
    case_code       TEXT NOT NULL REFERENCES cases (case_code),
    case_version    INTEGER NOT NULL,
    gateway         TEXT NOT NULL CHECK (gateway IN ('vnpay', 'momo', 'zalopay')),
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
    UNIQUE (created_by, case_code, idempotency_key)
);
CREATE INDEX payments_case ON payments (case_code);
CREATE INDEX payments_status ON payments (status, created_at);

-- Flags raised on a payment (late_success, duplicate_payment, ...), each once.
CREATE TABLE payment_flags (
    payment_id TEXT NOT NULL REFERENCES payments (payment_id),
    flag       TEXT NOT NULL,
    raised_at  TEXT NOT NULL,
    PRIMARY KEY (payment_id, flag)
);
CREATE INDEX payment_flags_flag ON payment_flags (flag);

-- The outcomes applied to a payment: a (gateway_txn_no, outcome) is applied at most once, which
-- makes any number of deliveries of one callback have one effect.
CREATE TABLE payment_events (
    payment_id     TEXT NOT NULL REFERENCES payments (payment_id),
    gateway_txn_no TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    applied_at     TEXT NOT NULL,
    callback_id    TEXT NOT NULL,
    PRIMARY KEY (payment_id, gateway_txn_no, outcome)
);

-- Every gateway callback and status-query answer, raw, with what it was found to be (SPEC §6.5).
-- body holds the exact bytes received; sha256 their hash. key_used is 'current' or 'previous'
-- when the signature verified. result is the reply category (applied, already_confirmed, ...).
CREATE TABLE callbacks (
    callback_id      TEXT PRIMARY KEY,
    source           TEXT NOT NULL CHECK (source IN ('callback', 'status_query', 'settlement')),
    gateway          TEXT NOT NULL,
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    query            TEXT NOT NULL,
    headers          TEXT NOT NULL,
    body             BLOB NOT NULL,
    sha256           TEXT NOT NULL,
    received_at      TEXT NOT NULL,
    signature_valid  INTEGER NOT NULL,
    key_used         TEXT,
    txn_ref          TEXT,
    gateway_txn_no   TEXT,
    amount           INTEGER,
    outcome          TEXT,
    payment_id       TEXT,
    result           TEXT NOT NULL,
    detail           TEXT
);
CREATE INDEX callbacks_payment ON callbacks (payment_id, received_at);
CREATE INDEX callbacks_txn_ref ON callbacks (txn_ref);

-- Events for the portal, written in the transaction that causes them (SPEC §6.6). case_seq grows
-- per case. Delivery state is kept beside the event.
CREATE TABLE outbox (
    event_id        TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    case_code       TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    amount          INTEGER NOT NULL,
    paid_at         TEXT,
    case_seq        INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    delivered_at    TEXT,
    locked_until    TEXT,
    UNIQUE (case_code, case_seq)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- The ledger (SPEC §8). A posting is written as its entries first, then its row in
-- ledger_postings, which completes it: the trigger below refuses the posting row unless its
-- entries exist, number line_count and balance. Entries can no longer be added to a completed
-- posting. Every entry is in the hash chain: hash = SHA-256(prev_hash ‖ canonical entry), with
-- seq gap-free (see README "The ledger").
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
    hash          TEXT NOT NULL UNIQUE,
    CHECK (debit = 0 OR credit = 0),
    UNIQUE (posting_id, line_no)
);
CREATE INDEX ledger_entries_date ON ledger_entries (business_date, seq);

CREATE TABLE ledger_postings (
    posting_id    TEXT PRIMARY KEY,
    idem_key      TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    business_date TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    corrects      TEXT,
    line_count    INTEGER NOT NULL CHECK (line_count >= 1),
    total         INTEGER NOT NULL CHECK (total >= 0)
);

INSERT INTO chain_heads (chain, last_seq, last_hash)
VALUES ('ledger', 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER ledger_posting_balances BEFORE INSERT ON ledger_postings
BEGIN
    SELECT RAISE(ABORT, 'unbalanced or incomplete posting')
    WHERE (SELECT COUNT(*) FROM ledger_entries WHERE posting_id = NEW.posting_id) <> NEW.line_count
       OR (SELECT COALESCE(SUM(debit), 0) FROM ledger_entries WHERE posting_id = NEW.posting_id) <> NEW.total
       OR (SELECT COALESCE(SUM(credit), 0) FROM ledger_entries WHERE posting_id = NEW.posting_id) <> NEW.total;
END;

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
CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN
    SELECT RAISE(ABORT, 'ledger_postings is append-only');
END;
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN
    SELECT RAISE(ABORT, 'ledger_postings is append-only');
END;
