package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/vault"
)

// docker's credential helper protocol (docker/docker-credential-helpers):
// docker runs docker-credential-<name> ACTION, with the registry's server
// URL (get, erase) or a JSON credential (store) on stdin. get answers
// {"ServerURL","Username","Secret"}, list {ServerURL: Username}. A failure
// is a message on stdout and exit 1; the message "credentials not found in
// native keychain" tells docker to go on without credentials.
const (
	dockerHelperName = "docker-credential-latch"
	dockerNotFound   = "credentials not found in native keychain"
	dockerNoURL      = "no credentials server URL"
	// dockerRegistries is the file in latch's home naming the profile of
	// each registry latch docker setup configured.
	dockerRegistries = "docker.json"
	maxDockerRequest = 64 << 10
)

// dockerHelperMain runs latch as docker's credential helper when it was
// invoked as docker-credential-latch (a link to latch); ok is false for any
// other name.
func dockerHelperMain(argv []string) (code int, ok bool) {
	if len(argv) == 0 || strings.TrimSuffix(filepath.Base(argv[0]), ".exe") != dockerHelperName {
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := newGlobals()
	g.vault = os.Getenv(envVault)
	if g.vault == "" {
		g.vault = vault.ModeAuto
	}
	g.timeout = 10 * time.Second
	return runDockerHelper(ctx, g, argv[1:]), true
}

// runDockerHelper answers one docker request and returns the exit code.
func runDockerHelper(ctx context.Context, g *globals, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(g.out, "Usage: %s <store|get|erase|list|version>\n", dockerHelperName)
		return exitError
	}
	g.noPrompt = true // docker's terminal is not ours to prompt on
	out, err := dockerAnswer(ctx, g, args[0])
	if err != nil {
		fmt.Fprintln(g.out, err)
		return exitError
	}
	_, err = io.WriteString(g.out, out)
	if err != nil {
		return exitError
	}
	return exitOK
}

// dockerCreds is the protocol's credential.
type dockerCreds struct {
	ServerURL string
	Username  string
	Secret    string
}

