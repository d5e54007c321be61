package server

import (
	"fmt"
	"testing"
)

// TestAdminEndedSessionsAudited: each session an admin's change ends is
// recorded as the admin's act (endAccess through endSessions), with the
// client and request id of the admin's request, like the change itself.
func TestAdminEndedSessionsAudited(t *testing.T) {
	e := newEnv(t)
	rootID, root := e.userWithRoles("root", roleViewer, roleSuperadmin)
	bobID, _ := e.userWithRoles("bob", roleViewer)
	if r := e.auditCall("POST", fmt.Sprintf("/admin/users/%d/lock", bobID), "r-lock", root.AccessToken, nil); r.Status != 204 {
		t.Fatalf("lock: %d %s", r.Status, r.Body)
	}
	var n int
	var actor int64
	var ua, rid string
	err := e.srv.st.db.QueryRow(`SELECT count(*), max(coalesce(actor_id, 0)), max(user_agent), max(request_id) FROM audit_events
		WHERE type = ? AND user_id = ?`, evSessionRevoked, bobID).Scan(&n, &actor, &ua, &rid)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || actor != rootID || ua != "audit-test/r-lock" || rid != "r-lock" {
		t.Errorf("session.revoked events: %d, actor %d, user agent %q, request id %q; want 1, %d, audit-test/r-lock, r-lock",
			n, actor, ua, rid, rootID)
	}
}
