-- Roles and the demo resource (issue 16).
-- roles: the built-in roles; rank orders them, least privileged first. What
-- each role may do is the permission table in rbac.go (rolePerms), with
-- its copy here in role_permissions for reports and SQL access.
CREATE TABLE roles (
    name TEXT    PRIMARY KEY,
    rank INTEGER NOT NULL UNIQUE
);
INSERT INTO roles (name, rank) VALUES ('viewer', 0), ('editor', 1), ('admin', 2), ('superadmin', 3);

CREATE TABLE role_permissions (
    role       TEXT NOT NULL REFERENCES roles(name),
    permission TEXT NOT NULL,
    PRIMARY KEY (role, permission)
) WITHOUT ROWID;
INSERT INTO role_permissions (role, permission) VALUES
    ('viewer', 'notes:read'),
    ('editor', 'notes:read'), ('editor', 'notes:write'), ('editor', 'notes:delete'),
    ('admin', 'notes:read'), ('admin', 'notes:write'), ('admin', 'notes:delete'),
    ('admin', 'users:read'), ('admin', 'users:write'), ('admin', 'sessions:revoke_any'), ('admin', 'audit:read'),
    ('superadmin', 'notes:read'), ('superadmin', 'notes:write'), ('superadmin', 'notes:delete'),
    ('superadmin', 'users:read'), ('superadmin', 'users:write'), ('superadmin', 'sessions:revoke_any'),
    ('superadmin', 'audit:read'), ('superadmin', 'roles:assign');

-- An account's roles. Accounts made before this migration get viewer, as
-- new accounts do.
CREATE TABLE user_roles (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT    NOT NULL REFERENCES roles(name),
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, role)
) WITHOUT ROWID;
CREATE INDEX user_roles_role ON user_roles(role);
INSERT INTO user_roles (user_id, role, granted_at) SELECT id, 'viewer', created_at FROM users;

-- locked: an admin locked the account; its logins are refused (after the
-- password check). must_reset: an admin required a new password; logins are
-- refused until a password reset clears it.
ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN must_reset INTEGER NOT NULL DEFAULT 0;

-- The demo resource: notes, readable by every account with notes:read.
CREATE TABLE notes (
    id         INTEGER PRIMARY KEY,
    owner      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    note       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX notes_created ON notes(created_at DESC, id DESC);
