//go:build linux

// Command keyctlread is a floor for bench/token.sh: the least a program can
// do to print a secret kept in the kernel keyring — find the uid's persistent
// keyring, search it for one "user" key by description, read it, print it.
// `latch token` on a valid cached access token does this plus its own work
// (profiles, the expiry check), so the ratio of the two is latch's overhead.
package main

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: keyctlread DESCRIPTION")
		os.Exit(2)
	}
	// Possession of keys linked into the process keyring is per thread in a
	// Go program: link and read on one thread.
	runtime.LockOSThread()
	ring, err := unix.KeyctlInt(unix.KEYCTL_GET_PERSISTENT, -1, unix.KEY_SPEC_PROCESS_KEYRING, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyctlread: persistent keyring:", err)
		os.Exit(1)
	}
	id, err := unix.KeyctlSearch(ring, "user", os.Args[1], 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyctlread: search:", err)
		os.Exit(1)
	}
	buf := make([]byte, 32<<10)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyctlread: read:", err)
		os.Exit(1)
	}
	fmt.Println(string(buf[:min(n, len(buf))]))
}
