-- Users: the same data as the seed's User table, plus MFA state.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    password_hash TEXT    NOT NULL,
    mfa_enabled   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A session is one refresh-token family: every rotation stays in it, and
-- revoking it ends every token it ever issued.
CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL, -- absolute end (--session-max)
    user_agent     TEXT    NOT NULL DEFAULT '',
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Times are Unix seconds except where a name says _ms.
-- Refresh tokens are stored only as SHA-256 hashes. successor_enc holds the
-- successor token encrypted with the server key, only for the reuse grace
-- window, so an idempotent retry can be answered; the janitor clears it.
CREATE TABLE refresh_tokens (
    hash           BLOB    PRIMARY KEY,
    session_id     TEXT    NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL, -- idle end (--refresh-ttl), capped by the session
    used_at_ms     INTEGER, -- milliseconds: the grace window may be short
    successor_hash BLOB,
    successor_enc  BLOB
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

-- Signing keys for access tokens, published as a JWK set.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    alg         TEXT    NOT NULL,
    private_jwk BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1
);

-- Second-step challenges handed out by login when the account has MFA.
CREATE TABLE mfa_challenges (
    hash       BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    user_agent TEXT    NOT NULL DEFAULT ''
);
