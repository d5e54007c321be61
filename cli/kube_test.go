package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// kubeconfigDoc is the part of a kubeconfig the tests look at.
type kubeconfigDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Clusters   []struct {
		Name string `yaml:"name"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Token string `yaml:"token"`
			Exec  *struct {
				APIVersion         string   `yaml:"apiVersion"`
				Command            string   `yaml:"command"`
				Args               []string `yaml:"args"`
				InteractiveMode    string   `yaml:"interactiveMode"`
				ProvideClusterInfo *bool    `yaml:"provideClusterInfo"`
			} `yaml:"exec"`
		} `yaml:"user"`
	} `yaml:"users"`
	CurrentContext string `yaml:"current-context"`
}

const kubeconfigWithOthers = `# my clusters
apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://127.0.0.1:6443
  name: prod # the real one
contexts:
- context:
    cluster: prod
    user: admin
  name: prod
current-context: prod
users:
- name: admin
  user:
    token: admin-token
`

func TestSetKubeUser(t *testing.T) {
	args := []string{"credential", "kubernetes", "-p", "work"}
	for _, tc := range []struct {
		name       string
		in         string
		user       string
		wantErr    string
		wantUsers  []string
		wantOthers string
		existed    bool
		keep       []string // text that must survive
	}{
		{name: "new file", in: "", user: "latch-work", wantUsers: []string{"latch-work"}},
		{name: "comments only", in: "# nothing yet\n", user: "latch-work", wantUsers: []string{"latch-work"}},
		{name: "added next to others", in: kubeconfigWithOthers, user: "latch-work",
			wantUsers: []string{"admin", "latch-work"}, keep: []string{"# my clusters", "# the real one", "admin-token", "current-context: prod"}},
		{name: "user with a token", in: kubeconfigWithOthers, user: "admin", existed: true,
			wantUsers: []string{"admin"}, wantOthers: "token", keep: []string{"admin-token"}},
		{name: "old exec replaced", in: "users:\n- name: u\n  user:\n    exec:\n      command: /old/latch\n      args: [x]\n", user: "u",
			existed: true, wantUsers: []string{"u"}},
		{name: "users null", in: "apiVersion: v1\nusers:\n", user: "u", wantUsers: []string{"u"}},
		{name: "user null", in: "users:\n- name: u\n  user:\n", user: "u", existed: true, wantUsers: []string{"u"}},
		{name: "users not a list", in: "users: 3\n", user: "u", wantErr: `"users" is not a list`},
		{name: "user not a mapping", in: "users:\n- name: u\n  user: [1]\n", user: "u", wantErr: `"user" is not a mapping`},
		{name: "not a mapping", in: "- a\n- b\n", user: "u", wantErr: "not a YAML mapping"},
		{name: "not YAML", in: "users: [\n", user: "u", wantErr: "not a kubeconfig (YAML)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := setKubeUser([]byte(tc.in), tc.user, "/opt/latch/bin/latch", args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--kubeconfig") {
					t.Fatalf("err = %v, want one saying %q and naming --kubeconfig", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var doc kubeconfigDoc
			if err := yaml.Unmarshal(res.data, &doc); err != nil {
				t.Fatalf("the result is not YAML: %v\n%s", err, res.data)
			}
			var names []string
			for _, u := range doc.Users {
				names = append(names, u.Name)
				if u.Name != tc.user {
					if u.User.Exec != nil {
						t.Fatalf("user %q was given an exec stanza", u.Name)
					}
					continue
				}
				x := u.User.Exec
				if x == nil || x.APIVersion != "client.authentication.k8s.io/v1" || x.Command != "/opt/latch/bin/latch" ||
					strings.Join(x.Args, " ") != "credential kubernetes -p work" || x.InteractiveMode != "Never" ||
					x.ProvideClusterInfo == nil || *x.ProvideClusterInfo {
					t.Fatalf("exec stanza of %q = %+v\n%s", u.Name, x, res.data)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.wantUsers, ",") {
				t.Fatalf("users %v, want %v", names, tc.wantUsers)
			}
			if strings.Join(res.others, ",") != tc.wantOthers || res.existed != tc.existed {
				t.Fatalf("others %v existed %v, want %q %v", res.others, res.existed, tc.wantOthers, tc.existed)
			}
			if tc.in == "" && (doc.APIVersion != "v1" || doc.Kind != "Config") {
				t.Fatalf("a new kubeconfig lacks apiVersion v1, kind Config:\n%s", res.data)
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(res.data), k) {
					t.Fatalf("%q was lost:\n%s", k, res.data)
				}
			}
			// Setting up again changes nothing.
			again, err := setKubeUser(res.data, tc.user, "/opt/latch/bin/latch", args)
			if err != nil || string(again.data) != string(res.data) {
				t.Fatalf("a second setup changed the file (%v):\n%s\n---\n%s", err, res.data, again.data)
			}
		})
	}
}

func TestExecCredentialVersion(t *testing.T) {
	for _, tc := range []struct {
		info, want, wantErr string
	}{
		{"", execCredentialV1, ""},
		{`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`, execCredentialV1, ""},
		{`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}`, execCredentialV1beta1, ""},
		{`{"kind":"ExecCredential"}`, execCredentialV1, ""},
		{`{"apiVersion":"client.authentication.k8s.io/v1alpha1"}`, "", "set apiVersion: client.authentication.k8s.io/v1"},
		{`{not json`, "", "KUBERNETES_EXEC_INFO is not the JSON kubectl sends"},
	} {
		t.Run(tc.info, func(t *testing.T) {
			got, err := execCredentialVersion(tc.info)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestWithVar(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "T=tok"},
		{[]string{"A=1", "T=old", "TT=2", "T=older"}, "A=1 TT=2 T=tok"},
		{[]string{"T"}, "T T=tok"},
	} {
		if got := strings.Join(withVar(tc.env, "T", "tok"), " "); got != tc.want {
			t.Errorf("withVar(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestIntegrationHelpHasExamples: every command of the integrations (latch
// token, exec, credential, kube, git, docker, agent) shows an Example in
// its help, the parents included.
func TestIntegrationHelpHasExamples(t *testing.T) {
	root := NewRootCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	for _, name := range []string{"token", "exec", "credential", "kube", "git", "docker", "agent"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c == root {
			t.Fatalf("no command %q: %v", name, err)
		}
		walk(c)
	}
}
