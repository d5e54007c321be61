package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
)

// git's credential helper protocol (gitcredentials(7), git-credential(1)):
// git runs the helper with get, store or erase, writes key=value lines on
// its stdin up to a blank line or EOF, and for get reads key=value lines
// back. Git ignores a helper's exit status and shows its stderr to the user,
// so the answers that matter are on stdout: nothing means "not mine, ask the
// next helper".

// defaultGitUser is the username latch answers with when neither git, the
// setup's --username nor the profile names one: what GitLab and Google
// expect beside an OAuth access token; servers that check the token ignore
// it.
const defaultGitUser = "oauth2"

// maxGitRequest bounds what a helper reads from git: a real request is a
// few hundred bytes (wwwauth[] headers included).
const maxGitRequest = 64 << 10

type gitCredOptions struct {
	g        *globals
	host     string // the URL latch git setup configured
	username string
}

func newCredentialGitCmd(g *globals) *cobra.Command {
	o := &gitCredOptions{g: g}
	cmd := &cobra.Command{
		Use:   "git get|store|erase",
		Short: "git's credential helper (git runs it; set it up with latch git setup)",
		Long: `Speak git's credential helper protocol for the URL given with --host, as
'latch git setup' configures it. git runs it with no terminal of its own, so
it never prompts: when the profile's session is over it says so on stderr
(naming latch login) and answers nothing, and git moves on to its next helper.

  get    answers protocol, host, username, password (a valid access token,
         refreshed when due) and password_expiry_utc, for requests matching
         --host by protocol and host, and by path when git sends one
         (credential.useHttpPath, latch git setup --path). Other requests get
         no answer. The username is --username, else the one git asks for,
         else the profile's username, else "oauth2".
  store  does nothing: latch keeps the credential itself.
  erase  does not log out: it stops handing out the access token git was
         refused, so the next get refreshes and answers a new one.`,
		Example: `  # what latch git setup writes (git appends get, store or erase):
  git config --global credential.https://git.example.com.helper \
    "!'/usr/local/bin/latch' credential git --host https://git.example.com -p work"
  printf 'protocol=https\nhost=git.example.com\n\n' | latch credential git --host https://git.example.com get`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"get", "store", "erase"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().StringVar(&o.host, "host", "", "the URL these credentials are for, as given to latch git setup (required)")
	cmd.Flags().StringVar(&o.username, "username", "", "username to answer with (default: git's, else the profile's, else oauth2)")
	return cmd
}

func (o *gitCredOptions) run(ctx context.Context, op string) error {
	switch op {
	case "get", "store", "erase":
	default:
		return usagef("unknown operation %q: git runs this helper with get, store or erase", op)
	}
	if o.host == "" {
		return usagef("missing --host: the URL whose credentials latch hands out (latch git setup writes it)")
	}
	want, err := parseGitURL(o.host)
	if err != nil {
		return usageError{fmt.Errorf("--host: %w", err)}
	}
	req, err := readGitRequest(o.g.in)
	if err != nil {
		return err
	}
	if op == "store" || !want.matches(req) {
		return nil
	}
	if o.username != "" && req["username"] != "" && req["username"] != o.username {
		return nil // git asks for another account on this host
	}
	o.g.noPrompt = true // git's terminal is not ours to prompt on
	e, err := o.g.openEnv(ctx)
	if err != nil {
		return gitAdvice(err, o.g.profile)
	}
	if op == "erase" {
		_, err := e.DropAccessToken(ctx, o.g.profile, req["password"])
		if e.Forward != nil && (errors.Is(err, flows.ErrUnknownProfile) || errors.Is(err, flows.ErrNoProfile)) {
			return nil // a forwarded agent's token: the latch that holds the session rotates it
		}
		return gitAdvice(err, o.g.profile)
	}
	tok, err := issueToken(ctx, e, o.g.profile)
	if err != nil {
		return gitAdvice(err, o.g.profile)
	}
	user := o.username
	if user == "" {
		user = req["username"]
	}
	if user == "" {
		user = profileUser(e, tok.Profile)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "protocol=%s\nhost=%s\n", req["protocol"], req["host"])
	if p, ok := req["path"]; ok {
		fmt.Fprintf(&b, "path=%s\n", p)
	}
	fmt.Fprintf(&b, "username=%s\npassword=%s\n", user, tok.AccessToken)
	if !tok.Expiry.IsZero() {
		fmt.Fprintf(&b, "password_expiry_utc=%d\n", tok.Expiry.Unix())
	}
	_, err = io.WriteString(o.g.out, b.String())
	return err
}

// profileUser is the username of profile, or defaultGitUser when it has
// none (or is not on this machine: a forwarded agent's).
func profileUser(e *flows.Env, profile string) string {
	if p, err := e.Profile(profile); err == nil && p.Username != "" {
		return p.Username
	}
	return defaultGitUser
}

// gitAdvice is helperAdvice for git, its messages marked as git's helper's.
func gitAdvice(err error, profile string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("git credential: %w", helperAdvice("git", err, profile))
}

// readGitRequest reads git's key=value lines up to a blank line or EOF. A
// url= line is split into its parts, as git itself does. Keys git may add
// later (wwwauth[], capability[]…) are kept and ignored.
func readGitRequest(in io.Reader) (map[string]string, error) {
	br := bufio.NewReader(io.LimitReader(in, maxGitRequest+1))
	req := map[string]string{}
	read := 0
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		read += len(line)
		if read > maxGitRequest {
			return nil, fmt.Errorf("git credential: the request is larger than %d KiB; git sends a few lines", maxGitRequest>>10)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("git credential: read the request: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			return req, nil // a blank line, or EOF
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("git credential: line %d of the request is not key=value; "+
				"this helper is run by git (see latch credential git --help)", n)
		}
		if key == "url" {
			u, err := url.Parse(value)
			if err != nil {
				return nil, fmt.Errorf("git credential: line %d: malformed url", n)
			}
			req["protocol"], req["host"] = u.Scheme, u.Host
			if p := strings.TrimPrefix(u.Path, "/"); p != "" {
				req["path"] = p
			}
			if u.User != nil {
				req["username"] = u.User.Username()
			}
		} else {
			req[key] = value
		}
		if errors.Is(err, io.EOF) {
			return req, nil
		}
	}
}

// gitURL is the URL a helper answers for.
type gitURL struct {
	scheme, host, path string
}

// parseGitURL checks a URL given to --host: http(s), a host, no user,
// query or fragment.
func parseGitURL(raw string) (gitURL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return gitURL{}, fmt.Errorf("%q is not a URL; give one such as https://git.example.com", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return gitURL{}, fmt.Errorf("%q: use an https:// (or loopback http://) URL such as https://git.example.com", raw)
	case u.Host == "":
		return gitURL{}, fmt.Errorf("%q has no host; give one such as https://git.example.com", raw)
	case u.User != nil:
		return gitURL{}, fmt.Errorf("%q names a user: leave it out of the URL and use --username", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return gitURL{}, fmt.Errorf("%q has a query or fragment; give the server's URL, optionally with a path", raw)
	}
	return gitURL{scheme: u.Scheme, host: normalHost(u.Scheme, u.Host), path: strings.Trim(u.Path, "/")}, nil
}

// String is the URL as it goes into git's config key.
func (w gitURL) String() string {
	s := w.scheme + "://" + w.host
	if w.path != "" {
		s += "/" + w.path
	}
	return s
}

// matches reports whether git's request is for w: same protocol and host,
// and when git sends a path (credential.useHttpPath), one at or under w's.
// Without a path git has already matched the full URL against the config
// key itself before dropping the path.
func (w gitURL) matches(req map[string]string) bool {
	if !strings.EqualFold(req["protocol"], w.scheme) || normalHost(w.scheme, req["host"]) != w.host {
		return false
	}
	p, ok := req["path"]
	if !ok || w.path == "" {
		return true
	}
	p = strings.Trim(p, "/")
	return p == w.path || strings.HasPrefix(p, w.path+"/")
}

// normalHost lower-cases host and drops the scheme's default port.
func normalHost(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	}
	return host
}

// shellQuote quotes s for sh, as git runs a "!" helper through the shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// issueToken is the valid access token a credential helper hands out.
func issueToken(ctx context.Context, e *flows.Env, profile string) (*flows.IssuedToken, error) {
	return e.TokenFor(ctx, profile, flows.TokenOptions{})
}

type gitSetupOptions struct {
	g        *globals
	host     string
	username string
	path     bool
	dryRun   bool
	remove   bool
}

func newGitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git",
		Short: "Let git get its credentials from latch",
		Example: `  latch git setup --host https://git.example.com -p work
  git clone https://git.example.com/team/repo.git   # no password asked`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newGitSetupCmd(g))
	return cmd
}

