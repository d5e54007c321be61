package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latch-dev/latch/flows"
	"github.com/latch-dev/latch/vault"
)

type loginOptions struct {
	g             *globals
	Server        string
	Username      string
	PasswordStdin bool
	Code          string
	UseBackupCode bool
	OAuth         oauthOptions
}

func newLoginCmd(g *globals, runF func(context.Context, *loginOptions) error) *cobra.Command {
	o := &loginOptions{g: g}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a latch server and keep the session in the vault",
		Long: `Log in with a username (or email) and password, or through OAuth 2.0 /
OpenID Connect in a browser. The refresh token goes to the vault (the system
keyring, or the encrypted file vault), and the profile becomes the current one.

OAuth: --issuer URL --client-id ID logs in at any OpenID provider; --server URL
with --browser or --device logs in at a latch server's own provider. --browser
opens a browser on this machine (authorization code + PKCE, redirect to
127.0.0.1); --device shows a code to enter on any other device (RFC 8628). With
neither, latch picks device over SSH or without a display, else browser. The
URL (and a QR code on a terminal) is always printed; LATCH_BROWSER names the
program that opens it, or "none".

Any provider: a confidential client's secret comes from stdin
(--client-secret-stdin) or a file (--client-secret-file), never a flag value;
--auth-method says how it is sent (default: what the provider advertises,
client_secret_basic first). --audience, --resource and --auth-param k=v add to
the authorization request; --redirect-url fixes the loopback redirect the
provider registered (host localhost, 127.0.0.1 or [::1], exact port and path);
--ca-file trusts a private CA. A provider without OpenID discovery (GitHub) is
given by its endpoints: --token-url, with --auth-url for the browser and
--device-url for the device flow. All of it is remembered in the profile (the
secret in the vault), for refreshes, logout and logging in again.

Without --server, latch logs in again to the profile's server and user.
The password is read from a masked prompt, or from stdin with
--password-stdin; it is never a flag value.`,
		Example: `  latch login --server https://auth.example.com --username alice
  printf '%s\n' "$PASSWORD" | latch login --server http://127.0.0.1:8080 -u alice --password-stdin
  latch login --profile work          # log in again to a known profile
  latch login --server http://127.0.0.1:8080 --browser
  latch login --server https://auth.example.com --device
  latch login --issuer https://accounts.example.com --client-id my-cli --scopes "openid offline_access"
  latch login --issuer https://dex.example.com --client-id app --client-secret-file ~/.app-secret \
      --auth-param connector_id=github --redirect-url http://localhost:8000/callback
  latch login --issuer https://idp.internal --client-id cli --ca-file /etc/ssl/internal-ca.pem --audience api://internal
  latch login --device --client-id Iv1.0123456789abcdef --scopes "read:user" \
      --device-url https://github.com/login/device/code --token-url https://github.com/login/oauth/access_token \
      --userinfo-url https://api.github.com/user`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return loginRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "URL of the latch server (default: the profile's)")
	f.StringVarP(&o.Username, "username", "u", "", "username or email (default: the profile's)")
	f.BoolVar(&o.PasswordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.StringVar(&o.Code, "code", "", "the second factor: a code from the authenticator app, or a backup code")
	f.BoolVar(&o.UseBackupCode, "use-backup-code", false, "answer the second factor with the next unused backup code saved in the vault")
	f.StringVar(&o.OAuth.Issuer, "issuer", "", "log in through an OpenID Connect provider: its issuer URL")
	f.StringVar(&o.OAuth.ClientID, "client-id", "", "latch's client id at --issuer (default for a latch --server: latch-cli)")
	f.StringVar(&o.OAuth.Scopes, "scopes", "", `OAuth scopes, space-separated (default "openid offline_access profile email")`)
	f.BoolVar(&o.OAuth.Browser, "browser", false, "OAuth login in a browser on this machine (authorization code + PKCE)")
	f.BoolVar(&o.OAuth.Device, "device", false, "OAuth login on another device: show a code to enter there (device grant)")
	f.BoolVar(&o.OAuth.NoBrowser, "no-browser", false, "with --browser: print the URL, do not open a browser (also LATCH_BROWSER=none)")
	f.DurationVar(&o.OAuth.Wait, "wait", flows.DefaultBrowserTimeout, "how long an OAuth login waits for the browser or the device approval")
	o.OAuth.addProviderFlags(f)
	return cmd
}

func loginRun(ctx context.Context, o *loginOptions) error {
	g := o.g
	// Checked here rather than by cobra's flag groups, whose errors are not
	// usage errors (exit 2).
	for _, pair := range [][2]bool{{o.Code != "", o.UseBackupCode}, {o.OAuth.Browser, o.OAuth.Device}, {o.OAuth.Issuer != "", o.Server != ""}} {
		if pair[0] && pair[1] {
			return usagef("choose one of --code and --use-backup-code, of --browser and --device, and of --issuer and --server")
		}
	}
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	if o.wantsOAuth(e) {
		return oauthRun(ctx, o, e)
	}
	req := e.LoginDefaults(flows.LoginRequest{Profile: g.profile, Server: o.Server, Identifier: o.Username})
	if req.Server, err = g.value(req.Server, "server", "Server URL: "); err != nil {
		return err
	}
	if err := g.checkURL("server", req.Server); err != nil {
		return err
	}
	if req.Identifier, err = g.value(req.Identifier, "username", "Username or email: "); err != nil {
		return err
	}
	if req.Password, err = g.password(o.PasswordStdin, "Password for "+req.Identifier+": "); err != nil {
		return err
	}
	res, err := e.Login(ctx, req)
	if err != nil {
		return err
	}
	if res.MFA != nil {
		if res, err = secondFactor(ctx, g, e, res, o.Code, o.UseBackupCode); err != nil {
			return err
		}
	}
	printLoggedIn(g, e, res.Profile)
	return nil
}

