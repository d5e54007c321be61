package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// flagAdvice rewrites advice, written by the packages below cli, that names
// a flag the command at hand does not have: the account client says "check
// --server" wherever a request fails, but latch token, api, status… take the
// server from the profile and have no --server. Longer phrases come first.
var flagAdvice = []struct{ flag, phrase, instead string }{
	{"server", "check --server and that the server is running",
		"check the profile's server URL (latch profile list) and that the server is running"},
	{"server", "is --server pointing at latch?", "is the profile's server URL (latch profile list) a latch server?"},
	{"server", "set --server to the final URL", "log in again with latch login --server set to the final URL"},
	{"server", "or --server points at a web site", "or the profile's server URL (latch profile list) points at a web site"},
	{"server", "check --server", "check the profile's server URL (latch profile list)"},
}

// adviseFor is err's message with advice about flags cmd lacks rewritten
// for cmd. A nil cmd (no command was found) leaves the message as it is.
func adviseFor(cmd *cobra.Command, err error) string {
	msg := err.Error()
	if cmd == nil {
		return msg
	}
	for _, a := range flagAdvice {
		if hasFlag(cmd, a.flag) {
			continue
		}
		msg = strings.ReplaceAll(msg, a.phrase, a.instead)
	}
	return msg
}

// hasFlag reports whether cmd takes --name, its own or inherited.
func hasFlag(cmd *cobra.Command, name string) bool {
	return cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil
}
