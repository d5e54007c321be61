//go:build linux

// Command withstdin runs a command with its stdin read from a file, by
// replacing itself with it (no extra process stays around), for
// bench/credential.sh: hyperfine 1.15 cannot feed a benchmarked command's
// stdin, and a shell to redirect it would cost more than the command
// measured. The floor runs under it too, so the ratio compares like with
// like.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: withstdin FILE CMD [ARGS…]")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "withstdin:", err)
		os.Exit(1)
	}
	if err := unix.Dup2(int(f.Fd()), 0); err != nil {
		fmt.Fprintln(os.Stderr, "withstdin:", err)
		os.Exit(1)
	}
	path, err := exec.LookPath(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "withstdin:", err)
		os.Exit(127)
	}
	err = syscall.Exec(path, os.Args[2:], os.Environ())
	fmt.Fprintln(os.Stderr, "withstdin:", err)
	os.Exit(126)
}
