package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

// statusJSON is `latch status --json`. Times are RFC 3339; nothing secret.
type statusJSON struct {
	Vault    vaultJSON     `json:"vault"`
	Profiles []profileJSON `json:"profiles"`
}

type vaultJSON struct {
	Backend string `json:"backend"`
	Reason  string `json:"reason"`
	// State is the file vault's lock, "locked" or "unlocked"; "" for others.
	State string `json:"state,omitempty"`
}

type profileJSON struct {
	Name             string     `json:"name"`
	Current          bool       `json:"current"`
	Kind             string     `json:"kind"`
	Server           string     `json:"server,omitempty"`
	Username         string     `json:"username,omitempty"`
	Issuer           string     `json:"issuer,omitempty"`
	ClientID         string     `json:"client_id,omitempty"`
	State            string     `json:"state"`
	MFA              bool       `json:"mfa"`
	Email            string     `json:"email,omitempty"`
	EmailVerified    *bool      `json:"email_verified,omitempty"`
	Roles            []string   `json:"roles,omitempty"`
	BackupCodesLeft  *int       `json:"backup_codes_left,omitempty"`
	Error            string     `json:"error,omitempty"`
	AccessExpiresAt  *time.Time `json:"access_expires_at,omitempty"`
	RefreshExpiresAt *time.Time `json:"refresh_expires_at,omitempty"`
	LoggedInAt       *time.Time `json:"logged_in_at,omitempty"`
	IssuedAt         *time.Time `json:"issued_at,omitempty"`
	Rotations        int        `json:"rotations"`
	NextRotationAt   *time.Time `json:"next_rotation_at,omitempty"`
	// RefusedAt is when the provider refused the session (state "refused").
	RefusedAt *time.Time `json:"refused_at,omitempty"`
}

type statusOptions struct {
	g    *globals
	JSON bool
	All  bool
	// now is the clock the times are told against; nil means the Env's.
	now func() time.Time
}

