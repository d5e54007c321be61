package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/flows"
)

type eventsOptions struct {
	all, asJSON      bool
	since, typ, user string
	limit            int
	now              func() time.Time
}

func newEventsCmd(g *globals) *cobra.Command {
	o := &eventsOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the audit log: your sign-ins, failures, revocations and changes",
		Long: `Show the latch server's audit events for your account, newest first: sign-ups,
logins and failed logins, two-factor steps, refresh-token reuse, logouts,
revoked sessions, password and email changes, role changes and locks. Each
has the time, the client IP, the user agent, the session and the request id.

--all shows every account's events and needs the audit:read permission (the
admin role); --user and --type filter them. --since takes a duration back
from now (90m, 24h, 7d) or a time (RFC 3339, or a date 2006-01-02).`,
		Example: `  latch events
  latch events --since 7d --type login.failed
  latch events --all --user alice --json`,
		Args: cobra.NoArgs,
		RunE: g.withEnv(func(ctx context.Context, e *flows.Env, _ []string) error {
			return eventsRun(ctx, g, e, o)
		}),
	}
	cmd.Flags().BoolVar(&o.all, "all", false, "every account's events (needs audit:read)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&o.since, "since", "", "only events after this: a duration back (24h, 7d) or a time")
	cmd.Flags().StringVar(&o.typ, "type", "", "only events of this type (login.failed, session.revoked, …)")
	cmd.Flags().StringVar(&o.user, "user", "", "only this account's events, by name or id (with --all)")
	cmd.Flags().IntVar(&o.limit, "limit", 50, "at most this many events")
	return cmd
}

// maxEventPages bounds the pages one command reads, whatever the server's
// page size.
const maxEventPages = 100

// eventsPageMax is the most events asked for at once; latch serve refuses
// a larger page, and --limit beyond it reads several.
const eventsPageMax = 200

func eventsRun(ctx context.Context, g *globals, e *flows.Env, o *eventsOptions) error {
	if o.user != "" && !o.all {
		return usagef("--user needs --all: without it latch events shows only your own account's events")
	}
	if o.limit < 1 {
		return usagef("--limit must be at least 1")
	}
	q := client.EventQuery{User: o.user, Type: o.typ}
	if o.since != "" {
		t, err := parseSince(o.since, o.now())
		if err != nil {
			return usageError{err}
		}
		q.Since = t
	}
	var events []client.AuditEvent
	for range maxEventPages {
		q.Limit = min(o.limit-len(events), eventsPageMax)
		page, err := e.Events(ctx, g.profile, o.all, q)
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			// The own-events route takes no filters: apply them here.
			if (q.Type != "" && ev.Type != q.Type) || (!q.Since.IsZero() && ev.Time.Before(q.Since)) {
				continue
			}
			events = append(events, ev)
		}
		oldest := len(page.Events) > 0 && !q.Since.IsZero() && page.Events[len(page.Events)-1].Time.Before(q.Since)
		if page.Next == "" || len(events) >= o.limit || oldest {
			break
		}
		q.Before = page.Next
	}
	if len(events) > o.limit {
		events = events[:o.limit]
	}
	if o.asJSON {
		return writeJSON(g.out, struct {
			Events []client.AuditEvent `json:"events"`
		}{events})
	}
	printEvents(g.out, events, o.all)
	return nil
}

// parseSince reads a duration back from now (with d for days) or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a duration (90m, 24h, 7d) nor a time (2026-11-30 or 2026-11-30T08:00:00Z)", s)
}

func printEvents(w io.Writer, events []client.AuditEvent, all bool) {
	if len(events) == 0 {
		fmt.Fprintln(w, "No events.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "TIME\tEVENT\tIP\tBY\tDETAIL"
	if all {
		head = "TIME\tEVENT\tUSER\tIP\tBY\tDETAIL"
	}
	fmt.Fprintln(tw, head)
	for _, ev := range events {
		user := ""
		if all {
			user = orDash(ev.Username) + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%s\n", ev.Time.Local().Format(time.DateTime), ev.Type, user, orDash(ev.IP),
			orDash(ev.ActorName), detailText(ev.Detail))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// detailText is an event's detail as key=value pairs, or "-".
func detailText(raw []byte) string {
	s := strings.Trim(string(raw), "{}")
	if s == "" || s == "null" {
		return "-"
	}
	return strings.NewReplacer(`":"`, "=", `"`, "", ",", " ").Replace(s)
}
