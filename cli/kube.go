package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
)

// The ExecCredential API versions latch answers kubectl in.
const (
	execCredentialV1      = "client.authentication.k8s.io/v1"
	execCredentialV1beta1 = "client.authentication.k8s.io/v1beta1"
)

func newCredentialKubernetesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "kubernetes",
		Short: "kubectl's exec credential plugin: print an ExecCredential",
		Long: `Print an ExecCredential holding the profile's access token and its expiry,
for kubectl (client-go) to send as a bearer token. kubectl runs this itself,
once per invocation, when the kubeconfig's user has the exec stanza that
latch kube setup writes.

The API version is client.authentication.k8s.io/v1, or v1beta1 when kubectl
asks for it in KUBERNETES_EXEC_INFO. latch refreshes the token when it is
about to expire, but never logs in here: kubectl gives it no terminal. When
the session is over it exits 4 asking for latch login; a locked vault exits 5.`,
		Example: `  latch kube setup --profile work          # writes the stanza that runs this
  latch credential kubernetes --profile work | jq .status.expirationTimestamp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return credentialKubernetesRun(cmd.Context(), g, os.Getenv("KUBERNETES_EXEC_INFO"))
		},
	}
}

// execInfo is what kubectl says in KUBERNETES_EXEC_INFO; latch needs only
// the API version it expects back.
type execInfo struct {
	APIVersion string `json:"apiVersion"`
}

// execCredentialVersion picks the ExecCredential version to answer in:
// what KUBERNETES_EXEC_INFO asks for, v1 when it is unset (an older kubectl,
// or a person running latch by hand).
func execCredentialVersion(info string) (string, error) {
	if strings.TrimSpace(info) == "" {
		return execCredentialV1, nil
	}
	var in execInfo
	// The decoder's errors quote no input.
	if err := json.Unmarshal([]byte(info), &in); err != nil {
		return "", fmt.Errorf("KUBERNETES_EXEC_INFO is not the JSON kubectl sends: %v", err)
	}
	switch in.APIVersion {
	case execCredentialV1, execCredentialV1beta1:
		return in.APIVersion, nil
	case "":
		return execCredentialV1, nil
	}
	return "", fmt.Errorf("kubectl asks for an ExecCredential of version %q; latch writes %s and %s: "+
		"set apiVersion: %s in the kubeconfig's exec stanza (latch kube setup writes it)",
		in.APIVersion, execCredentialV1, execCredentialV1beta1, execCredentialV1)
}

// execCredential is what kubectl reads from the plugin's stdout; the same
// fields in v1 and v1beta1.
type execCredential struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Status     execCredentialStatus `json:"status"`
}

type execCredentialStatus struct {
	ExpirationTimestamp string `json:"expirationTimestamp"`
	Token               string `json:"token"`
}

func credentialKubernetesRun(ctx context.Context, g *globals, info string) error {
	version, err := execCredentialVersion(info)
	if err != nil {
		return err
	}
	// kubectl runs plugins without a terminal, but a person may run this
	// in one: a file vault that wants its passphrase says so and exits 5
	// rather than waiting on a prompt kubectl never shows.
	g.noPrompt = true
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	it, err := e.TokenFor(ctx, g.profile, flows.TokenOptions{})
	if err != nil {
		return helperAdvice("kubectl", err, g.profile)
	}
	return json.NewEncoder(g.out).Encode(execCredential{
		APIVersion: version,
		Kind:       "ExecCredential",
		Status: execCredentialStatus{
			Token:               it.AccessToken,
			ExpirationTimestamp: it.Expiry.UTC().Format(time.RFC3339),
		},
	})
}

func newKubeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kube",
		Short: "Set kubectl up to get its tokens from latch",
		Args:  cobra.NoArgs,
		Example: `  latch kube setup --profile work
  kubectl config set-context --current --user latch-work`,
	}
	cmd.AddCommand(newKubeSetupCmd(g))
	return cmd
}

func newKubeSetupCmd(g *globals) *cobra.Command {
	o := &kubeSetupOptions{g: g, self: os.Executable}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Add a kubeconfig user whose token comes from latch",
		Long: `Add (or update) a user in the kubeconfig whose credentials come from
latch credential kubernetes: an exec stanza (client.authentication.k8s.io/v1,
interactiveMode Never) running this latch binary by its absolute path for
the profile. Everything else in the file is kept. The file is written
safely: a new copy (mode 0600) next to it, synced, then renamed over it.

The kubeconfig is --kubeconfig, else the first file in $KUBECONFIG, else
~/.kube/config. The user is named latch-PROFILE unless --user says
otherwise. Point a context at it with kubectl config set-context --user.`,
		Example: `  latch kube setup --profile work
  latch kube setup --profile work --kubeconfig ./kubeconfig --user alice
  kubectl config set-context --current --user latch-work`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return kubeSetupRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "the kubeconfig to change (default: first of $KUBECONFIG, else ~/.kube/config)")
	f.StringVar(&o.User, "user", "", "the kubeconfig user to add or update (default latch-PROFILE)")
	return cmd
}