func newGitSetupCmd(g *globals) *cobra.Command {
	o := &gitSetupOptions{g: g}
	cmd := &cobra.Command{
		Use:   "setup --host URL",
		Short: "Configure git to ask latch for the credentials of a server",
		Long: `Write credential.<URL>.helper in your global git config (git config
--global), as gh auth setup-git does: first an empty helper, which stops the
helpers configured before it (a keychain, a store) from answering for URL,
then latch's own, pinned to the profile. From then on git gets a valid access
token of the profile as the password for URL, refreshed when due.

The username git sends is --username, else the one in the remote URL, else
the profile's username, else "oauth2". With --path, git also sends the
repository path (credential.useHttpPath), and latch answers only for URL's
path and the paths under it. --dry-run prints the git commands instead;
--remove takes latch's helper out again.`,
		Example: `  latch git setup --host https://git.example.com -p work
  latch git setup --host https://git.example.com/team --path --username alice
  latch git setup --host https://git.example.com --dry-run
  latch git setup --host https://git.example.com --remove`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "the server's URL, optionally with a path (required)")
	f.StringVar(&o.username, "username", "", "username git sends (default: the remote URL's, else the profile's, else oauth2)")
	f.BoolVar(&o.path, "path", false, "match the repository path too (sets credential.<URL>.useHttpPath)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the git commands instead of running them")
	f.BoolVar(&o.remove, "remove", false, "remove latch's helper for URL instead")
	return cmd
}

