package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// AuditEvent is one entry of latch serve's audit log: who did what, when,
// from where. Detail is the event type's own data (never a secret).
type AuditEvent struct {
	ID        string          `json:"id"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type"`
	UserID    string          `json:"user_id,omitempty"`
	Username  string          `json:"username,omitempty"`
	ActorID   string          `json:"actor_id,omitempty"`
	ActorName string          `json:"actor_name,omitempty"`
	IP        string          `json:"ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	SessionID string          `json:"session_id,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
}

// EventQuery selects audit events. User, Type, Since and Until apply to
// AdminEvents only; Before is the Next cursor of the previous page.
type EventQuery struct {
	User   string // an account id or name
	Type   string
	Since  time.Time
	Until  time.Time
	Limit  int
	Before string
}

// EventPage is one page of events, newest first; Next is the cursor of the
// following page, empty at the end.
type EventPage struct {
	Events []AuditEvent `json:"events"`
	Next   string       `json:"next"`
}

type eventWire struct {
	ID        flexID          `json:"id"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type"`
	UserID    *flexID         `json:"user_id"`
	Username  string          `json:"username"`
	ActorID   *flexID         `json:"actor_id"`
	ActorName string          `json:"actor_name"`
	IP        string          `json:"ip"`
	UserAgent string          `json:"user_agent"`
	SessionID *flexID         `json:"session_id"`
	RequestID string          `json:"request_id"`
	Detail    json.RawMessage `json:"detail"`
}

// optID is an optional id: absent, null or 0 (the server's "none").
func optID(id *flexID) string {
	if id == nil || *id == "0" {
		return ""
	}
	return string(*id)
}

// Events lists the token's own account's events.
func (c *Client) Events(ctx context.Context, accessToken string, q EventQuery) (*EventPage, error) {
	return c.events(ctx, "/auth/events", accessToken, url.Values{}, q)
}

// AdminEvents lists every account's events, filtered. Needs audit:read.
func (c *Client) AdminEvents(ctx context.Context, accessToken string, q EventQuery) (*EventPage, error) {
	v := url.Values{}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	return c.events(ctx, "/admin/events", accessToken, v, q)
}

func (c *Client) events(ctx context.Context, path, accessToken string, v url.Values, q EventQuery) (*EventPage, error) {
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var w struct {
		Events *[]eventWire `json:"events"`
		Next   string       `json:"next"`
	}
	r, err := c.bearerCall(ctx, http.MethodGet, path, nil, accessToken, http.StatusOK, &w)
	if err != nil {
		return nil, err
	}
	if w.Events == nil {
		return nil, shapeError(r, "has no events list")
	}
	page := &EventPage{Events: make([]AuditEvent, 0, len(*w.Events)), Next: w.Next}
	for _, ew := range *w.Events {
		if ew.Type == "" || ew.Time.IsZero() {
			return nil, shapeError(r, "has an event without type or time")
		}
		detail := ew.Detail
		if string(detail) == "null" {
			detail = nil
		}
		page.Events = append(page.Events, AuditEvent{ID: string(ew.ID), Time: ew.Time, Type: ew.Type,
			UserID: optID(ew.UserID), Username: ew.Username, ActorID: optID(ew.ActorID), ActorName: ew.ActorName,
			IP: ew.IP, UserAgent: ew.UserAgent, SessionID: optID(ew.SessionID), RequestID: ew.RequestID, Detail: detail})
	}
	return page, nil
}
