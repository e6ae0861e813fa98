-- E-receipts (biên lai điện tử) for every fee collected, and what the daily summary to the tax
-- office (Mẫu 01/TH-BLĐT) is made from: issue 18, ../shared/reference/after-collection.md §1.
-- SQLite dialect; migrations/postgres/0009_receipts.sql is the same schema for PostgreSQL.

-- The last number allocated per (template, symbol, year): one sequence per receipt symbol and
-- year, starting at 1 (NĐ 254/2026 Art. 23(2)(c)), at most 8 digits. A number is allocated by
-- `INSERT ... ON CONFLICT DO UPDATE SET last_number = last_number + n RETURNING last_number` in
-- the transaction that writes the receipts (which holds SQLite's write lock from BEGIN
-- IMMEDIATE), and a transaction that rolls back gives its numbers back with everything else, so
-- every number up to last_number belongs to a receipt. The counter never goes back and its rows
-- are never deleted: a number is never reused.
CREATE TABLE receipt_sequences (
    template    TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    year        INTEGER NOT NULL,
    last_number INTEGER NOT NULL CHECK (last_number BETWEEN 1 AND 99999999),
    PRIMARY KEY (template, symbol, year)
);

CREATE TRIGGER receipt_sequences_forward BEFORE UPDATE ON receipt_sequences
WHEN NEW.last_number < OLD.last_number OR NEW.template <> OLD.template OR NEW.symbol <> OLD.symbol
     OR NEW.year <> OLD.year
BEGIN
    SELECT RAISE(ABORT, 'receipt numbers only move forward');
END;
CREATE TRIGGER receipt_sequences_no_delete BEFORE DELETE ON receipt_sequences
BEGIN
    SELECT RAISE(ABORT, 'receipt numbers only move forward');
END;

-- One receipt. Rows are append-only (triggers below): a correction is a new receipt that names
-- the one it corrects in related_receipt_id (a replacement, at most one per receipt, or an
-- adjustment), and a receipt's status (issued, replaced, adjusted) is read from the receipts that
-- name it. content is the canonical JSON of everything the receipt says (Art. 23(2)); signature
-- is the Ed25519 signature, by the ledger's key (public_key), of 'feerecon-receipt-v1\n' ||
-- content. total is the sum of its items (a signed difference for an adjustment). issue_date is
-- the business date (+07:00) of issued_at; year is the year of issue the symbol carries.
CREATE TABLE receipts (
    receipt_id         TEXT PRIMARY KEY,
    template           TEXT NOT NULL CHECK (template = 'EBL01'),
    symbol             TEXT NOT NULL,
    year               INTEGER NOT NULL,
    number             INTEGER NOT NULL CHECK (number BETWEEN 1 AND 99999999),
    kind               TEXT NOT NULL CHECK (kind IN ('original', 'replacement', 'adjustment')),
    related_receipt_id TEXT REFERENCES receipts (receipt_id),
    payment_id         TEXT REFERENCES payments (payment_id),
    case_code          TEXT NOT NULL REFERENCES cases (case_code),
    payer_kind         TEXT NOT NULL CHECK (payer_kind IN ('citizen', 'budget')),
    payer_name         TEXT NOT NULL,
    total              INTEGER NOT NULL,
    issued_at          TEXT NOT NULL,
    issue_date         TEXT NOT NULL,
    issued_by          TEXT NOT NULL,
    reason             TEXT,
    content            TEXT NOT NULL,
    signature          TEXT NOT NULL,
    public_key         TEXT NOT NULL,
    UNIQUE (template, symbol, year, number),
    CHECK ((kind = 'original') = (related_receipt_id IS NULL))
);
-- A receipt is replaced at most once; a payment has one original receipt per payer.
CREATE UNIQUE INDEX receipts_one_replacement ON receipts (related_receipt_id) WHERE kind = 'replacement';
CREATE UNIQUE INDEX receipts_one_original ON receipts (payment_id, payer_kind) WHERE kind = 'original';
CREATE INDEX receipts_related ON receipts (related_receipt_id);
CREATE INDEX receipts_case ON receipts (case_code, issued_at);
CREATE INDEX receipts_date ON receipts (issue_date, template, symbol, number);

CREATE TRIGGER receipts_no_update BEFORE UPDATE ON receipts
BEGIN
    SELECT RAISE(ABORT, 'receipts is append-only');
END;
CREATE TRIGGER receipts_no_delete BEFORE DELETE ON receipts
BEGIN
    SELECT RAISE(ABORT, 'receipts is append-only');
END;

-- The payment.succeeded, payment.duplicate and payment.budget_covered events carry the receipt
-- the transaction that wrote them issued (SPEC §6.6 "receipt"); other events leave these null.
ALTER TABLE outbox ADD COLUMN receipt_template TEXT;
ALTER TABLE outbox ADD COLUMN receipt_symbol TEXT;
ALTER TABLE outbox ADD COLUMN receipt_number INTEGER;
