package flows

import (
	"bufio"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/internal/randcheck"
)

// Tests of docs/conformance.md's claims about the client's browser login
// that the flow tests do not check by themselves.

// The loopback listener is bound to 127.0.0.1 itself (RFC 8252 §8.3), not
// to every address with only the redirect URI saying 127.0.0.1: the kernel
// lists one listening socket on the port, at 127.0.0.1, and the port
// answers on no other address of this machine.
func TestBrowserLoginListenerLoopbackOnly(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	u, err := url.Parse(b.RedirectURI)
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("redirect URI %q", b.RedirectURI)
	}
	port, _ := strconv.Atoi(u.Port())
	if runtime.GOOS == "linux" {
		if got := listeners(t, port); len(got) != 1 || !got[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("listening sockets on port %d: %v, want only 127.0.0.1", port, got)
		}
	}
	if c, err := net.DialTimeout("tcp", u.Host, 2*time.Second); err != nil {
		t.Fatalf("the listener does not answer on %s: %v", u.Host, err)
	} else {
		c.Close()
	}
	// A wildcard listener would answer on these.
	others := []string{"::1"}
	if runtime.GOOS == "linux" {
		others = append(others, "127.0.0.2") // all of 127/8 is the loopback interface there
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsGlobalUnicast() {
			others = append(others, ipn.IP.String())
		}
	}
	for _, ip := range others {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, u.Port()), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("the callback port answers on %s: the listener is not bound to 127.0.0.1 alone", ip)
		}
	}
}

// listeners are the local addresses of the TCP sockets listening on port,
// IPv4 and IPv6, as the kernel lists them.
func listeners(t *testing.T, port int) []net.IP {
	t.Helper()
	var ips []net.IP
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
				continue
			}
			raw, err := hex.DecodeString(hexIP)
			if err != nil || len(raw)%4 != 0 {
				t.Fatalf("%s: %q", file, sc.Text())
			}
			// Each 32-bit word is in host order (little-endian here).
			for i := 0; i < len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			ips = append(ips, net.IP(raw))
		}
		f.Close()
	}
	return ips
}

// Every login gets its own state and nonce (and PKCE challenge): base64url,
// at least 128 random bits, never repeated, never one for the other.
func TestBrowserLoginStateNonceUnique(t *testing.T) {
	o := newOAuthEnv(t)
	const n = 100
	var states, nonces, challenges []string
	seen := map[string]bool{}
	for range n {
		b, err := o.StartBrowserLogin(o.ctx, o.req())
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		u, err := url.Parse(b.URL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		for _, v := range []string{q.Get("state"), q.Get("nonce"), q.Get("code_challenge")} {
			if seen[v] {
				t.Fatalf("%q used twice among states, nonces and challenges", v)
			}
			seen[v] = true
		}
		states, nonces, challenges = append(states, q.Get("state")), append(nonces, q.Get("nonce")), append(challenges, q.Get("code_challenge"))
	}
	randcheck.Check(t, "state", states, 16)
	randcheck.Check(t, "nonce", nonces, 16)
	randcheck.Check(t, "code_challenge", challenges, 32)
}

// The callback's page sends no Referer on (its URL held the code) and runs
// nothing: Referrer-Policy no-referrer, CSP default-src 'none'.
func TestBrowserLoginCallbackPageHeaders(t *testing.T) {
	o := newOAuthEnv(t)
	b, err := o.StartBrowserLogin(o.ctx, o.req())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := o.FinishBrowserLogin(o.ctx, b); done <- err }()
	res, err := http.Get(b.RedirectURI + "?" + url.Values{"code": {"c"}, "state": {"forged"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	<-done
	if rp, csp := res.Header.Get("Referrer-Policy"), res.Header.Get("Content-Security-Policy"); rp != "no-referrer" || !strings.HasPrefix(csp, "default-src 'none'") {
		t.Fatalf("callback page: Referrer-Policy %q, Content-Security-Policy %q", rp, csp)
	}
}
