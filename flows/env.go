package flows

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// ErrNoProfile means no profile was named and none is current.
var ErrNoProfile = errors.New("no profile selected")

// ErrUnknownProfile means a profile was named that does not exist: the
// name is wrong (a usage error), whatever the sessions of the others.
var ErrUnknownProfile = errors.New("no such profile")

// Env is what the account flows share: latch's home directory, the vault
// holding the secrets (and why it was chosen), a clock, and how to reach a
// server. The CLI and the TUI each build one and pass it to every flow.
type Env struct {
	Home    string
	Secrets vault.Secrets
	Vault   vault.Choice
	// Cache is the session cache (kernel keyring or latch agent) that keeps
	// the unlocked vault and current access tokens between processes; nil
	// when there is none.
	Cache vault.Cache
	// Warn, when set, is told of trouble that did not stop a command (a
	// rotation the vault could not save, kept in the cache instead).
	Warn func(msg string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Wait returns after d on the clock of Now, or with ctx's error; nil
	// means a timer. Tests that set Now set Wait to move their clock.
	Wait func(ctx context.Context, d time.Duration) error
	// Progress, when set, is told what a flow is waiting for (the next
	// TOTP time step), so that the user is not left looking at nothing.
	Progress func(msg string)
	// Client returns an API client for a server URL; nil means client.New
	// with default options.
	Client func(server string) (*client.Client, error)
	// Discover sets up an OpenID provider and latch's client there (by
	// discovery, or from the endpoints cfg gives); nil means
	// client.NewProvider with default options. Set it with the same Options
	// (--insecure, timeout) as Client, and cfg.CAFile as Options.CAFile.
	Discover func(ctx context.Context, cfg client.ProviderConfig) (*client.Provider, error)
	// Trace, when set, is told of each step of a flow and each check it
	// makes (state, iss, nonce, PKCE…), redacted; the HTTP exchanges reach
	// it through client.Options.Trace, set by whoever builds Client and
	// Discover.
	Trace client.Tracer
	// Forward, when set, hands out access tokens held elsewhere (a latch
	// agent forwarded over SSH) for profiles this machine does not have.
	Forward TokenSource

	// profiles keeps the profiles file between the steps of a command (open
	// the vault, pick the profile…), read again once it changes; nil (an
	// Env built by hand) reads it every time. A pointer, so that a copy of
	// the Env shares it rather than copying its lock.
	profiles *vault.ConfigCache
}

// VaultOptions says how OpenEnv picks the vault.
type VaultOptions struct {
	// Mode is auto, keyring, file or memory ("" = auto).
	Mode string
	// Passphrase returns the file vault's passphrase when it must be
	// unlocked; an error wrapping vault.ErrLocked means nobody can be asked.
	Passphrase func() ([]byte, error)
	// Cache is the session cache, or nil.
	Cache vault.Cache
}

// OpenEnv opens latch's home and vault. In auto mode the first run probes the
// keyring and remembers the outcome in the profiles file; later runs reopen
// the remembered backend without probing, so that secrets are always looked
// for where they were put, and a keyring that stops working is reported as
// such rather than silently replaced by another store.
func OpenEnv(ctx context.Context, home string, opts VaultOptions) (*Env, error) {
	// The Env exists before its vault so that the profiles file read here
	// is the one the command's next steps find in its cache.
	e := &Env{Home: home, Cache: opts.Cache, profiles: new(vault.ConfigCache)}
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	mode := opts.Mode
	if mode == "" {
		mode = vault.ModeAuto
	}
	vo := vault.Options{Passphrase: opts.Passphrase, Cache: opts.Cache}
	// A keyring that once timed out is probed again while the file vault
	// it fell back to holds nothing: nothing can be lost by moving.
	remembered := cfg.Vault != nil && !(cfg.Vault.Retry && !vault.FileVaultExists(home))
	if mode == vault.ModeAuto && remembered {
		s, err := vault.Reopen(*cfg.Vault, home, vo)
		if err != nil {
			return nil, err
		}
		e.Secrets, e.Vault = s, *cfg.Vault
		e.Vault.Reason += " (remembered from the first run; choose another with --vault)"
		return e, nil
	}
	if mode == vault.ModeKeyring && (cfg.KeyringChecked || (cfg.Vault != nil && cfg.Vault.Backend == vault.ModeKeyring)) {
		// The keyring was probed once already; a keyring that stopped
		// working shows up as a classified error on first use.
		s, err := vault.Reopen(vault.Choice{Backend: vault.ModeKeyring}, home, vo)
		if err != nil {
			return nil, err
		}
		e.Secrets, e.Vault = s, vault.Choice{Backend: vault.ModeKeyring, Reason: "system keyring requested"}
		return e, nil
	}
	s, choice, err := vault.Open(ctx, mode, home, vo)
	if err != nil {
		return nil, err
	}
	switch mode {
	case vault.ModeAuto:
		err = vault.UpdateConfig(ctx, home, func(c *vault.Config) error {
			if c.Vault == nil || (c.Vault.Retry && !vault.FileVaultExists(home)) {
				c.Vault = &choice
			}
			return nil
		})
	case vault.ModeKeyring:
		err = vault.UpdateConfig(ctx, home, func(c *vault.Config) error {
			c.KeyringChecked = true
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("remember the vault choice: %w", err)
	}
	e.Secrets, e.Vault = s, choice
	return e, nil
}

// Tokens returns the token manager over this Env's vault.
func (e *Env) Tokens() *TokenManager {
	return &TokenManager{Secrets: e.Secrets, Dir: e.Home, Now: e.Now, Cache: e.Cache, Warn: e.Warn}
}

func (e *Env) client(server string) (*client.Client, error) {
	if e.Client != nil {
		return e.Client(server)
	}
	return client.New(server, client.Options{})
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Config returns the profiles file: read once per Env from OpenEnv, and
// again only when the file changed since (see vault.ConfigCache). The copy
// is the caller's; a change to the file goes through vault.UpdateConfig,
// which reads it afresh under its lock.
func (e *Env) Config() (*vault.Config, error) {
	if e.profiles == nil {
		return vault.LoadConfig(e.Home)
	}
	return e.profiles.Load(e.Home)
}

// Profile resolves which profile a command acts on: name when given, else
// the current one, else the only one. The error for none matches
// ErrNoProfile and ErrLoginRequired.
func (e *Env) Profile(name string) (vault.Profile, error) {
	cfg, err := e.Config()
	if err != nil {
		return vault.Profile{}, err
	}
	return pickProfile(cfg, name)
}

func pickProfile(cfg *vault.Config, name string) (vault.Profile, error) {
	switch {
	case name != "":
		p, err := cfg.Get(name)
		if err != nil {
			// It matches ErrLoginRequired too, as it always has, for the
			// callers (the interface) that offer a login for it.
			e := unknownProfile(cfg, name)
			e.loginRequired = true
			return p, e
		}
		return p, nil
	case cfg.Current != "":
		return cfg.Get(cfg.Current)
	case len(cfg.Profiles) == 1:
		return cfg.Profiles[0], nil
	case len(cfg.Profiles) == 0:
		return vault.Profile{}, fmt.Errorf("%w: you are not logged in anywhere; run latch login --server URL, or latch login --issuer URL --client-id ID for an OpenID provider: %w",
			ErrNoProfile, ErrLoginRequired)
	default:
		return vault.Profile{}, fmt.Errorf("%w: %d profiles and none is current; pick one with --profile NAME or latch profile use NAME: %w",
			ErrNoProfile, len(cfg.Profiles), ErrLoginRequired)
	}
}

// unknownProfile says that no profile is called name, which ones there are,
// and how to make a new one.
func unknownProfile(cfg *vault.Config, name string) *unknownProfileError {
	names := make([]string, 0, len(cfg.Profiles))
	for _, p := range cfg.Profiles {
		names = append(names, p.Name)
	}
	known := "there are no profiles yet"
	if len(names) > 0 {
		known = "the profiles are " + strings.Join(names, ", ")
	}
	return &unknownProfileError{msg: fmt.Sprintf("no profile named %q (%s); to make it, run latch login --profile %s",
		name, known, name)}
}

type unknownProfileError struct {
	msg           string
	loginRequired bool
}

func (e *unknownProfileError) Error() string { return e.msg }
func (e *unknownProfileError) Is(target error) bool {
	return target == ErrUnknownProfile || (e.loginRequired && target == ErrLoginRequired)
}

// ProfileName picks the name for a new login to server as username: the
// existing profile for that pair, else "default" for the very first one,
// else "username@host".
func ProfileName(cfg *vault.Config, server, username string) string {
	for _, p := range cfg.Profiles {
		if p.Kind == vault.KindAccount && sameServer(p.Server, server) && strings.EqualFold(p.Username, username) {
			return p.Name
		}
	}
	if len(cfg.Profiles) == 0 {
		return "default"
	}
	host := server
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		host = u.Host
	}
	name := username + "@" + strings.NewReplacer(":", "-", "[", "", "]", "").Replace(host)
	if vault.ValidateName(name) != nil {
		return "profile" + fmt.Sprint(len(cfg.Profiles)+1)
	}
	return name
}

func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// ServerInfo reads a server's public policy (GET /auth/config): the TUI's
// "add a server" and its signup form use it.
func (e *Env) ServerInfo(ctx context.Context, server string) (*client.AuthConfig, error) {
	c, err := e.client(server)
	if err != nil {
		return nil, err
	}
	return c.Config(ctx)
}
