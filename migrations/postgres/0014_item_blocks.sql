-- Matched items of a run stored as blocks (issue 23; SPEC §7.2 items).
-- PostgreSQL dialect; migrations/sqlite/0014_item_blocks.sql is the same schema for SQLite.

-- A run of a million-payment day has about a million matched items. Every reader of items other
-- than a run's item list and one item by key (the day calendar's unresolved counts, the
-- exception list's item columns) reads only exception items, or items whose key is an
-- exception's id: those stay rows of reconciliation_items. The other matched items of a run are
-- stored here, a block of up to about 1,000 items per row in item key order (byte order), packed
-- by src/store/recon_blocks.rs; first_key and last_key are the block's first and last item keys,
-- and blocks of a run never overlap. Runs stored before this migration have every item as a row
-- and no block: readers merge both forms.
CREATE TABLE reconciliation_item_blocks (
    run_seq    BIGINT NOT NULL REFERENCES reconciliation_runs (run_seq),
    first_key  TEXT COLLATE "C" NOT NULL,
    last_key   TEXT COLLATE "C" NOT NULL,
    item_count BIGINT NOT NULL,
    items      TEXT NOT NULL,
    PRIMARY KEY (run_seq, first_key)
);
-- A page after a cursor, and one item by key: the first block whose last key is at or after it.
CREATE UNIQUE INDEX reconciliation_item_blocks_last ON reconciliation_item_blocks (run_seq, last_key);

-- Item keys compare as bytes, whatever the database's collation: the blocks are packed and merged
-- with the rows in byte order (Rust's order of strings), and a page's cursor is the last key it
-- served, so the rows' ORDER BY and `item_key > cursor` must use the same order. A database created
-- in a language's locale (en_US.UTF-8, ICU) would otherwise sort `vnpay:K01` after `vnpay:k00` for
-- the rows and before it for the blocks, and pages would skip or repeat items. Changing the
-- collation rebuilds the primary key and the category index.
ALTER TABLE reconciliation_items ALTER COLUMN item_key TYPE TEXT COLLATE "C";
