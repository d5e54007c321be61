// Command keyringread is the floor for bench/token.sh: the least a program
// can do to print a secret kept in the system keyring — one go-keyring read
// of the entry latch keeps a profile's tokens in, printed as is. `latch
// token` with a valid cached token does this plus its own work (profiles,
// locks, expiry check), so the ratio of the two is latch's overhead.
package main

import (
	"fmt"
	"os"

	"github.com/zalando/go-keyring"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: keyringread SERVICE KEY")
		os.Exit(2)
	}
	v, err := keyring.Get(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyringread:", err)
		os.Exit(1)
	}
	fmt.Println(v)
}
