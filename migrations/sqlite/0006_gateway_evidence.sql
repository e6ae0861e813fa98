-- Gateway messages, status queries and portal events after issue 14.
-- SQLite dialect; migrations/postgres/0006_gateway_evidence.sql is the same for PostgreSQL.

-- How each gateway message was authenticated (SPEC §6.5): signature_current or
-- signature_previous (a gateway signature and the secret that verified it), tls_channel (an
-- unsigned status answer to our request over TLS: MoMo's and ZaloPay's), settlement_approval (a
-- settlement line two finance users approved), or none (a bad or missing signature, a body over
-- FEERECON_MAX_BODY, a gateway not enabled here, an unsigned answer over plain HTTP).
-- signature_valid and key_used stay, and now say only what a signature said.
ALTER TABLE callbacks ADD COLUMN authenticated_by TEXT NOT NULL DEFAULT 'none'
    CHECK (authenticated_by IN ('signature_current', 'signature_previous', 'tls_channel', 'settlement_approval', 'none'));
-- A body over FEERECON_MAX_BODY is kept as its first FEERECON_MAX_BODY bytes; this is its whole
-- length (NULL when the body was kept whole).
ALTER TABLE callbacks ADD COLUMN body_length INTEGER;

-- Rows written before: MoMo's and ZaloPay's status answers were recorded as signed with the
-- current key, which they are not (they are unsigned; they came over the endpoint's channel), and
-- settlement proofs with a 'settlement' key. The raw messages are untouched; their labels are
-- corrected.
UPDATE callbacks SET authenticated_by = CASE
    WHEN source = 'settlement' THEN 'settlement_approval'
    WHEN source = 'status_query' AND gateway IN ('momo', 'zalopay') AND key_used IS NOT NULL THEN 'tls_channel'
    WHEN key_used = 'current' THEN 'signature_current'
    WHEN key_used = 'previous' THEN 'signature_previous'
    ELSE 'none'
END;
UPDATE callbacks SET signature_valid = 0, key_used = NULL
WHERE authenticated_by IN ('tls_channel', 'settlement_approval');

-- Status queries (SPEC §6.2): how many were made for a payment, when the next one is due (the
-- interval doubles per query), and what the last answer that came said: 'status' (it stated the
-- payment's status) or 'unusable' (an API error, an answer that could not be verified or read, a
-- success with another amount). A payment expires only when no answer came or the last one
-- stated a status; otherwise, past its TTL and the query limit, it is flagged unresolved_pending.
ALTER TABLE payments ADD COLUMN query_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN next_query_at TEXT;
ALTER TABLE payments ADD COLUMN last_answer TEXT CHECK (last_answer IN ('status', 'unusable'));

-- Portal events carry what the case owes beside what was paid, and the payment's flags (SPEC
-- §6.6): a portal treats a case as paid only when amount equals citizen_due and flags is empty.
-- Events written before take citizen_due from their payment's quote and the payment's flags as
-- they stand now.
ALTER TABLE outbox ADD COLUMN citizen_due INTEGER;
ALTER TABLE outbox ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
UPDATE outbox SET
    citizen_due = COALESCE(
        (SELECT json_extract(p.quote, '$.citizen_due') FROM payments p WHERE p.payment_id = outbox.payment_id),
        amount),
    flags = COALESCE(
        (SELECT json_group_array(flag) FROM (SELECT flag FROM payment_flags f WHERE f.payment_id = outbox.payment_id ORDER BY flag)),
        '[]');
