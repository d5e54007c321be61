package cli

import (
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/latch-dev/latch/client"
)

// envDebug turns the wire trace on without the flag: api (or 1) for text,
// json for one JSON object per line.
const envDebug = "LATCH_DEBUG"

const debugHelp = "print every HTTP exchange to stderr, secrets redacted: " +
	"--debug (or --debug=api) as text, --debug=json one JSON object per line (env LATCH_DEBUG=api|json)"

// debugMode reads --debug, else LATCH_DEBUG: "" (off), "api" or "json".
// A value it does not know is a usage error naming where it came from.
func debugMode(flag *pflag.Flag) (string, error) {
	if flag != nil && flag.Changed {
		switch v := strings.ToLower(strings.TrimSpace(flag.Value.String())); v {
		case "api", "json":
			return v, nil
		case "off", "":
			return "", nil
		}
		return "", usagef("--debug=%s: use --debug (text), --debug=api or --debug=json", flag.Value.String())
	}
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv(envDebug))); v {
	case "", "0", "false", "off":
		return "", nil
	case "1", "true", "api":
		return "api", nil
	case "json":
		return "json", nil
	}
	return "", usagef("%s=%s: use api (or 1) for text, json for JSON lines, or unset it", envDebug, os.Getenv(envDebug))
}

// debugPrinter writes trace events to one writer, one event at a time:
// the flows and the HTTP calls of a command may trace from several
// goroutines.
type debugPrinter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func (p *debugPrinter) trace(ev client.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		_ = ev.WriteJSON(p.w)
		return
	}
	_ = ev.WriteText(p.w)
}

// startDebug sets g.trace for --debug / LATCH_DEBUG, writing to g.err.
// The interface (latch with no command) replaces it with its trace pane,
// keeping it only when stderr is not the terminal it draws on.
func (g *globals) startDebug(flag *pflag.Flag) error {
	mode, err := debugMode(flag)
	if err != nil || mode == "" {
		return err
	}
	p := &debugPrinter{w: g.err, json: mode == "json"}
	g.trace = p.trace
	return nil
}
