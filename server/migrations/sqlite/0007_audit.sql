-- The audit log (issue 16): one row per auth event, written in the
-- transaction of the change it records. Append-only: the triggers refuse
-- every UPDATE, and every DELETE of an event newer than the retention
-- cutoff, which only the janitor's pruning moves (audit_prune).
-- user_id and actor_id are not foreign keys, and the names are copied:
-- the record outlives the account.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms    INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    user_id    INTEGER,
    username   TEXT    NOT NULL DEFAULT '',
    actor_id   INTEGER,
    actor_name TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL DEFAULT '',
    request_id TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user ON audit_events(user_id, id);
CREATE INDEX audit_events_time ON audit_events(time_ms);

CREATE TABLE audit_prune (
    one       INTEGER PRIMARY KEY CHECK (one = 1),
    cutoff_ms INTEGER NOT NULL
);
INSERT INTO audit_prune (one, cutoff_ms) VALUES (1, 0);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.time_ms >= (SELECT cutoff_ms FROM audit_prune WHERE one = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: only events past the retention are deleted');
END;
