package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"
)

// Profile kinds.
const (
	KindAccount = "account" // a latch server account (username + password)
	KindOIDC    = "oidc"    // an OpenID Connect issuer and client
)

// configFile is the name of the profiles file inside Home.
const configFile = "config.json"

// maxNameLen keeps profile names short enough for prompts, keys and tables.
const maxNameLen = 64

// Profile describes one account latch can sign in to. It holds nothing
// secret: tokens live in Secrets.
type Profile struct {
	Name     string `json:"name"`
	Server   string `json:"server,omitempty"`
	Username string `json:"username,omitempty"`
	Kind     string `json:"kind"`
	Issuer   string `json:"issuer,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// MFA records whether the account had two-factor on when latch last
	// looked; the server is the authority.
	MFA bool `json:"mfa,omitempty"`
	// Email and EmailVerified record the account's address and whether it
	// was verified when latch last looked (nil: not known); the server is
	// the authority.
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	// Roles are the account's roles on the server when latch last looked
	// (least privileged first); the server is the authority.
	Roles []string `json:"roles,omitempty"`

	// How an OpenID profile's provider is reached, remembered so that a
	// refresh, a revocation and a login again use the login's settings.
	// Confidential says the client has a secret, kept in Secrets under
	// ClientSecretKey(Name), never here.
	Confidential bool                `json:"confidential,omitempty"`
	AuthMethod   string              `json:"auth_method,omitempty"`
	Audience     string              `json:"audience,omitempty"`
	Resource     []string            `json:"resource,omitempty"`
	AuthParams   map[string][]string `json:"auth_params,omitempty"`
	RedirectURL  string              `json:"redirect_url,omitempty"`
	CAFile       string              `json:"ca_file,omitempty"`
	Endpoints    *Endpoints          `json:"endpoints,omitempty"`
}

// Endpoints are an OAuth 2.0 provider's URLs given by hand (no discovery).
type Endpoints struct {
	Auth     string `json:"auth,omitempty"`
	Token    string `json:"token"`
	Device   string `json:"device,omitempty"`
	Revoke   string `json:"revoke,omitempty"`
	Userinfo string `json:"userinfo,omitempty"`
	JWKS     string `json:"jwks,omitempty"`
}

// ClientSecretKey is where a confidential OpenID client's secret is kept in
// Secrets; it goes when the profile goes.
func ClientSecretKey(profile string) string { return "profile/" + profile + "/client_secret" }

// Config is the profiles file.
type Config struct {
	Current  string    `json:"current,omitempty"`
	Profiles []Profile `json:"profiles"`
	// Vault is the backend the first "auto" choice settled on, remembered so
	// that later runs neither probe the keyring again nor look for secrets
	// in a different store than the one that holds them.
	Vault *Choice `json:"vault,omitempty"`
	// KeyringChecked records that an explicitly requested keyring passed
	// its probe once, so that --vault keyring does not probe on every run.
	KeyringChecked bool `json:"keyring_checked,omitempty"`
	// CodeLabels names the other services whose backup codes the vault
	// keeps (latch codes import).
	CodeLabels []string `json:"code_labels,omitempty"`
}

// Home returns latch's directory — $LATCH_HOME when set, else
// os.UserConfigDir()/latch — creating it 0700 if missing, so that nothing
// written there is ever world-readable through a looser directory.
func Home() (string, error) {
	dir := os.Getenv("LATCH_HOME")
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config directory: %w; set LATCH_HOME to choose one", err)
		}
		dir = filepath.Join(base, "latch")
	}
	// Every command comes here: a home that is there already costs one
	// stat, not MkdirAll's stat and another.
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return "", fmt.Errorf("create %s: %w; set LATCH_HOME to a writable directory", dir, err)
		}
		if fi, err = os.Stat(dir); err != nil {
			return "", fmt.Errorf("latch's home %s: %w", dir, err)
		}
	}
	// A directory that already exists keeps its mode: one that others
	// can read or enter is made private, or refused when it is not
	// the user's to change. Windows keeps no such bits.
	if !fi.IsDir() {
		return "", fmt.Errorf("latch's home %s is not a directory; set LATCH_HOME to a directory of your own", dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&^dirPerm != 0 {
		if err := os.Chmod(dir, dirPerm); err != nil {
			return "", fmt.Errorf("latch's home %s is open to other users (%s) and cannot be made private (%w); "+
				"set LATCH_HOME to a directory of your own, or chmod 700 it", dir, fi.Mode().Perm(), err)
		}
	}
	return dir, nil
}

// maxConfigSize caps the profiles file: a real one is a few KiB, and
// decoding a huge one would stall every latch command (20 MB took 3.5 s).
const maxConfigSize = 1 << 20

// LoadConfig reads the profiles file in dir. A missing file is an empty
// config, not an error.
func LoadConfig(dir string) (*Config, error) {
	c, _, err := loadConfig(dir)
	return c, err
}

// loadConfig is LoadConfig, also returning the file it read (nil when there
// was none) for ConfigCache to tell when it is replaced.
func loadConfig(dir string) (*Config, fs.FileInfo, error) {
	path := filepath.Join(dir, configFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read profiles: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read profiles: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read profiles: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, nil, fmt.Errorf("profiles file %s is larger than %d KiB, far more than any profiles need: "+
			"move it aside and add the profiles again", path, maxConfigSize>>10)
	}
	c, err := decodeConfig(path, data)
	if err != nil {
		return nil, nil, err
	}
	return c, fi, nil
}

// decodeConfig parses the profiles file's content; path is for messages.
func decodeConfig(path string, data []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("profiles file %s is malformed (%v): fix it by hand, or move it aside and add the profiles again", path, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("profiles file %s: %w; fix it by hand, or move it aside and add the profiles again", path, err)
	}
	return &c, nil
}

// Save writes the profiles file in dir atomically, mode 0600.
func (c *Config) Save(dir string) error {
	return c.save(dir, nil)
}

func (c *Config) save(dir string, wrap func(io.Writer) io.Writer) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("save profiles: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save profiles: %w", err)
	}
	data = append(data, '\n')
	// Counted once the file is replaced (or the attempt failed), so that
	// a ConfigCache that read it before reads it again.
	defer configWrites.Add(1)
	return writeFileAtomic(filepath.Join(dir, configFile), filePerm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, wrap)
}

// UpdateConfig reads the profiles file in dir, lets change modify it and
// saves it, all under a lock file, so that two latch processes changing
// profiles at once do not lose either change. If change fails nothing is
// written.
func UpdateConfig(ctx context.Context, dir string, change func(*Config) error) error {
	unlock, err := LockFile(ctx, filepath.Join(dir, configFile+".lock"), lockWait)
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	defer unlock()
	c, err := LoadConfig(dir)
	if err != nil {
		return err
	}
	if err := change(c); err != nil {
		return err
	}
	return c.Save(dir)
}

// Get returns the profile called name, or an error wrapping ErrNotFound.
func (c *Config) Get(name string) (Profile, error) {
	for _, p := range c.Profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("profile %q: %w", name, ErrNotFound)
}

// Put inserts p, or replaces the profile with the same name.
func (c *Config) Put(p Profile) error {
	if err := validateProfile(p); err != nil {
		return err
	}
	for i := range c.Profiles {
		if c.Profiles[i].Name == p.Name {
			c.Profiles[i] = p
			return nil
		}
	}
	c.Profiles = append(c.Profiles, p)
	return nil
}

// Remove deletes the profile called name (clearing Current if it was that
// one), or returns an error wrapping ErrNotFound.
func (c *Config) Remove(name string) error {
	for i := range c.Profiles {
		if c.Profiles[i].Name == name {
			c.Profiles = append(c.Profiles[:i], c.Profiles[i+1:]...)
			if c.Current == name {
				c.Current = ""
			}
			return nil
		}
	}
	return fmt.Errorf("profile %q: %w", name, ErrNotFound)
}

// ValidateName reports whether name can be used as a profile name. Names end
// up in file names and keyring keys, so path elements, '#' (reserved for
// keyring chunks) and control characters are refused.
func ValidateName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid profile name %q: %s; use letters, digits, '-', '_', '.' or '@'", name, why)
	}
	switch {
	case name == "":
		return errors.New("invalid profile name: empty; choose a name such as \"work\"")
	case name == "." || name == "..":
		return bad("a path element")
	case len(name) > maxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxNameLen))
	case strings.TrimSpace(name) != name:
		return bad("leading or trailing space")
	case strings.ContainsAny(name, `/\`):
		return bad("contains a path separator")
	case strings.ContainsRune(name, '#'):
		return bad("contains '#'")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return bad("contains a control or invalid character")
		}
	}
	return nil
}

func validateProfile(p Profile) error {
	if err := ValidateName(p.Name); err != nil {
		return err
	}
	if p.Kind != KindAccount && p.Kind != KindOIDC {
		return fmt.Errorf("profile %q: kind %q is neither %q nor %q", p.Name, p.Kind, KindAccount, KindOIDC)
	}
	return nil
}

func (c *Config) validate() error {
	seen := make(map[string]bool, len(c.Profiles))
	for _, p := range c.Profiles {
		if err := validateProfile(p); err != nil {
			return err
		}
		if seen[p.Name] {
			return fmt.Errorf("profile %q appears twice", p.Name)
		}
		seen[p.Name] = true
	}
	if c.Current != "" && !seen[c.Current] {
		return fmt.Errorf("current profile %q does not exist", c.Current)
	}
	return nil
}
