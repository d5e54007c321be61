package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// handleEvents is GET /auth/events: the caller's own events, newest first.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, a *auth) {
	q := r.URL.Query()
	errs := fieldErrors{}
	f := eventFilter{limit: pageLimit(q.Get("limit"), errs), before: cursor(q.Get("before"), errs), userID: a.UserID, own: true}
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	s.listEvents(w, r, f)
}

// handleAdminEvents is GET /admin/events: every account's events, filtered
// by user (id or name), type and time (audit:read).
func (s *Server) handleAdminEvents(w http.ResponseWriter, r *http.Request, _ *auth) {
	q := r.URL.Query()
	errs := fieldErrors{}
	f := eventFilter{limit: pageLimit(q.Get("limit"), errs), before: cursor(q.Get("before"), errs),
		user: strings.TrimSpace(q.Get("user")), typ: q.Get("type")}
	f.since = rfc3339(q.Get("since"), "since", errs)
	f.until = rfc3339(q.Get("until"), "until", errs)
	if len(errs) > 0 {
		s.writeError(w, r, validationProblem(errs))
		return
	}
	s.listEvents(w, r, f)
}

type eventFilter struct {
	limit        int
	before       int64 // 0: from the newest
	userID       int64 // the caller's own (/auth/events)
	own          bool  // /auth/events: another actor's address and user agent are not the caller's to read
	user, typ    string
	since, until time.Time
}

const maxEventPage = 200

func pageLimit(v string, errs fieldErrors) int {
	if v == "" {
		return 50
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxEventPage {
		errs["limit"] = "must be a number from 1 to 200"
	}
	return n
}

// cursor reads before: the id of the last event of the previous page, as
// the "next" of that page gave it.
func cursor(v string, errs fieldErrors) int64 {
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		errs["before"] = "must be the next cursor of a previous page"
	}
	return n
}

func rfc3339(v, field string, errs fieldErrors) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		errs[field] = "must be an RFC 3339 time, like 2026-01-02T15:04:05Z"
	}
	return t
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, f eventFilter) {
	where, args := []string{"1 = 1"}, []any{}
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if f.before > 0 {
		add("id < ?", f.before)
	}
	if f.userID != 0 {
		add("user_id = ?", f.userID)
	}
	if f.user != "" {
		if id, err := strconv.ParseInt(f.user, 10, 64); err == nil {
			add("user_id = ?", id)
		} else {
			// By name: the account's id while it exists, and the name the
			// events recorded after it is gone.
			add("(user_id = (SELECT id FROM users WHERE username = ?) OR username = ?)", f.user, f.user)
		}
	}
	if f.typ != "" {
		add("type = ?", f.typ)
	}
	if !f.since.IsZero() {
		add("time_ms >= ?", f.since.UnixMilli())
	}
	if !f.until.IsZero() {
		add("time_ms < ?", f.until.UnixMilli())
	}
	// One more than the page, to know whether there is a next one.
	rows, err := s.st.db.QueryContext(r.Context(), `SELECT id, time_ms, type, coalesce(user_id, 0), username,
		coalesce(actor_id, 0), actor_name, ip, user_agent, session_id, request_id, detail
		FROM audit_events WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, append(args, f.limit+1)...)
	list, err := scanRows(rows, err, func(row rowScanner) (e eventJSON, err error) {
		var ms int64
		var detail string
		if err := row.Scan(&e.ID, &ms, &e.Type, &e.UserID, &e.Username, &e.ActorID, &e.ActorName,
			&e.IP, &e.UserAgent, &e.SessionID, &e.RequestID, &detail); err != nil {
			return e, err
		}
		e.Time = time.UnixMilli(ms).UTC()
		// An admin's action on the account is the account's event, but
		// the client it came from is the admin's: that is audit:read's.
		if f.own && e.ActorID != 0 && e.ActorID != e.UserID {
			e.IP, e.UserAgent = "", ""
		}
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil || e.Detail == nil {
			e.Detail = map[string]string{}
		}
		return e, nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	next := ""
	if len(list) > f.limit {
		list = list[:f.limit]
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": list, "next": next})
}
