package cli

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/flows"
)

// git's credential helper protocol, in process, over testEnv's profile
// "work" (access token at-work, valid an hour from testNow).
func TestGitCredentialProtocol(t *testing.T) {
	exp := testNow.Add(time.Hour).Unix()
	answer := func(host, path, user string) string {
		s := "protocol=https\nhost=" + host + "\n"
		if path != "" {
			s += "path=" + path + "\n"
		}
		return s + fmt.Sprintf("username=%s\npassword=at-work\npassword_expiry_utc=%d\n", user, exp)
	}
	tests := []struct {
		name       string
		flags      []string // after credential git
		op         string
		stdin      string
		wantStdout string
		wantCode   int
		wantStderr string
	}{
		{name: "host match", op: "get", stdin: "protocol=https\nhost=git.example.com\n\n",
			wantStdout: answer("git.example.com", "", "work")},
		{name: "no blank line, EOF ends the request", op: "get", stdin: "protocol=https\nhost=git.example.com",
			wantStdout: answer("git.example.com", "", "work")},
		{name: "CRLF lines", op: "get", stdin: "protocol=https\r\nhost=git.example.com\r\n\r\n",
			wantStdout: answer("git.example.com", "", "work")},
		{name: "host case and default port", op: "get", stdin: "protocol=https\nhost=Git.Example.com:443\n\n",
			wantStdout: answer("Git.Example.com:443", "", "work")},
		{name: "wwwauth and capability lines ignored", op: "get",
			stdin:      "capability[]=authtype\nprotocol=https\nhost=git.example.com\nwwwauth[]=Basic realm=\"git\"\nwwwauth[]=Bearer\n\n",
			wantStdout: answer("git.example.com", "", "work")},
		{name: "url= line", op: "get", stdin: "url=https://git.example.com/team/repo.git\n\n",
			wantStdout: answer("git.example.com", "team/repo.git", "work")},
		{name: "git's username is answered", op: "get", stdin: "protocol=https\nhost=git.example.com\nusername=bob\n\n",
			wantStdout: answer("git.example.com", "", "bob")},
		{name: "--username", flags: []string{"--username", "x-token"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\n\n", wantStdout: answer("git.example.com", "", "x-token")},
		{name: "--username and git asks for another user", flags: []string{"--username", "x-token"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\nusername=bob\n\n"},
		{name: "unknown host", op: "get", stdin: "protocol=https\nhost=evil.example.com\n\n"},
		{name: "host suffix is another host", op: "get", stdin: "protocol=https\nhost=git.example.com.evil.net\n\n"},
		{name: "other port", op: "get", stdin: "protocol=https\nhost=git.example.com:8443\n\n"},
		{name: "other protocol", op: "get", stdin: "protocol=http\nhost=git.example.com\n\n"},
		{name: "no protocol", op: "get", stdin: "host=git.example.com\n\n"},
		{name: "empty request", op: "get", stdin: ""},
		{name: "path under --host's path", flags: []string{"--host", "https://git.example.com/team"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\npath=team/repo.git\n\n", wantStdout: answer("git.example.com", "team/repo.git", "work")},
		{name: "path equal to --host's path", flags: []string{"--host", "https://git.example.com/team/"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\npath=team\n\n", wantStdout: answer("git.example.com", "team", "work")},
		{name: "path of another team", flags: []string{"--host", "https://git.example.com/team"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\npath=other/repo.git\n\n"},
		{name: "path that only starts like --host's", flags: []string{"--host", "https://git.example.com/team"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\npath=teamster/repo.git\n\n"},
		{name: "no path sent: git matched the config key itself", flags: []string{"--host", "https://git.example.com/team"}, op: "get",
			stdin: "protocol=https\nhost=git.example.com\n\n", wantStdout: answer("git.example.com", "", "work")},
		{name: "path sent, --host has none", op: "get", stdin: "protocol=https\nhost=git.example.com\npath=any/repo.git\n\n",
			wantStdout: answer("git.example.com", "any/repo.git", "work")},
		{name: "malformed line", op: "get", stdin: "protocol=https\nhost git.example.com\n\n",
			wantCode: exitError, wantStderr: "line 2 of the request is not key=value"},
		{name: "empty key", op: "get", stdin: "=https\n\n", wantCode: exitError, wantStderr: "line 1"},
		{name: "huge request", op: "get", stdin: "protocol=https\nx=" + strings.Repeat("a", maxGitRequest) + "\n\n",
			wantCode: exitError, wantStderr: "larger than 64 KiB"},
		{name: "store does nothing", op: "store", stdin: "protocol=https\nhost=git.example.com\nusername=work\npassword=at-work\n\n"},
		{name: "erase of another token", op: "erase", stdin: "protocol=https\nhost=git.example.com\nusername=work\npassword=old\n\n"},
		{name: "unknown operation", op: "list", wantCode: exitUsage, wantStderr: "get, store or erase"},
		{name: "no --host", flags: []string{"--host", ""}, op: "get", stdin: "protocol=https\nhost=git.example.com\n\n",
			wantCode: exitUsage, wantStderr: "missing --host"},
		{name: "--host not a URL", flags: []string{"--host", "git.example.com"}, op: "get",
			wantCode: exitUsage, wantStderr: "--host"},
		{name: "unknown profile", flags: []string{"-p", "nope"}, op: "get", stdin: "protocol=https\nhost=git.example.com\n\n",
			wantCode: exitUsage, wantStderr: `no profile named "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(t, account("work", "http://127.0.0.1:1"))
			args := []string{"credential", "git", "--host", "https://git.example.com", "-p", "work"}
			args = append(append(args, tt.flags...), tt.op)
			r := runCLI(t, e, tt.stdin, args...)
			if r.code != tt.wantCode || r.stdout != tt.wantStdout || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr: %s\nwant exit %d, stdout:\n%s\nstderr containing %q",
					r.code, r.stdout, r.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if tt.wantStdout == "" && strings.Contains(r.stderr, "at-work") {
				t.Fatalf("the token leaked to stderr: %s", r.stderr)
			}
		})
	}
}

// erase withdraws the token git was refused, and only that one: the next
// get must not hand it out again, and must not prompt for anything.
func TestGitCredentialErase(t *testing.T) {
	e := testEnv(t, account("work", "http://127.0.0.1:1"))
	get := func() cliResult {
		return runCLI(t, e, "protocol=https\nhost=git.example.com\n\n",
			"credential", "git", "--host", "https://git.example.com", "-p", "work", "get")
	}
	erase := func(password string) cliResult {
		return runCLI(t, e, "protocol=https\nhost=git.example.com\nusername=work\npassword="+password+"\n\n",
			"credential", "git", "--host", "https://git.example.com", "-p", "work", "erase")
	}
	if r := erase("at-someone-else"); r.code != 0 || r.stdout != "" {
		t.Fatalf("erase of a token that is not the current one: %+v", r)
	}
	if r := get(); !strings.Contains(r.stdout, "password=at-work\n") {
		t.Fatalf("an erase of another token withdrew the current one: %+v", r)
	}
	if r := runCLI(t, e, "protocol=https\nhost=other.example.com\npassword=at-work\n\n",
		"credential", "git", "--host", "https://git.example.com", "-p", "work", "erase"); r.code != 0 {
		t.Fatalf("erase for another host: %+v", r)
	}
	if r := get(); !strings.Contains(r.stdout, "password=at-work\n") {
		t.Fatalf("an erase for another host withdrew the token: %+v", r)
	}
	if r := erase("at-work"); r.code != 0 || r.stdout != "" {
		t.Fatalf("erase: %+v", r)
	}
	// The server (127.0.0.1:1) is unreachable: the refresh the next get
	// attempts fails, so it answers nothing rather than the withdrawn token.
	r := get()
	if r.code == 0 || r.stdout != "" || strings.Contains(r.stderr, "at-work") {
		t.Fatalf("get after erase handed out the withdrawn token or hid the failure: %+v", r)
	}
	// The session is kept: the refresh token is still there.
	if rt, err := e.Tokens().RefreshToken(t.Context(), "work"); err != nil || rt != "rt-work" {
		t.Fatalf("erase touched the refresh token: %q, %v", rt, err)
	}
}

// Without a session the helper says so on stderr, naming latch login, and
// answers nothing: when none was ever saved here, and when the server
// refuses the refresh token.
func TestGitCredentialLoginRequired(t *testing.T) {
	srv := newE2E(t, time.Hour).srv // knows nothing of rt-work
	tests := []struct {
		name  string
		setup func(t *testing.T, e *flows.Env)
	}{
		{"no saved session", func(t *testing.T, e *flows.Env) {
			if err := e.Tokens().Forget(t.Context(), "work"); err != nil {
				t.Fatal(err)
			}
		}},
		{"refresh token refused", func(t *testing.T, e *flows.Env) {
			if _, err := e.DropAccessToken(t.Context(), "work", ""); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(t, account("work", srv.URL))
			tt.setup(t, e)
			r := runCLI(t, e, "protocol=https\nhost=git.example.com\n\n",
				"credential", "git", "--host", "https://git.example.com", "-p", "work", "get")
			if r.code != exitLogin || r.stdout != "" || !strings.Contains(r.stderr, "latch login") ||
				!strings.Contains(r.stderr, "work") || strings.Count(r.stderr, "latch login") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestGitSetupDryRun(t *testing.T) {
	e := testEnv(t, account("work", "http://127.0.0.1:1"), account("it's mine", "http://127.0.0.1:1"))
	tests := []struct {
		name     string
		args     []string
		want     []string // lines of stdout, each a substring
		wantCode int
	}{
		{name: "host", args: []string{"--host", "https://git.example.com/", "-p", "work"}, want: []string{
			"git config --global --replace-all credential.https://git.example.com.helper ''",
			"git config --global --add credential.https://git.example.com.helper '!",
			" credential git --host https://git.example.com -p work'",
		}},
		{name: "path and username", args: []string{"--host", "https://Git.Example.com:443/team", "-p", "work", "--path", "--username", "bob"}, want: []string{
			"credential.https://git.example.com/team.helper ''",
			" credential git --host https://git.example.com/team -p work --username bob'",
			"git config --global credential.https://git.example.com/team.useHttpPath true",
		}},
		{name: "remove", args: []string{"--host", "https://git.example.com", "--remove"}, want: []string{
			"git config --global --unset-all credential.https://git.example.com.helper",
			"git config --global --unset-all credential.https://git.example.com.useHttpPath",
		}},
		{name: "plain http off loopback", args: []string{"--host", "http://git.example.com", "-p", "work"}, wantCode: exitUsage},
		{name: "no host", args: []string{"-p", "work"}, wantCode: exitUsage},
		{name: "user in URL", args: []string{"--host", "https://bob@git.example.com", "-p", "work"}, wantCode: exitUsage},
		{name: "unknown profile", args: []string{"--host", "https://git.example.com", "-p", "nope"}, wantCode: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, e, "", append([]string{"git", "setup", "--dry-run"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Fatalf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// A profile name with a quote and a space survives both shells: the one
// that runs the printed command, and the one git runs the helper with.
func TestGitSetupQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// words splits line as sh does.
	words := func(line string) []string {
		out, err := exec.Command(sh, "-c", `eval "set -- $1"; printf '%s\n' "$@"`, "sh", line).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}
	const name = "it's $(mine)"
	e := testEnv(t, account(name, "http://127.0.0.1:1"))
	r := runCLI(t, e, "", "git", "setup", "--dry-run", "--host", "https://git.example.com", "-p", name)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	add := words(lines[1])
	if len(add) != 6 || add[4] != "credential.https://git.example.com.helper" || !strings.HasPrefix(add[5], "!") {
		t.Fatalf("the printed command splits into %q", add)
	}
	helper := words(strings.TrimPrefix(add[5], "!"))
	want := []string{"credential", "git", "--host", "https://git.example.com", "-p", name}
	if len(helper) != 7 || !filepath.IsAbs(helper[0]) || !reflect.DeepEqual(helper[1:], want) {
		t.Fatalf("git would run the helper as %q", helper)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/latch": "/usr/local/bin/latch",
		"/opt/my tools/latch":  "'/opt/my tools/latch'",
		"it's":                 `'it'\''s'`,
		"":                     "''",
		"$(rm -rf ~)":          "'$(rm -rf ~)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
