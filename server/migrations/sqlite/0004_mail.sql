-- The outbox (issue 15): mail is queued here in the same transaction as the
-- change it reports, and a worker sends it afterwards, so a dead SMTP server
-- never blocks a request and a restart loses no mail. A row is deleted once
-- sent. The recipient and the template data are sealed with the server key:
-- a reset link is a credential until it is used.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL, -- the template: verify-email, password-reset, …
    sealed     BLOB    NOT NULL, -- JSON {to, data}, sealed (AD: "outbox " + kind)
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL, -- unix seconds: due, or leased until (see outbox.go)
    last_error TEXT    NOT NULL DEFAULT '' -- without secrets, for operators
);
CREATE INDEX outbox_due ON outbox (next_at);
