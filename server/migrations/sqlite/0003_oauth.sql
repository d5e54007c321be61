-- OpenID provider (issue 6). A grant to an OAuth client is a session like any
-- other (one refresh-token family, listed and revoked by the account API);
-- these columns say which client holds it and what it may do. client_id is
-- NULL for a login through the account API.
ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN scopes    TEXT    NOT NULL DEFAULT ''; -- space-separated
ALTER TABLE sessions ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN amr       TEXT    NOT NULL DEFAULT ''; -- space-separated

-- An authorization in progress: a browser's authorization request (kind
-- 'code') or a device authorization (kind 'device'), from its start through
-- the login pages to the tokens. Authorization and device codes are stored
-- only as SHA-256 hashes; the user code is short-lived and typed by people.
CREATE TABLE oauth_requests (
    id               TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL,
    client_id        TEXT    NOT NULL,
    scopes           TEXT    NOT NULL, -- space-separated
    redirect_uri     TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL DEFAULT '',
    nonce            TEXT    NOT NULL DEFAULT '',
    code_challenge   TEXT    NOT NULL DEFAULT '',
    challenge_method TEXT    NOT NULL DEFAULT '',
    device_code_hash BLOB    UNIQUE,
    user_code        TEXT    UNIQUE,
    code_hash        BLOB    UNIQUE,
    code_expires_at  INTEGER,
    code_used_at     INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    -- login progress: 'login', then 'mfa' (password right, code pending),
    -- 'consent', and finally 'approved' or 'denied'
    stage            TEXT    NOT NULL DEFAULT 'login',
    user_id          INTEGER REFERENCES users(id) ON DELETE CASCADE,
    browser          BLOB, -- SHA-256 of the browser cookie that passed the password step
    auth_time        INTEGER NOT NULL DEFAULT 0,
    amr              TEXT    NOT NULL DEFAULT '',
    consumed_at      INTEGER, -- device: when its tokens were handed out
    session_id       TEXT     -- the session its tokens opened
);
CREATE INDEX oauth_requests_expiry ON oauth_requests(expires_at);
