-- Indexes for the paged lists across dates (issue 20; SPEC §4.2): every list reads one page with
-- one indexed statement, whatever the tables hold.
-- PostgreSQL dialect; migrations/sqlite/0012_lists.sql is the same schema for SQLite.

-- GET /api/v1/payments?flag=: read from the flag's rows in payment id order (the cursor's order);
-- this replaces the flag-only index.
DROP INDEX payment_flags_flag;
CREATE INDEX payment_flags_flag ON payment_flags (flag, payment_id);

-- GET /api/v1/payments?date=: a paid payment counts on its paid_date, any other on the +07:00
-- date of its created_at.
CREATE INDEX payments_paid_date ON payments (paid_date);
CREATE INDEX payments_created ON payments (created_at);

-- GET /api/v1/exceptions?state= across dates, in (business_date, exception_id) order, and the
-- /metrics gauge of exceptions by state.
CREATE INDEX exceptions_state ON exceptions (state, business_date, exception_id);
