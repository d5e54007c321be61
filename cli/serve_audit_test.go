package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenAuditLog: --audit-log "" is off, - is stdout, a file is created
// 0600 and appended to, an existing file others may read is refused, and an
// unwritable path names the flag.
func TestOpenAuditLog(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(file, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.jsonl")
	if err := os.WriteFile(open, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil { // umask-proof
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		stdout     bool
		err        string
	}{
		{"off", "", false, ""},
		{"stdout", "-", true, ""},
		{"new file", filepath.Join(dir, "new.jsonl"), false, ""},
		{"existing file", file, false, ""},
		{"no such directory", filepath.Join(dir, "missing", "a.jsonl"), false, "--audit-log"},
		{"existing file others may read", open, false, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, closeFn, err := openAuditLog(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			switch {
			case tc.path == "":
				if w != nil {
					t.Fatal("a writer with no --audit-log")
				}
			case tc.stdout:
				if w != os.Stdout {
					t.Fatal("- is not stdout")
				}
			default:
				if _, err := w.Write([]byte("new\n")); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(tc.path)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
				}
			}
		})
	}
	if b, _ := os.ReadFile(file); string(b) != "old\nnew\n" {
		t.Fatalf("the existing log was not appended to: %q", b)
	}
}
