-- The facts of a case that decide which fee items it owes (SPEC §5, catalogue requires_facts),
-- such as late_registration: a JSON array of fact tags, sorted and unique, like subjects.
-- PostgreSQL dialect; migrations/sqlite/0005_case_facts.sql is the same for SQLite.
-- Versions recorded before this migration carried no facts: they read as none ('[]').
ALTER TABLE case_versions ADD COLUMN facts TEXT NOT NULL DEFAULT '[]';
