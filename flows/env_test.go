package flows

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/latch-dev/latch/vault"
)

// An Env reads the profiles file once, yet a change to it — this Env's own,
// or another latch's — is what its next step sees.
func TestEnvConfigFollowsFile(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, e *Env)
	}{
		{"this Env's write", func(t *testing.T, e *Env) {
			if err := e.UseProfile(t.Context(), "bravo"); err != nil {
				t.Fatal(err)
			}
		}},
		{"another latch's write", func(t *testing.T, e *Env) {
			// As another process saves: a new file renamed into place.
			data, err := json.Marshal(&vault.Config{Current: "bravo", Profiles: twoProfiles()})
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(e.Home, "other.tmp")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(e.Home, "config.json")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := (&vault.Config{Current: "alpha", Profiles: twoProfiles()}).Save(dir); err != nil {
				t.Fatal(err)
			}
			e, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeMemory})
			if err != nil {
				t.Fatal(err)
			}
			if p, err := e.Profile(""); err != nil || p.Name != "alpha" {
				t.Fatalf("Profile before = %+v, %v; want alpha", p, err)
			}
			tt.change(t, e)
			if p, err := e.Profile(""); err != nil || p.Name != "bravo" {
				t.Fatalf("Profile after = %+v, %v; want bravo", p, err)
			}
		})
	}
}

func twoProfiles() []vault.Profile {
	return []vault.Profile{
		{Name: "alpha", Kind: vault.KindAccount, Server: "http://127.0.0.1:1"},
		{Name: "bravo", Kind: vault.KindAccount, Server: "http://127.0.0.1:1"},
	}
}

// What OpenEnv's first run remembers in the profiles file is what the
// Env's next read finds, not the file as OpenEnv first read it.
func TestOpenEnvSeesItsOwnChoice(t *testing.T) {
	dir := t.TempDir()
	e, err := OpenEnv(t.Context(), dir, VaultOptions{Mode: vault.ModeAuto, Passphrase: fixedPass})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := e.Config()
	if err != nil || cfg.Vault == nil || cfg.Vault.Backend != e.Vault.Backend {
		t.Fatalf("Config after OpenEnv = %+v, %v; want the choice (%s) remembered", cfg, err, e.Vault.Backend)
	}
}
