package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latch-dev/latch/vault"
)

type kubeSetupOptions struct {
	g          *globals
	Kubeconfig string
	User       string
	// self is the path of the running latch binary.
	self func() (string, error)
}

func kubeSetupRun(ctx context.Context, o *kubeSetupOptions) error {
	g := o.g
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	p, _, err := setupProfile(ctx, e, g.profile)
	if err != nil {
		return err
	}
	user := o.User
	if user == "" {
		user = "latch-" + p.Name
	}
	if strings.TrimSpace(user) != user || user == "" {
		return usagef("--user %q: give a name without leading or trailing spaces", user)
	}
	path, err := kubeconfigPath(o.Kubeconfig)
	if err != nil {
		return err
	}
	self, err := o.self()
	if err != nil {
		return fmt.Errorf("find the latch binary's path for kubectl to run: %w", err)
	}
	if self, err = filepath.Abs(self); err != nil {
		return fmt.Errorf("find the latch binary's path for kubectl to run: %w", err)
	}
	// Writing through a link would replace the link with a file.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read the kubeconfig: %w", err)
	}
	args := []string{"credential", "kubernetes", "-p", p.Name}
	res, err := setKubeUser(old, user, self, args)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	verb := "Added"
	switch {
	case bytes.Equal(res.data, old):
		verb = "Kept"
	case res.existed:
		verb = "Updated"
	}
	if verb != "Kept" {
		// 0600 whatever the file had: a kubeconfig may hold other
		// credentials.
		if err := vault.WriteFileAtomic(path, 0o600, res.data); err != nil {
			return fmt.Errorf("write the kubeconfig: %w", err)
		}
	}
	fmt.Fprintf(g.out, "%s user %q in %s: kubectl runs %s %s for its token.\n", verb, user, path, self, strings.Join(args, " "))
	for _, k := range res.others {
		fmt.Fprintf(g.out, "Note: user %q also has %s, which kubectl may use instead of (or refuse together with) latch; remove it from the file.\n", user, k)
	}
	kc := ""
	if o.Kubeconfig != "" {
		kc = " --kubeconfig " + o.Kubeconfig
	}
	if res.current {
		fmt.Fprintf(g.out, "Use it in the current context:\n  kubectl config set-context --current --user %s%s\n", user, kc)
	} else {
		fmt.Fprintf(g.out, "Use it in a context:\n  kubectl config set-context CONTEXT --cluster CLUSTER --user %s%s\n", user, kc)
	}
	return nil
}

// kubeconfigPath is the kubeconfig kubectl would write: flag, else the first
// file of $KUBECONFIG, else ~/.kube/config.
func kubeconfigPath(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	for _, p := range filepath.SplitList(os.Getenv("KUBECONFIG")) {
		if p != "" {
			return filepath.Abs(p)
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for ~/.kube/config (%w): give --kubeconfig FILE", err)
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// kubeUserResult is what setKubeUser made of a kubeconfig.
type kubeUserResult struct {
	data    []byte
	existed bool     // the user was there before
	others  []string // other credentials the user has besides exec
	current bool     // the kubeconfig names a current context
}

// otherCredentials are a kubeconfig user's fields that compete with exec.
var otherCredentials = []string{"token", "tokenFile", "auth-provider", "username", "password",
	"client-certificate", "client-certificate-data", "client-key", "client-key-data"}

// setKubeUser sets the exec stanza of user in the kubeconfig data (which may
// be empty), adding the user when it is missing, and keeps every other node
// (and comment) as it was.
func setKubeUser(data []byte, user, command string, args []string) (*kubeUserResult, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a kubeconfig (YAML): %v; fix it or give another file with --kubeconfig", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // a new file, or one of comments only
		doc.Kind = yaml.DocumentNode
		doc.Content = []*yaml.Node{mapping(scalar("apiVersion"), scalar("v1"), scalar("kind"), scalar("Config"))}
	}
	root := doc.Content[0]
	if doc.Kind != yaml.DocumentNode || root.Kind != yaml.MappingNode {
		return nil, errors.New("not a kubeconfig: the file is not a YAML mapping; give another file with --kubeconfig")
	}
	users, err := field(root, "users", yaml.SequenceNode)
	if err != nil {
		return nil, err
	}
	res := &kubeUserResult{}
	if c := get(root, "current-context"); c != nil && c.Kind == yaml.ScalarNode && c.Value != "" {
		res.current = true
	}
	var entry *yaml.Node
	for _, u := range users.Content {
		if u.Kind == yaml.MappingNode {
			if n := get(u, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value == user {
				entry = u
			}
		}
	}
	if entry == nil {
		entry = mapping(scalar("name"), scalar(user))
		users.Content = append(users.Content, entry)
	} else {
		res.existed = true
	}
	cred, err := field(entry, "user", yaml.MappingNode)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", user, err)
	}
	for _, k := range otherCredentials {
		if get(cred, k) != nil {
			res.others = append(res.others, k)
		}
	}
	argNodes := make([]*yaml.Node, len(args))
	for i, a := range args {
		argNodes[i] = scalar(a)
	}
	stanza := mapping(
		scalar("apiVersion"), scalar(execCredentialV1),
		scalar("command"), scalar(command),
		scalar("args"), &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: argNodes},
		scalar("interactiveMode"), scalar("Never"),
		scalar("provideClusterInfo"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"},
	)
	set(cred, "exec", stanza)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	res.data = buf.Bytes()
	return res, nil
}

// field returns m's value for key, of kind: made (empty) when the key is
// missing or null, an error when it holds something else.
func field(m *yaml.Node, key string, kind yaml.Kind) (*yaml.Node, error) {
	v := get(m, key)
	if v != nil && v.Kind == kind {
		return v, nil
	}
	if v != nil && !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		return nil, fmt.Errorf("%q is not a %s; fix the file, or give another with --kubeconfig", key, kindName(kind))
	}
	n := &yaml.Node{Kind: kind}
	switch kind {
	case yaml.SequenceNode:
		n.Tag = "!!seq"
	case yaml.MappingNode:
		n.Tag = "!!map"
	}
	set(m, key, n)
	return n, nil
}

func kindName(k yaml.Kind) string {
	if k == yaml.SequenceNode {
		return "list"
	}
	return "mapping"
}

// get is the value of key in the mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set puts v under key in the mapping m, in place when key is there.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func mapping(kv ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: kv}
}