func dockerAnswer(ctx context.Context, g *globals, action string) (string, error) {
	switch action {
	case "version":
		return fmt.Sprintf("%s (github.com/latch-dev/latch) %s\n", dockerHelperName, Version), nil
	case "list":
		return dockerList(g)
	case "get", "erase", "store":
	default:
		return "", fmt.Errorf("unknown credential action `%s`: use store, get, erase, list or version", action)
	}
	in, err := io.ReadAll(io.LimitReader(g.in, maxDockerRequest+1))
	if err != nil || len(in) > maxDockerRequest {
		return "", fmt.Errorf("latch: could not read docker's request (at most %d KiB)", maxDockerRequest>>10)
	}
	server := strings.TrimSpace(string(in))
	if action == "store" {
		var c dockerCreds
		if json.Unmarshal(in, &c) == nil {
			server = c.ServerURL
		}
	}
	if server == "" {
		return "", errors.New(dockerNoURL)
	}
	home, err := vault.Home()
	if err != nil {
		return "", fmt.Errorf("latch: %w", err)
	}
	regs, err := loadDockerRegistries(home)
	if err != nil {
		return "", fmt.Errorf("latch: %w", err)
	}
	host := registryHost(server)
	reg, found := regs.Registries[host]
	switch {
	case action == "store":
		return "", fmt.Errorf("latch manages the credentials of %s itself: docker login is not needed, docker gets a fresh "+
			"access token from latch on every pull and push; to store other credentials for it, first remove its "+
			"credHelpers entry from docker's config.json", host)
	case action == "erase":
		return "", fmt.Errorf("latch manages the credentials of %s itself, and docker logout does not log latch out: "+
			"end the session with latch logout%s, or remove its credHelpers entry from docker's config.json", host, profileFlag(reg.Profile))
	case !found:
		return "", errors.New(dockerNotFound)
	}
	g.profile = reg.Profile
	e, err := g.openEnv(ctx)
	if err != nil {
		return "", dockerAdvice(err, reg.Profile)
	}
	tok, err := issueToken(ctx, e, reg.Profile)
	if err != nil {
		return "", dockerAdvice(err, reg.Profile)
	}
	user := reg.Username
	if user == "" {
		user = profileUser(e, tok.Profile)
	}
	b, err := json.Marshal(dockerCreds{ServerURL: server, Username: user, Secret: tok.AccessToken})
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

// dockerList answers list: every registry latch docker setup configured,
// with the username docker would get.
func dockerList(g *globals) (string, error) {
	home, err := vault.Home()
	if err != nil {
		return "", fmt.Errorf("latch: %w", err)
	}
	regs, err := loadDockerRegistries(home)
	if err != nil {
		return "", fmt.Errorf("latch: %w", err)
	}
	cfg, err := vault.LoadConfig(home)
	if err != nil {
		return "", fmt.Errorf("latch: %w", err)
	}
	list := map[string]string{}
	for host, r := range regs.Registries {
		user := r.Username
		if user == "" {
			if p, err := cfg.Get(r.Profile); err == nil && p.Username != "" {
				user = p.Username
			} else {
				user = defaultGitUser
			}
		}
		list[host] = user
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

func profileFlag(profile string) string {
	if profile == "" {
		return ""
	}
	return " -p " + shellQuote(profile)
}

// dockerAdvice is helperAdvice for docker, which shows the helper's
// message but cannot let it ask for anything.
func dockerAdvice(err error, profile string) error {
	return fmt.Errorf("latch: %w", helperAdvice("docker", err, profile))
}

// registryHost is the registry of a server URL as docker passes it
// ("registry.example.com", "https://registry.example.com/v2/"): its host and
// port, lower-cased.
func registryHost(server string) string {
	s := strings.TrimSpace(server)
	for _, p := range []string{"https://", "http://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = s[len(p):]
			break
		}
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

// dockerRegistryFile is latch's record of the registries docker setup
// configured.
type dockerRegistryFile struct {
	Registries map[string]dockerRegistry `json:"registries"`
}

type dockerRegistry struct {
	Profile  string `json:"profile"`
	Username string `json:"username,omitempty"`
}

func loadDockerRegistries(home string) (*dockerRegistryFile, error) {
	path := filepath.Join(home, dockerRegistries)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &dockerRegistryFile{Registries: map[string]dockerRegistry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f dockerRegistryFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s is malformed (%v): fix it, or remove it and run latch docker setup again", path, err)
	}
	if f.Registries == nil {
		f.Registries = map[string]dockerRegistry{}
	}
	return &f, nil
}

// writeFileKeepMode replaces path with data atomically (vault.WriteFileAtomic:
// docker or another latch never reads half a file). An existing file keeps
// its mode; a new one gets perm.
func writeFileKeepMode(path string, data []byte, perm os.FileMode) error {
	// Renaming over a link would replace it (a dotfiles checkout's) with a
	// file: write where it points instead.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	return vault.WriteFileAtomic(path, perm, data)
}

// addCredHelper sets credHelpers[host] = "latch" in docker's config file at
// path, keeping every other key as it was. It returns the helper host had
// before ("" for none).
func addCredHelper(path, host string) (before string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read docker's config: %w", err)
	}
	top := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &top); err != nil {
			return "", fmt.Errorf("docker's config %s is not a JSON object (%v): fix it, or print the entry to add by hand with --print", path, err)
		}
	}
	helpers := map[string]string{}
	if h, ok := top["credHelpers"]; ok && string(h) != "null" {
		if err := json.Unmarshal(h, &helpers); err != nil {
			return "", fmt.Errorf("docker's config %s: credHelpers is not an object of strings (%v): fix it by hand", path, err)
		}
	}
	before = helpers[host]
	if before == "latch" {
		return before, nil
	}
	helpers[host] = "latch"
	if top["credHelpers"], err = json.Marshal(helpers); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return "", err
	}
	return before, writeFileKeepMode(path, append(out, '\n'), 0o600)
}

// dockerConfigPath is docker's config file: $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json.
func dockerConfigPath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find docker's config: %w; name it with --config", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

type dockerSetupOptions struct {
	g        *globals
	registry string
	username string
	config   string
	print    bool
	link     string
}

func newDockerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docker",
		Short: "Let docker get registry credentials from latch",
		Example: `  latch docker setup --registry registry.example.com -p work --link ~/.local/bin
  docker pull registry.example.com/team/app   # no docker login`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDockerSetupCmd(g))
	return cmd
}

func newDockerSetupCmd(g *globals) *cobra.Command {
	o := &dockerSetupOptions{g: g}
	cmd := &cobra.Command{
		Use:   "setup --registry HOST",
		Short: "Configure docker to get a registry's credentials from latch",
		Long: `Make docker ask latch for the credentials of a registry: latch records that
the registry's credentials are the profile's (in docker.json in latch's home)
and adds "credHelpers": {"HOST": "latch"} to docker's config.json
($DOCKER_CONFIG/config.json, else ~/.docker/config.json, or --config),
keeping everything else in it. --print prints the entry instead of writing it.

docker runs the helper as docker-credential-latch, which must be on PATH: a
symbolic link to latch, made with --link DIR (a directory on PATH) or by hand.
Invoked under that name latch speaks docker's credential helper protocol: get
answers a valid access token of the profile as the password, refreshed when
due; list names the registries set up here; store and erase (docker login,
docker logout) fail with a message saying latch manages the credential.

The username docker sends is --username, else the profile's, else "oauth2".`,
		Example: `  latch docker setup --registry registry.example.com -p work --link ~/.local/bin
  latch docker setup --registry registry.example.com:5000 --print
  echo registry.example.com | docker-credential-latch get`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.registry, "registry", "", "the registry's host[:port] (required)")
	f.StringVar(&o.username, "username", "", "username docker sends (default: the profile's, else oauth2)")
	f.StringVar(&o.config, "config", "", "docker's config file (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)")
	f.BoolVar(&o.print, "print", false, "print the credHelpers entry instead of writing docker's config")
	f.StringVar(&o.link, "link", "", "make the docker-credential-latch link to latch in this directory (one on PATH)")
	return cmd
}

