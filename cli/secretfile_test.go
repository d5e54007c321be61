package cli

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReadSecretFile: the secret is the file's first line; a file that is
// missing, empty, too large or readable by others is a usage error naming
// the flag, and no error shows the secret.
func TestReadSecretFile(t *testing.T) {
	const secret = "s3cret-in-file"
	dir := t.TempDir()
	tests := []struct {
		name     string
		content  string // "" with noFile: no file
		mode     os.FileMode
		noFile   bool
		want     string
		wantErr  string
		notUsage bool // an I/O error, not bad input
	}{
		{name: "one line", content: secret + "\n", mode: 0o600, want: secret},
		{name: "no newline", content: secret, mode: 0o600, want: secret},
		{name: "CRLF", content: secret + "\r\n", mode: 0o600, want: secret},
		{name: "first line only", content: secret + "\nsecond line\n", mode: 0o600, want: secret},
		{name: "owner read-only", content: secret + "\n", mode: 0o400, want: secret},
		{name: "empty", mode: 0o600, wantErr: "is empty"},
		{name: "empty first line", content: "\n" + secret + "\n", mode: 0o600, wantErr: "is empty"},
		{name: "group-readable", content: secret + "\n", mode: 0o640, wantErr: "is readable by others (mode -rw-r-----): chmod 600 it"},
		{name: "world-readable", content: secret + "\n", mode: 0o644, wantErr: "chmod 600 it"},
		{name: "too large", content: secret + "\n" + strings.Repeat("x", maxSecretFile), mode: 0o600, wantErr: "larger than 64 KiB"},
		{name: "missing", noFile: true, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && strings.Contains(tt.wantErr, "chmod") {
				t.Skip("no Unix modes on Windows")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if !tt.noFile {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			for _, flag := range []string{"--client-secret-file", "--smtp-password-file"} {
				got, err := readSecretFile(flag, path)
				if tt.wantErr == "" {
					if err != nil || got != tt.want {
						t.Fatalf("%s: got %q, %v; want %q", flag, got, err, tt.want)
					}
					continue
				}
				if err == nil || !strings.HasPrefix(err.Error(), flag) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%s: err = %v, want one naming the flag and saying %q", flag, err, tt.wantErr)
				}
				var ue usageError
				if errors.As(err, &ue) == tt.notUsage {
					t.Fatalf("%s: err = %v: usage error %v, want %v", flag, err, !tt.notUsage, !tt.notUsage)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("%s: the secret shows: %v", flag, err)
				}
			}
		})
	}
}

// TestReadSecretFileDirectory: a directory given as the file fails reading
// it, an error (exit 1) that names the flag.
func TestReadSecretFileDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := readSecretFile("--smtp-password-file", dir)
	var ue usageError
	if err == nil || !strings.HasPrefix(err.Error(), "--smtp-password-file ") || errors.As(err, &ue) {
		t.Fatalf("err = %v, want a plain error naming the flag", err)
	}
}
