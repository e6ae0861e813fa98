-- The National Public Service Portal's payment platform (DVCQG) as a fourth gateway (issue 22).
-- PostgreSQL dialect; migrations/sqlite/0011_dvcqg.sql is the same for SQLite.

-- payments.gateway takes 'dvcqg', and payments.last_answer 'undecided' (the gateway said it does
-- not know the final state: asked again until its pending window ends).
ALTER TABLE payments DROP CONSTRAINT payments_gateway_check;
ALTER TABLE payments ADD CONSTRAINT payments_gateway_check CHECK (gateway IN ('vnpay', 'momo', 'zalopay', 'dvcqg'));
ALTER TABLE payments DROP CONSTRAINT payments_last_answer_check;
ALTER TABLE payments ADD CONSTRAINT payments_last_answer_check
    CHECK (last_answer IN ('status', 'unusable', 'undecided'));

-- The gateway's own receipt of a paid payment (DVCQG GET_BILL), kept with its evidence: the
-- exact bytes fetched (a PDF, from the answer itself or from the UrlBienLai it named), their
-- hash and type, the request sent. A row is 'pending' until fetched, retried with backoff.
CREATE TABLE gateway_receipts (
    payment_id      TEXT PRIMARY KEY REFERENCES payments (payment_id),
    gateway         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'fetched')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    request         TEXT,
    content_type    TEXT,
    body            BYTEA,
    sha256          TEXT,
    source_url      TEXT,
    detail          TEXT,
    fetched_at      TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    CHECK ((state = 'fetched') = (body IS NOT NULL))
);
CREATE INDEX gateway_receipts_due ON gateway_receipts (state, next_attempt_at);
