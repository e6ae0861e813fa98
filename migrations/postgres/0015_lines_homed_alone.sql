-- The closed lines that later runs may still read (issue 23; SPEC §7.2 "Across days").
-- PostgreSQL dialect; migrations/sqlite/0015_lines_homed_alone.sql is the same for SQLite.

-- A run of D reads the lines without a home date (or homed on D) and, besides them, the lines
-- homed on another date whose payment it counts: a late callback's line, closed as unconfirmed
-- while its payment was pending. Such a line is one whose payment (same gateway and txn_ref) was
-- not homed on the line's own date when that date closed: there was none, it was not paid, or it
-- was counted on another date. A close records here, in its own transaction, every line it homes
-- whose payment it does not home, and runs join this set (about the size of a date's exceptions)
-- instead of every homed line (src/store/recon_data.rs). Home dates never change, so the set is
-- exactly the homed lines whose payment is not homed on their date.
--
-- Payments have no such set: a homed payment's late line (a refund, a second charge, a line that
-- comes days late) can arrive at any time after its close, so no close can know it. A run finds
-- those payments from the lines it reads whose payment it did not read as its own.
CREATE TABLE lines_homed_alone (
    gateway   TEXT NOT NULL,
    file_seq  BIGINT NOT NULL,
    line_no   BIGINT NOT NULL,
    txn_ref   TEXT NOT NULL,
    home_date DATE NOT NULL,
    PRIMARY KEY (gateway, file_seq, line_no),
    FOREIGN KEY (file_seq, line_no) REFERENCES settlement_lines (file_seq, line_no)
);

-- Dates closed before this migration: their rows, from the homes those closes gave (a backfill,
-- exact because home dates never change; no run falls back to reading every homed line).
INSERT INTO lines_homed_alone (gateway, file_seq, line_no, txn_ref, home_date)
SELECT l.gateway, l.file_seq, l.line_no, l.txn_ref, l.home_date FROM settlement_lines l
WHERE l.home_date IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM payments p WHERE p.gateway = l.gateway AND p.txn_ref = l.txn_ref AND p.home_date = l.home_date
);
