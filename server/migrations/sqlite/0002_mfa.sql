-- TOTP second factor. A row exists from POST /auth/mfa/setup on; the account
-- has MFA once users.mfa_enabled is set, and until then the row is an
-- enrolment waiting for its first code (a new setup replaces it).
CREATE TABLE mfa_totp (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_enc BLOB    NOT NULL, -- the base32 secret sealed with the server key, bound to user_id
    created_at INTEGER NOT NULL,
    last_step  INTEGER NOT NULL DEFAULT 0 -- newest 30 s time step accepted: a code of it or an earlier one is a replay
);

-- Backup codes, stored only as keyed hashes (HMAC-SHA256 under a key derived
-- from the server key). Using a code deletes its row.
CREATE TABLE mfa_backup_codes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;

-- Disabling MFA drops the user's open challenges.
CREATE INDEX mfa_challenges_user ON mfa_challenges(user_id);