func (o *dockerSetupOptions) run(ctx context.Context) error {
	host := registryHost(o.registry)
	if host == "" || strings.ContainsAny(host, " \t\n\"'\\@") || strings.Contains(o.registry, "@") {
		return usagef("--registry %q: give the registry's host, such as --registry registry.example.com or 127.0.0.1:5000", o.registry)
	}
	if strings.ContainsAny(o.username, "\n\x00") {
		return usagef("--username: one line, please")
	}
	o.g.noPrompt = true
	e, err := o.g.openEnv(ctx)
	if err != nil {
		return err
	}
	p, _, err := setupProfile(ctx, e, o.g.profile)
	if err != nil {
		return err
	}
	if err := saveDockerRegistry(ctx, e.Home, host, dockerRegistry{Profile: p.Name, Username: o.username}); err != nil {
		return err
	}
	fmt.Fprintf(o.g.out, "docker-credential-latch now answers for %s with profile %s.\n", host, p.Name)
	if o.print {
		b, _ := json.MarshalIndent(map[string]any{"credHelpers": map[string]string{host: "latch"}}, "", "\t")
		fmt.Fprintf(o.g.out, "Add this to docker's config.json:\n%s\n", b)
	} else {
		path := o.config
		if path == "" {
			if path, err = dockerConfigPath(); err != nil {
				return err
			}
		}
		before, err := addCredHelper(path, host)
		if err != nil {
			return err
		}
		switch before {
		case "latch":
			fmt.Fprintf(o.g.out, "%s already has credHelpers %q: \"latch\".\n", path, host)
		case "":
			fmt.Fprintf(o.g.out, "Added credHelpers %q: \"latch\" to %s.\n", host, path)
		default:
			fmt.Fprintf(o.g.out, "Set credHelpers %q to \"latch\" in %s (it was %q).\n", host, path, before)
		}
	}
	return o.linkHelper()
}

// linkHelper makes the docker-credential-latch link with --link, or says
// how to when docker would not find one.
func (o *dockerSetupOptions) linkHelper() error {
	self, err := selfPath()
	if err != nil {
		return err
	}
	if o.link == "" {
		if _, err := exec.LookPath(dockerHelperName); err != nil {
			fmt.Fprintf(o.g.out, "docker runs %s, which is not on PATH: link it to latch in a directory on PATH,\n"+
				"  ln -s %s ~/.local/bin/%s\nor run this again with --link DIR.\n", dockerHelperName, shellQuote(self), dockerHelperName)
		}
		return nil
	}
	link := filepath.Join(o.link, dockerHelperName)
	if cur, err := os.Readlink(link); err == nil {
		if cur == self {
			fmt.Fprintf(o.g.out, "%s already links to %s.\n", link, self)
			return nil
		}
		return fmt.Errorf("%s already exists and links to %s: remove it first if latch should replace it", link, cur)
	} else if _, err := os.Lstat(link); err == nil {
		return fmt.Errorf("%s already exists and is not a link: remove it first if latch should replace it", link)
	}
	if err := os.Symlink(self, link); err != nil {
		return fmt.Errorf("--link: %w", err)
	}
	fmt.Fprintf(o.g.out, "Linked %s to %s.\n", link, self)
	if found, err := exec.LookPath(dockerHelperName); err != nil || filepath.Dir(found) != filepath.Clean(o.link) {
		fmt.Fprintf(o.g.out, "%s is not first on PATH: add it, or docker will not find the helper.\n", o.link)
	}
	return nil
}

// saveDockerRegistry records that host's credentials are reg's profile's,
// under a lock so that two setups at once do not lose one another's entry.
func saveDockerRegistry(ctx context.Context, home, host string, reg dockerRegistry) error {
	unlock, err := vault.LockFile(ctx, filepath.Join(home, "locks", "docker.lock"), 10*time.Second)
	if err != nil {
		return err
	}
	defer unlock()
	regs, err := loadDockerRegistries(home)
	if err != nil {
		return err
	}
	regs.Registries[host] = reg
	b, err := json.MarshalIndent(regs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileKeepMode(filepath.Join(home, dockerRegistries), append(b, '\n'), 0o600)
}
