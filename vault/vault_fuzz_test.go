package vault

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// fuzzIdentity is a fixed test key: the committed vault seeds are encrypted
// to it, so a mutated seed reaches the JSON inside.
const fuzzIdentity = "AGE-SECRET-KEY-1AKKS59NV6R4HWJEHVVP8FSCP3RYDVSC30TLZVWZZ3XM2GFD5QUFQ8EGN6G"

func mustFuzzIdentity(tb testing.TB) *age.X25519Identity {
	id, err := age.ParseX25519Identity(fuzzIdentity)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// encryptMap writes m the way fileSecrets.update does.
func encryptMap(tb testing.TB, m map[string][]byte, r age.Recipient) []byte {
	plain, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	enc, err := age.Encrypt(&buf, r)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := enc.Write(plain); err != nil {
		tb.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzVaultFile feeds a vault file to format detection and to decryptMap
// with a fixed identity: anything but a vault encrypted to that identity is
// an error, and what does decrypt re-encrypts to the same map.
func FuzzVaultFile(f *testing.F) {
	id := mustFuzzIdentity(f)
	f.Add(encryptMap(f, map[string][]byte{
		"profile/default/tokens":       []byte(`{"at":"a","at_exp":4102444800,"rt":"r","iat":1700000000,"n":3}`),
		"profile/default/backup-codes": []byte(`{"saved":1700000000,"codes":[{"c":"aaaa-bbbb"}]}`),
	}, id.Recipient()))
	f.Add(encryptMap(f, map[string][]byte{}, id.Recipient()))
	other, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encryptMap(f, map[string][]byte{"k": []byte("v")}, other.Recipient()))
	if v1, err := os.ReadFile(filepath.Join("testdata", "v1", vaultFile)); err == nil {
		f.Add(v1)
	}
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAA 10\n\n--- AAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if got := vaultFormat(data); got != Format1 && got != Format2 {
			t.Fatalf("vaultFormat = %d", got)
		}
		m, err := decryptMap(data, id)
		if err != nil {
			if m != nil {
				t.Fatal("an error with a map")
			}
			return
		}
		again, err := decryptMap(encryptMap(t, m, id.Recipient()), id)
		if err != nil || !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("re-encrypted map: %v, %q, want %q", err, again, m)
		}
	})
}

// normalize treats nil and empty values alike: JSON null and "" both decode
// to an empty []byte slot.
func normalize(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// FuzzCachedIdentity: the session cache's entry either parses to one that
// encodes and parses back to itself, or is refused.
func FuzzCachedIdentity(f *testing.F) {
	id := mustFuzzIdentity(f)
	f.Add(cachedIdentity{id: id, idle: 15 * time.Minute, used: time.Unix(1700000000, 0)}.encode())
	f.Add([]byte(fuzzIdentity + "\nidle=1\nused=-1\n"))
	f.Add([]byte(fuzzIdentity + "\nidle=9223372036\nused=0\n"))
	f.Add([]byte("AGE-SECRET-KEY-1\nidle=0\nused=0\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, ok := parseCachedIdentity(raw)
		if !ok {
			return
		}
		if e.idle <= 0 {
			t.Fatalf("accepted idle %v", e.idle)
		}
		back, ok := parseCachedIdentity(e.encode())
		if !ok || back.id.String() != e.id.String() || back.idle != e.idle || !back.used.Equal(e.used) {
			t.Fatalf("%q: round trip gave %v %v %v, want %v %v", raw, ok, back.idle, back.used, e.idle, e.used)
		}
	})
}

// FuzzKeyringHeader: a chunk header either parses to one within the limits
// that formats and parses back to itself, or is refused.
func FuzzKeyringHeader(f *testing.F) {
	f.Add(chunks{n: 3, sum: checksum("abc"), gen: "0123abcd"}.header())
	f.Add("chunks:2:" + checksum("x"))
	f.Add("chunks:33:0123456789abcdef:0123abcd")
	f.Add("chunks:+2:0123456789abcdef:")
	f.Add("plain value")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseHeader(s)
		if !ok {
			return
		}
		if c.n < 2 || c.n > maxChunks || len(c.sum) != 16 || (c.gen != "" && !isGen(c.gen)) {
			t.Fatalf("%q: accepted %+v", s, c)
		}
		if !strings.HasPrefix(s, headerPrefix) {
			t.Fatalf("%q: accepted without the prefix", s)
		}
		if c.gen == "" {
			return // the legacy form has no writer any more
		}
		if back, ok := parseHeader(c.header()); !ok || back != c {
			t.Fatalf("%q: round trip gave %+v %v, want %+v", s, back, ok, c)
		}
	})
}

// FuzzLoadConfig feeds the profiles file's content to its decoder: accepted
// configs are valid and survive a save/load round trip.
func FuzzLoadConfig(f *testing.F) {
	cfg := &Config{
		Current: "work",
		Profiles: []Profile{
			{Name: "work", Server: "https://latch.example", Username: "alice", Kind: KindAccount, MFA: true},
			{Name: "sso", Issuer: "https://id.example", ClientID: "latch-cli", Kind: KindOIDC},
		},
		Vault:          &Choice{Backend: "file", Reason: "no keyring"},
		KeyringChecked: true,
		CodeLabels:     []string{"github", "mail"},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"profiles":[]}`))
	f.Add([]byte(`{"current":"x","profiles":[{"name":"x","kind":"account"},{"name":"x","kind":"oidc"}]}`))
	f.Add([]byte(`{"profiles":[{"name":"a\u0000b","kind":"account"}],"extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeConfig("config.json", data)
		if err != nil {
			if c != nil {
				t.Fatal("an error with a config")
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		out, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		// Saved and read again, it saves the same (an empty list and no
		// list are one thing in the file: omitempty).
		back, err := decodeConfig("config.json", out)
		if err != nil {
			t.Fatalf("a saved config does not load: %v\n%s", err, out)
		}
		again, err := json.MarshalIndent(back, "", "  ")
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("round trip: %v\n%s\nwant %s", err, again, out)
		}
	})
}

// TestLoadConfigSizeCap: a profiles file over the cap is refused with its
// path and what to do, quickly, without decoding it.
func TestLoadConfigSizeCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, configFile)
	big := append([]byte(`{"profiles":[`), bytes.Repeat([]byte(`{"name":"p","kind":"account"},`), maxConfigSize/29)...)
	big = append(big[:len(big)-1], "]}"...)
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := LoadConfig(dir)
	t.Logf("%d bytes refused in %s", len(big), time.Since(start))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("err = %v, want the path and what to do", err)
	}

	// Just under the cap still loads (as far as size goes).
	if err := os.WriteFile(path, []byte(`{"profiles":[]}`+strings.Repeat(" ", maxConfigSize-20)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); err != nil {
		t.Fatalf("a file under the cap: %v", err)
	}
}
