package tui

import (
	"regexp"
	"strings"
	"sync"
)

// advice is one rewrite of interfaceAdvice.
type advice struct {
	re   *regexp.Regexp
	with string
}

// interfaceAdvice rewrites the advice in flows' and the client's messages
// that is written for the command line (flags, latch commands) into what to
// do here. The messages stay as they are for the CLI. Compiled on first use:
// every latch process links this package, latch token included.
var interfaceAdvice = sync.OnceValue(func() []advice {
	return []advice{
		{regexp.MustCompile(`check --server and that the server is running`), "check the server's URL and that the server is running"},
		{regexp.MustCompile(`is --server pointing at latch\?`), "is this a latch server's URL?"},
		{regexp.MustCompile(`check --server\b`), "check the server's URL"},
		{regexp.MustCompile(`so set --server to the final URL`), "so add the final URL as a server (a on the Profiles screen)"},
		{regexp.MustCompile(`or --server points at a web site`), "or the URL is a web site's, not a latch server's"},
		{regexp.MustCompile(`; pass --insecure if you really mean it`), "; only https:// is accepted for a provider that is not on this machine"},
		{regexp.MustCompile(`run latch logout --profile \S+ first`), "log out of it first (o on its account screen)"},
		{regexp.MustCompile(`, or (choose another --profile|pass --force to forget the session without ending it on the server)`), ""},
		{regexp.MustCompile(`choose another --profile for a latch account`), "log in to a latch account from another profile"},
		{regexp.MustCompile(`this needs a latch account \([^)]*\)`), "this needs a latch account: add its server (a) and log in (l) on the Profiles screen"},
		{regexp.MustCompile(`(to make it, run latch login --profile \S+|log in with --profile \S+ to create it, or see latch profile list)`), "pick one on the Profiles screen, or add a server (a) and log in (l)"},
		{regexp.MustCompile(`run latch login --server URL, or latch login --issuer URL --client-id ID for an OpenID provider`),
			"add a server (a) on the Profiles screen and log in (l), or log in with OAuth at an OpenID provider (o)"},
		{regexp.MustCompile(`run latch login --server URL`), "add a server (a) on the Profiles screen and log in (l)"},
		{regexp.MustCompile(`pick one with --profile NAME or latch profile use NAME`), "pick one on the Profiles screen (u makes it current)"},
		{regexp.MustCompile(`give either a latch server \(--server\) or an issuer \(--issuer\), not both`), "give either a latch server or an OpenID provider, not both"},
		{regexp.MustCompile(`check --client-id and --redirect-url`), "check the client id and the redirect URL (Advanced)"},
	}
})

// cliAdvice is what only makes sense on the command line.
var cliAdvice = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`--[a-z][a-z-]*|\blatch (login|logout|signup|profile|mfa|vault|status|token|codes|sessions)\b`)
})

// cliAside is a parenthesis that gives command-line advice.
var cliAside = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(` ?\([^()]*(--[a-z]|\blatch [a-z])[^()]*\)`)
})

// forInterface is msg with its command-line advice rewritten for the
// interface. Advice no rule knows (a message reworded since) is dropped: an
// aside in parentheses, or a "; "-separated clause after the first; the
// caller adds what to do next.
func forInterface(msg string) string {
	for _, a := range interfaceAdvice() {
		msg = a.re.ReplaceAllString(msg, a.with)
	}
	msg = cliAside().ReplaceAllStringFunc(msg, func(aside string) string {
		if cliAdvice().MatchString(aside) {
			return ""
		}
		return aside
	})
	clauses := strings.Split(msg, "; ")
	kept := clauses[:1]
	for _, c := range clauses[1:] {
		if !cliAdvice().MatchString(c) {
			kept = append(kept, c)
		}
	}
	return strings.Join(kept, "; ")
}
