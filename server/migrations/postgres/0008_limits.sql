-- Shared abuse limits (issue 17): the per-IP, per-account and mail token
-- buckets and the login/MFA backoff, kept here when several instances share
-- one PostgreSQL database so that a limit holds for the whole deployment
-- (ratelimit_db.go). A SQLite server keeps them in memory; the tables exist
-- here too so that both schemas stay the same and the statements are tested
-- on both. Keys are the 16-byte hashes of limitKey, never an IP or a name.
CREATE TABLE rate_buckets (
    name    TEXT    NOT NULL, -- the limiter: ip, account, mail
    key     BYTEA   NOT NULL, -- limitKey(endpoint|caller)
    full_ms BIGINT  NOT NULL, -- unix ms at which the bucket is full again
    ok      BIGINT  NOT NULL, -- whether the last call took a token
    PRIMARY KEY (name, key)
);
CREATE INDEX rate_buckets_full ON rate_buckets (full_ms);

CREATE TABLE auth_backoff (
    key      BYTEA   PRIMARY KEY, -- limitKey(id:identifier | uid:N | mfa:uid:N)
    failures BIGINT  NOT NULL,    -- in a row; a success deletes the row
    until_ms BIGINT  NOT NULL,    -- unix ms before which no attempt is let through
    last_ms  BIGINT  NOT NULL     -- unix ms of the last failure
);
CREATE INDEX auth_backoff_last ON auth_backoff (last_ms);