// secondFactor answers a login's MFA step: with --code, with the next saved
// backup code, with a TOTP secret saved by mfa setup --store-secret, or with
// a code typed at a prompt.
func secondFactor(ctx context.Context, g *globals, e *flows.Env, pending *flows.LoginResult, code string, backup bool) (*flows.LoginResult, error) {
	switch {
	case code != "":
		return e.FinishMFA(ctx, pending, code)
	case backup:
		res, err := e.FinishMFAWithBackupCode(ctx, pending)
		if err == nil {
			if b, berr := e.SavedBackupCodes(ctx, pending.Profile.Name); berr == nil {
				fmt.Fprintf(g.err, "Used a saved backup code; %d left.\n", b.Remaining())
			}
		}
		return res, err
	}
	if res, err := e.FinishMFAWithStoredSecret(ctx, pending); err == nil {
		fmt.Fprintln(g.err, "Answered the second factor with the TOTP secret saved in the vault.")
		return res, nil
	} else if !errors.Is(err, flows.ErrNoTOTPSecret) {
		return nil, err
	}
	if !g.tty() {
		return nil, usagef("this account needs a second factor: pass --code CODE or --use-backup-code")
	}
	typed, err := g.value("", "code", "Authenticator code (or a backup code): ")
	if err != nil {
		return nil, err
	}
	return e.FinishMFA(ctx, pending, typed)
}

func printLoggedIn(g *globals, e *flows.Env, p vault.Profile) {
	where := p.Server
	if where == "" {
		where = p.Issuer
	}
	fmt.Fprintf(g.out, "Logged in to %s as %s (profile %q).\n", where, p.Username, p.Name)
	fmt.Fprintf(g.err, "Session saved in the %s vault: %s.\n", e.Vault.Backend, e.Vault.Reason)
	if e.Vault.Backend == vault.ModeMemory {
		fmt.Fprintln(g.err, "Warning: the memory vault forgets the session when this latch exits.")
	}
}

type signupOptions struct {
	g             *globals
	Server        string
	Username      string
	Email         string
	PasswordStdin bool
	NoLogin       bool
}

func newSignupCmd(g *globals, runF func(context.Context, *signupOptions) error) *cobra.Command {
	o := &signupOptions{g: g}
	cmd := &cobra.Command{
		Use:   "signup",
		Short: "Create an account on a latch server, then log in",
		Long: `Create an account and log in to it (unless --no-login). The server checks
the password's strength and tells which field is wrong.`,
		Example: `  latch signup --server http://127.0.0.1:8080 --username alice --email alice@example.com
  printf '%s\n' "$PASSWORD" | latch signup --server URL -u alice --email a@example.com --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return signupRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "URL of the latch server")
	f.StringVarP(&o.Username, "username", "u", "", "username for the new account")
	f.StringVar(&o.Email, "email", "", "email address for the new account")
	f.BoolVar(&o.PasswordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.BoolVar(&o.NoLogin, "no-login", false, "create the account without logging in")
	return cmd
}

func signupRun(ctx context.Context, o *signupOptions) error {
	g := o.g
	e, err := g.openEnv(ctx)
	if err != nil {
		return err
	}
	if o.Server, err = g.value(o.Server, "server", "Server URL: "); err != nil {
		return err
	}
	if err := g.checkURL("server", o.Server); err != nil {
		return err
	}
	if o.Username, err = g.value(o.Username, "username", "Username: "); err != nil {
		return err
	}
	if o.Email, err = g.value(o.Email, "email", "Email: "); err != nil {
		return err
	}
	pw, err := g.password(o.PasswordStdin, "Password: ")
	if err != nil {
		return err
	}
	if !o.PasswordStdin {
		again, err := g.password(false, "Repeat the password: ")
		if err != nil {
			return err
		}
		if again != pw {
			return usagef("the passwords differ")
		}
	}
	res, err := e.Signup(ctx, flows.SignupRequest{
		Profile: g.profile, Server: o.Server, Username: o.Username, Email: o.Email, Password: pw, NoLogin: o.NoLogin,
	})
	if err != nil {
		return err
	}
	if o.NoLogin {
		fmt.Fprintf(g.out, "Created account %s on %s.\n", o.Username, res.Profile.Server)
		return nil
	}
	if res.MFA != nil {
		return res.MFA
	}
	if res.Unverified {
		fmt.Fprintf(g.out, "Created account %s on %s.\n", o.Username, res.Profile.Server)
		fmt.Fprintf(g.err, "This server logs you in once your email is verified: open the link mailed to %s, or paste its "+
			"token into latch email verify --token-stdin --server %s; then latch login --server %s -u %s.\n",
			res.Profile.Email, res.Profile.Server, res.Profile.Server, o.Username)
		return nil
	}
	fmt.Fprintf(g.out, "Created account %s.\n", o.Username)
	printLoggedIn(g, e, res.Profile)
	return nil
}
