package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// maxSecretFile bounds a secret file: a secret is a line, not a file.
const maxSecretFile = 64 << 10

// readSecretFile reads the secret on the first line of path, the value of
// flag (--client-secret-file, --smtp-password-file). Bad files are usage
// errors naming the flag; a file others can read is one: its secret no
// longer is.
func readSecretFile(flag, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", usagef("%s: %w", flag, err)
	}
	defer f.Close()
	// The open file's mode, not the path's: the file read is the one checked.
	if st, err := f.Stat(); err == nil && othersCanRead(st) {
		return "", usagef("%s %s is readable by others (mode %v): chmod 600 it", flag, path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if len(b) > maxSecretFile {
		return "", usagef("%s %s is larger than %d KiB; it should hold the secret alone", flag, path, maxSecretFile>>10)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", usagef("%s %s is empty", flag, path)
	}
	return line, nil
}

// othersCanRead reports whether fi's mode lets anyone but its owner in.
// Windows keeps access in ACLs, not these bits (every file there reads as
// 0666), so there it is never true.
func othersCanRead(fi fs.FileInfo) bool {
	return runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0
}
