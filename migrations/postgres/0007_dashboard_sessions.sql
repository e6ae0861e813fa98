-- Dashboard login sessions (SPEC §4.1: people use the dashboard's login session).
-- PostgreSQL dialect; migrations/sqlite/0007_dashboard_sessions.sql is the same for SQLite.

-- One login. The browser holds the session id (256 random bits) in an HttpOnly cookie; only its
-- SHA-256 is stored, so a copy of the database opens no session. A session is usable while
-- ended_at is NULL (no logout), expires_at (the absolute end, set at login) is in the future and
-- last_seen_at is recent enough (the idle limit, checked by the service). The user's role is read
-- from users on every request, never copied here.
CREATE TABLE dashboard_sessions (
    session_sha256 TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    created_at     TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    ended_at       TIMESTAMPTZ
);
-- Sweeping expired sessions at login.
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