func (o *gitSetupOptions) run(ctx context.Context) error {
	if o.host == "" {
		return usagef("missing --host: the URL git should get credentials for, such as --host https://git.example.com")
	}
	u, err := parseGitURL(o.host)
	if err != nil {
		return usageError{fmt.Errorf("--host: %w", err)}
	}
	// Plain http:// would send the token in the clear: only to loopback,
	// unless --insecure.
	if err := o.g.checkURL("host", u.String()); err != nil {
		return err
	}
	if strings.ContainsAny(o.username, "\n\x00") {
		return usagef("--username: one line, please")
	}
	prefix := "credential." + u.String() + "."
	var cmds [][]string
	if o.remove {
		cmds = [][]string{
			{"git", "config", "--global", "--unset-all", prefix + "helper"},
			{"git", "config", "--global", "--unset-all", prefix + "useHttpPath"},
		}
		return o.apply(ctx, cmds, fmt.Sprintf("git no longer asks latch for the credentials of %s.", u))
	}
	o.g.noPrompt = true
	e, err := o.g.openEnv(ctx)
	if err != nil {
		return err
	}
	p, forwarded, err := setupProfile(ctx, e, o.g.profile)
	if err != nil {
		return err
	}
	self, err := selfPath()
	if err != nil {
		return err
	}
	helper := "!" + shellQuote(self) + " credential git --host " + shellQuote(u.String()) + " -p " + shellQuote(p.Name)
	if o.username != "" {
		helper += " --username " + shellQuote(o.username)
	}
	cmds = [][]string{
		{"git", "config", "--global", "--replace-all", prefix + "helper", ""},
		{"git", "config", "--global", "--add", prefix + "helper", helper},
	}
	if o.path {
		cmds = append(cmds, []string{"git", "config", "--global", prefix + "useHttpPath", "true"})
	}
	done := fmt.Sprintf("git now asks latch (profile %s) for the credentials of %s", p.Name, u)
	if o.path {
		done += " and the paths under it"
	}
	done += ":\n  " + prefix + "helper = " + helper
	if _, err := e.Tokens().Status(ctx, p.Name); !forwarded && errors.Is(err, flows.ErrLoginRequired) {
		done += fmt.Sprintf("\nProfile %s is not logged in: git gets no token until you run latch login -p %s.", p.Name, shellQuote(p.Name))
	}
	return o.apply(ctx, cmds, done)
}

// apply runs cmds, or prints them with --dry-run, then says done.
func (o *gitSetupOptions) apply(ctx context.Context, cmds [][]string, done string) error {
	if o.dryRun {
		for _, c := range cmds {
			q := make([]string, len(c))
			for i, a := range c {
				q[i] = shellQuote(a)
			}
			fmt.Fprintln(o.g.out, strings.Join(q, " "))
		}
		return nil
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return fmt.Errorf("git is not on PATH (%w): install it, or run with --dry-run to see the commands", err)
	}
	for _, c := range cmds {
		cmd := exec.CommandContext(ctx, git, c[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		// git config --unset-all exits 5 when there was nothing to unset.
		if o.remove && errors.As(err, &ee) && ee.ExitCode() == 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(c[:4], " "), err, strings.TrimSpace(stderr.String()))
		}
	}
	_, err = fmt.Fprintln(o.g.out, done)
	return err
}

// selfPath is the path git should run latch by: the one on PATH when it is
// this very binary (a package manager's stable link survives upgrades),
// else this executable's own path.
func selfPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find latch's own path: %w", err)
	}
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	if onPath, err := exec.LookPath("latch"); err == nil {
		if abs, err := filepath.Abs(onPath); err == nil {
			if real, err := filepath.EvalSymlinks(abs); err == nil && real == self {
				return abs, nil
			}
		}
	}
	return self, nil
}
