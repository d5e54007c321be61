// Command latch is a terminal account client and the compatible auth backend it talks to.
package main

import (
	"os"

	"github.com/latch-dev/latch/cli"
)

func main() {
	os.Exit(cli.Execute())
}
