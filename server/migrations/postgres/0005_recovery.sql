-- Account recovery and verification (issue 15).
-- email_verified: the user proved the address by a verify-email token.
ALTER TABLE users ADD COLUMN email_verified BIGINT  NOT NULL DEFAULT 0;

-- Single-use tokens mailed to the user: purpose 'verify-email' (24 h) or
-- 'password-reset' (30 min). Stored only as SHA-256 hashes. email is the
-- address the token was mailed to: a verify-email token proves only that
-- address, and is void once the account's address has changed. Using a
-- token sets used_at with a conditional UPDATE (… AND used_at IS NULL), so
-- of two concurrent uses one wins.
CREATE TABLE account_tokens (
    hash       BYTEA    PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT 
);
CREATE INDEX account_tokens_user ON account_tokens(user_id, purpose);

-- Clients (user agent + IP, as a SHA-256 hash) an account has signed in
-- from, so that a sign-in from a new one can be reported by mail.
CREATE TABLE known_clients (
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       BYTEA    NOT NULL,
    first_seen BIGINT  NOT NULL,
    last_seen  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, hash)
);
