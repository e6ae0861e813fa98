-- Matched items of a run stored as blocks (issue 23; SPEC §7.2 items).
-- SQLite dialect; migrations/postgres/0014_item_blocks.sql is the same schema for PostgreSQL.

-- A run of a million-payment day has about a million matched items. Every reader of items other
-- than a run's item list and one item by key (the day calendar's unresolved counts, the
-- exception list's item columns) reads only exception items, or items whose key is an
-- exception's id: those stay rows of reconciliation_items. The other matched items of a run are
-- stored here, a block of up to about 1,000 items per row in item key order (byte order), packed
-- by src/store/recon_blocks.rs; first_key and last_key are the block's first and last item keys,
-- and blocks of a run never overlap. Runs stored before this migration have every item as a row
-- and no block: readers merge both forms.
CREATE TABLE reconciliation_item_blocks (
    run_seq    INTEGER NOT NULL REFERENCES reconciliation_runs (run_seq),
    first_key  TEXT NOT NULL,
    last_key   TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    items      TEXT NOT NULL,
    PRIMARY KEY (run_seq, first_key)
);
-- A page after a cursor, and one item by key: the first block whose last key is at or after it.
CREATE UNIQUE INDEX reconciliation_item_blocks_last ON reconciliation_item_blocks (run_seq, last_key);
