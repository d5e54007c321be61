package server

import (
	"context"
	"database/sql"
	"errors"
	"testing"
)

// A lock (or a required reset) committed after a login's password check but
// before its session is made still refuses the session: startSession reads
// the account again inside the login's own transaction.
func TestSessionRefusedForAccountLockedMeanwhile(t *testing.T) {
	for _, tc := range []struct {
		column string
		want   *problem
	}{
		{"locked", errAccountLocked},
		{"must_reset", errResetRequired},
	} {
		t.Run(tc.column, func(t *testing.T) {
			e := newEnv(t)
			e.register("alice", "alice@example.com")
			var uid int64
			if err := e.srv.st.db.QueryRow("SELECT id FROM users WHERE username = 'alice'").Scan(&uid); err != nil {
				t.Fatal(err)
			}
			// The admin's change lands after the password was checked.
			if _, err := e.srv.st.db.Exec("UPDATE users SET "+tc.column+" = 1 WHERE id = ?", uid); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			err := e.srv.st.tx(ctx, func(tx *sql.Tx) error {
				_, err := e.srv.startSession(ctx, tx, uid, "test")
				return err
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("startSession on a %s account: %v, want %v", tc.column, err, tc.want)
			}
			var n int
			e.srv.st.db.QueryRow("SELECT count(*) FROM sessions WHERE user_id = ?", uid).Scan(&n)
			if n != 0 {
				t.Fatalf("%d sessions made", n)
			}
		})
	}
}

// A session id is typed as a command argument (latch admin sessions revoke
// ID), so it must never begin with '-', which the command line reads as a
// flag. With base64url ids one in 64 did; 400 ids find that 99.8% of the time.
func TestSessionIDIsNeverAFlag(t *testing.T) {
	e := newEnv(t)
	e.register("alice", "alice@example.com")
	var uid int64
	if err := e.srv.st.db.QueryRow("SELECT id FROM users WHERE username = 'alice'").Scan(&uid); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 400; i++ {
		err := e.srv.st.tx(ctx, func(tx *sql.Tx) error {
			ss, err := e.srv.startSession(ctx, tx, uid, "test")
			if err == nil && (ss.ID == "" || ss.ID[0] == '-') {
				t.Fatalf("session id %q reads as a flag", ss.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