func newStatusCmd(g *globals) *cobra.Command {
	o := &statusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the profiles, their sessions and the vault in use",
		Long: `Show what latch knows locally: the profile (or every profile with --all),
whether it holds a session, when the access token expires and when it will
next rotate, and which vault keeps the secrets and why. It does not call the
server or refresh anything.

Exit code 0 when the profile is logged in, 4 when it is not, 5 when the
vault is locked (the session may be fine: latch vault unlock), 1 when the
vault could not be read for another reason.`,
		Example: `  latch status
  latch status --all
  latch status --json | jq -r .profiles[0].state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return statusRun(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.All, "all", false, "show every profile")
	return cmd
}

func statusRun(ctx context.Context, o *statusOptions) error {
	g := o.g
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	var list []flows.ProfileStatus
	if o.All {
		if list, err = e.Status(ctx); err != nil {
			return err
		}
	} else {
		st, err := e.ProfileStatus(ctx, g.profile)
		if err != nil && !errors.Is(err, flows.ErrNoProfile) {
			return err
		}
		if err == nil {
			list = []flows.ProfileStatus{st}
		}
	}
	out := statusJSON{Vault: vaultJSON{Backend: e.Vault.Backend, Reason: e.Vault.Reason}, Profiles: []profileJSON{}}
	if vs := e.VaultState(ctx); vs.Lock != nil {
		out.Vault.State = vs.Lock.State
	}
	for _, st := range list {
		out.Profiles = append(out.Profiles, toProfileJSON(st))
	}
	if o.JSON {
		if err := writeJSON(g.out, out); err != nil {
			return err
		}
	} else {
		now := time.Now
		if e.Now != nil {
			now = e.Now
		}
		if o.now != nil {
			now = o.now
		}
		printStatus(g.out, out, now())
	}
	if !o.All && len(list) > 0 && list[0].State == flows.StateUnknown {
		// The session may be fine: only the vault could not be read.
		if errors.Is(list[0].Error, vault.ErrLocked) {
			return quietLocked{}
		}
		return silentError{list[0].Error}
	}
	if !o.All && (len(list) == 0 || list[0].State != flows.StateLoggedIn) {
		return quietLoginRequired{}
	}
	return nil
}

func toProfileJSON(st flows.ProfileStatus) profileJSON {
	p := profileJSON{
		Name: st.Profile.Name, Current: st.Current, Kind: st.Profile.Kind, Server: st.Profile.Server,
		Username: st.Profile.Username, Issuer: st.Profile.Issuer, ClientID: st.Profile.ClientID, State: st.State,
		MFA: st.Profile.MFA, BackupCodesLeft: st.BackupCodesLeft,
		Email: st.Profile.Email, EmailVerified: st.Profile.EmailVerified, Roles: st.Profile.Roles,
	}
	if st.Error != nil {
		p.Error = st.Error.Error()
	}
	if t := st.Tokens; t != nil {
		p.AccessExpiresAt = timePtr(t.AccessExpiresAt)
		p.RefreshExpiresAt = timePtr(t.RefreshExpiresAt)
		p.LoggedInAt = timePtr(t.LoggedInAt)
		p.IssuedAt = timePtr(t.IssuedAt)
		p.Rotations = t.Rotations
		p.NextRotationAt = timePtr(t.RotateAt)
		p.RefusedAt = timePtr(t.RefusedAt)
	}
	return p
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// firstLogin is the advice of status and profile list before any login.
const firstLogin = "Run latch login --server URL (a latch server), " +
	"latch login --issuer URL --client-id ID (an OpenID provider), or latch signup."

var stateText = map[string]string{
	flows.StateLoggedIn:  "logged in",
	flows.StateExpired:   "session expired: log in again",
	flows.StateRefused:   "refused by the provider: log in again",
	flows.StateLoggedOut: "logged out",
	flows.StateUnknown:   "unknown",
}

func printStatus(w io.Writer, s statusJSON, now time.Time) {
	if len(s.Profiles) == 0 {
		fmt.Fprintln(w, "Not logged in: no profiles yet. "+firstLogin)
	}
	for i, p := range s.Profiles {
		if i > 0 {
			fmt.Fprintln(w)
		}
		mark := ""
		if p.Current {
			mark = " (current)"
		}
		fmt.Fprintf(w, "%s%s\n", p.Name, mark)
		if p.Server != "" {
			fmt.Fprintf(w, "  server:     %s\n", p.Server)
		}
		if p.Kind == vault.KindOIDC {
			fmt.Fprintf(w, "  issuer:     %s\n", p.Issuer)
			fmt.Fprintf(w, "  client id:  %s\n", p.ClientID)
		}
		if p.Username != "" {
			fmt.Fprintf(w, "  user:       %s\n", p.Username)
		}
		state := stateText[p.State]
		if p.RefusedAt != nil && p.State == flows.StateRefused {
			// The tokens are still saved: say when the provider ended the
			// session, so the access time below is not read as a login.
			state = fmt.Sprintf("refused by the provider %s: log in again", when(now, *p.RefusedAt))
		}
		fmt.Fprintf(w, "  state:      %s\n", state)
		if p.Email != "" {
			fmt.Fprintf(w, "  email:      %s\n", emailText(p))
		}
		if p.Kind == "account" {
			mfa := "off"
			if p.MFA {
				mfa = "on"
			}
			if p.BackupCodesLeft != nil {
				mfa += fmt.Sprintf(", %d backup codes left in the vault", *p.BackupCodesLeft)
			}
			fmt.Fprintf(w, "  two-factor: %s\n", mfa)
		}
		if len(p.Roles) > 0 {
			fmt.Fprintf(w, "  roles:      %s\n", strings.Join(p.Roles, ", "))
		}
		if p.Error != "" {
			fmt.Fprintf(w, "  error:      %s\n", p.Error)
		}
		if p.AccessExpiresAt != nil {
			fmt.Fprintf(w, "  access:     %s\n", relTime(now, *p.AccessExpiresAt, "expires ", "expired "))
		}
		if p.RefreshExpiresAt != nil {
			fmt.Fprintf(w, "  session:    %s, the idle limit\n", relTime(now, *p.RefreshExpiresAt, "expires ", "expired "))
		}
		if p.NextRotationAt != nil && p.State == flows.StateLoggedIn {
			fmt.Fprintf(w, "  rotation:   %d so far; next %s\n", p.Rotations, relTime(now, *p.NextRotationAt, "", "due now: "))
		}
		if p.LoggedInAt != nil {
			fmt.Fprintf(w, "  logged in:  %s\n", when(now, *p.LoggedInAt))
		}
	}
	fmt.Fprintf(w, "\nvault: %s — %s\n", s.Vault.Backend, s.Vault.Reason)
	if s.Vault.State == "locked" {
		fmt.Fprintln(w, "       locked: latch vault unlock (or set LATCH_VAULT_PASSPHRASE or LATCH_VAULT_IDENTITY)")
	}
}

// emailText is the address and whether it is verified, with what to do
// when it is not.
func emailText(p profileJSON) string {
	switch {
	case p.EmailVerified == nil:
		return p.Email
	case *p.EmailVerified:
		return p.Email + " (verified)"
	default:
		return p.Email + " (not verified — latch email resend)"
	}
}

// relTime prefixes when's answer with future or past: "expires in 7 days
// (Mon 7 Dec 08:04)", "expired 3s ago (today 15:04:05)".
func relTime(now, t time.Time, future, past string) string {
	if t.Before(now) {
		return past + when(now, t)
	}
	return future + when(now, t)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// quietLoginRequired exits 4 without a message: status already said why.
type quietLoginRequired struct{}

func (quietLoginRequired) Error() string { return "not logged in" }
func (quietLoginRequired) Is(target error) bool {
	return target == flows.ErrLoginRequired
}
