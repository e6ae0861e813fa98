-- Payments, gateway callbacks, the portal outbox and the double-entry ledger.
-- PostgreSQL dialect; migrations/sqlite/0002_payments_ledger.sql is the same schema for SQLite.

-- One attempt to pay a case (SPEC §6.1). amount is the citizen's due at creation, in đồng;
-- budget_amount what the province's budget owes. txn_ref is the reference sent to the gateway
-- (NULL for waived and budget-covered payments, which involve no gateway). quote holds the quote
-- JSON at creation: its fee kinds split the revenue when the payment is confirmed; phi_due and
-- le_phi_due are the citizen's part of it per kind, kept as columns for reconciliation totals.
-- The idempotency key is scoped per (user, case): the same key returns the same payment.
CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY,
    case_code       TEXT NOT NULL REFERENCES cases (case_code),
    case_version    BIGINT NOT NULL,
    gateway         TEXT NOT NULL CHECK (gateway IN ('vnpay', 'momo', 'zalopay')),
    txn_ref         TEXT UNIQUE,
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    budget_amount   BIGINT NOT NULL CHECK (budget_amount >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'expired', 'waived', 'budget_covered')),
    gateway_txn_no  TEXT,
    paid_at         TIMESTAMPTZ,
    pay_url         TEXT,
    return_url      TEXT NOT NULL,
    client_ip       TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    quote           TEXT NOT NULL,
    phi_due         BIGINT NOT NULL DEFAULT 0,
    le_phi_due      BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    last_queried_at TIMESTAMPTZ,
    UNIQUE (created_by, case_code, idempotency_key)
);
CREATE INDEX payments_case ON payments (case_code);
CREATE INDEX payments_status ON payments (status, created_at);

-- Flags raised on a payment (late_success, duplicate_payment, ...), each once.
CREATE TABLE payment_flags (
    payment_id TEXT NOT NULL REFERENCES payments (payment_id),
    flag       TEXT NOT NULL,
    raised_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (payment_id, flag)
);
CREATE INDEX payment_flags_flag ON payment_flags (flag);

-- The outcomes applied to a payment: a (gateway_txn_no, outcome) is applied at most once, which
-- makes any number of deliveries of one callback have one effect.
CREATE TABLE payment_events (
    payment_id     TEXT NOT NULL REFERENCES payments (payment_id),
    gateway_txn_no TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    applied_at     TIMESTAMPTZ NOT NULL,
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
    body             BYTEA NOT NULL,
    sha256           TEXT NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    signature_valid  BOOLEAN NOT NULL,
    key_used         TEXT,
    txn_ref          TEXT,
    gateway_txn_no   TEXT,
    amount           BIGINT,
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
    amount          BIGINT NOT NULL,
    paid_at         TIMESTAMPTZ,
    case_seq        BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    locked_until    TIMESTAMPTZ,
    UNIQUE (case_code, case_seq)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- The ledger (SPEC §8). A posting is written as its entries first, then its row in
-- ledger_postings, which completes it: the trigger below refuses the posting row unless its
-- entries exist, number line_count and balance. Entries can no longer be added to a completed
-- posting. Every entry is in the hash chain: hash = SHA-256(prev_hash ‖ canonical entry), with
-- seq gap-free (see README "The ledger").
CREATE TABLE ledger_entries (
    seq           BIGINT PRIMARY KEY,
    posting_id    TEXT NOT NULL,
    line_no       BIGINT NOT NULL,
    business_date DATE NOT NULL,
    kind          TEXT NOT NULL,
    account       TEXT NOT NULL,
    debit         BIGINT NOT NULL CHECK (debit >= 0),
    credit        BIGINT NOT NULL CHECK (credit >= 0),
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
    business_date DATE NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    corrects      TEXT,
    line_count    BIGINT NOT NULL CHECK (line_count >= 1),
    total         BIGINT NOT NULL CHECK (total >= 0)
);

INSERT INTO chain_heads (chain, last_seq, last_hash)
VALUES ('ledger', 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION feerecon_posting_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
    dr BIGINT;
    cr BIGINT;
BEGIN
    SELECT COUNT(*), COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) INTO n, dr, cr
    FROM ledger_entries WHERE posting_id = NEW.posting_id;
    IF n <> NEW.line_count OR dr <> NEW.total OR cr <> NEW.total THEN
        RAISE EXCEPTION 'unbalanced or incomplete posting %', NEW.posting_id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_posting_balances BEFORE INSERT ON ledger_postings
FOR EACH ROW EXECUTE FUNCTION feerecon_posting_balances();

CREATE FUNCTION feerecon_entry_open_posting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_postings WHERE posting_id = NEW.posting_id) THEN
        RAISE EXCEPTION 'the posting is complete; corrections are new postings';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_entry_open_posting BEFORE INSERT ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION feerecon_entry_open_posting();

-- PostgreSQL can also refuse, at commit, entries whose posting was never completed.
CREATE FUNCTION feerecon_entry_completed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger_postings WHERE posting_id = NEW.posting_id) THEN
        RAISE EXCEPTION 'ledger entries of posting % were written without completing it', NEW.posting_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entry_completed AFTER INSERT ON ledger_entries
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION feerecon_entry_completed();

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION feerecon_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
FOR EACH STATEMENT EXECUTE FUNCTION feerecon_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
FOR EACH ROW EXECUTE FUNCTION feerecon_append_only();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
FOR EACH STATEMENT EXECUTE FUNCTION feerecon_append_only();
