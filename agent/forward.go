package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/latch-dev/latch/vault"
)

// Forwarding: a second socket, beside the session cache's, that a user
// forwards over SSH (ssh -R REMOTE:FORWARD.SOCK) so that latch on the remote
// box gets access tokens without holding any secret there.
//
// It is a separate socket because SO_PEERCRED cannot tell a forwarded caller
// from a local one: over ssh -R the connection comes from the user's own ssh
// client. So the cache socket, which hands out the unlocked vault key, must
// never be forwarded, and the forwarding socket speaks only two requests:
//
//	→ {"v":1,"op":"hello"}
//	← {"v":1,"ok":true,"kind":"forward"}
//	→ {"v":1,"op":"token","profile":"work","min_valid_ms":600000,"id_token":false}
//	← {"v":1,"ok":true,"token":{"access_token":"…","token_type":"Bearer","expires_at":"2026-…Z"}}
//	← {"v":1,"ok":false,"code":"not_allowed","error":"…"}
//
// hello is answered whatever its "v", with the agent's own, so that a cache
// client (or a latch of another version) learns what the socket is. Only
// access tokens (and ID tokens when asked) leave: never a refresh token, a
// cache entry or the vault key. Only the profiles named in ForwardOptions are
// served, every token request is logged (never the token), and nothing a
// request reaches can start a login.

// ForwardProtocolVersion is the version of the forwarding protocol.
const ForwardProtocolVersion = 1

const (
	kindForward = "forward"
	opToken     = "token"

	codeNotAllowed    = "not_allowed"
	codeLoginRequired = "login_required"
	codeLocked        = "locked"
	codeFailed        = "failed"

	// maxForwardRequest bounds one request line: a profile name and a few
	// numbers.
	maxForwardRequest = 4 << 10
	// maxForwardResponse bounds one response line: an access token and an
	// ID token, both JWTs of a few KiB at most.
	maxForwardResponse = 256 << 10
	// defaultTokenTimeout bounds one token request on the agent's side: a
	// refresh is a few HTTP calls, each bounded by latch's --timeout (10 s).
	defaultTokenTimeout = 30 * time.Second
	// forwardTimeout bounds a token request on the client's side: longer
	// than the agent's own bound, so that its answer arrives.
	forwardTimeout = defaultTokenTimeout + 10*time.Second
	// maxForwardConns bounds the forwarded connections served at once and
	// maxForwardCalls the token requests run at once (each a latch
	// process); the others wait their turn.
	maxForwardConns = 32
	maxForwardCalls = 4
)

var (
	// ErrForwardSocket means a socket is a forwarded agent's, not a
	// session cache.
	ErrForwardSocket = errors.New("a forwarding socket")
	// ErrNotForwarding means no forwarding agent answers on a socket:
	// nothing listens there, or a session cache agent does.
	ErrNotForwarding = errors.New("not a forwarded latch agent")
	// ErrNotAllowed means the agent does not forward the profile asked for.
	ErrNotAllowed = errors.New("it is not allowed for forwarding")
	// ErrRemoteLogin means the agent's machine has no valid session for
	// the profile: someone must log in there.
	ErrRemoteLogin = errors.New("login required on the latch agent's machine")
)

// TokenRequest is what a forwarded caller asks for.
type TokenRequest struct {
	Profile string
	// MinValid: the token must stay valid at least this long.
	MinValid time.Duration
	// IDToken: include the profile's ID token (OpenID profiles).
	IDToken bool
}

// Token is what the agent hands out: an access token, never a refresh token.
type Token struct {
	AccessToken string
	TokenType   string
	Expiry      time.Time
	IDToken     string
}

// TokenFunc gets a valid access token on the agent's machine. It must
// never start a login; an error wrapping ErrRemoteLogin or vault.ErrLocked
// tells the caller what must happen on that machine.
type TokenFunc func(ctx context.Context, req TokenRequest) (*Token, error)

// ForwardOptions configure the forwarding socket.
type ForwardOptions struct {
	// Socket is the path to listen on; empty means ForwardSocketPath of
	// the cache socket.
	Socket string
	// Profiles are the profiles served, by name; any other is refused.
	Profiles []string
	// Token gets the tokens (ExecToken runs latch token).
	Token TokenFunc
	// Timeout bounds one call to Token; zero means 30 s.
	Timeout time.Duration
}

// ForwardSocketPath is where the forwarding socket of the agent on
// cacheSocket listens by default: forward.sock beside it.
func ForwardSocketPath(cacheSocket string) string {
	return filepath.Join(filepath.Dir(cacheSocket), "forward.sock")
}

type forwardRequest struct {
	V          int    `json:"v"`
	Op         string `json:"op"`
	Profile    string `json:"profile,omitempty"`
	MinValidMs int64  `json:"min_valid_ms,omitempty"`
	IDToken    bool   `json:"id_token,omitempty"`
}

type forwardResponse struct {
	V     int        `json:"v"`
	OK    bool       `json:"ok"`
	Kind  string     `json:"kind,omitempty"`
	Code  string     `json:"code,omitempty"`
	Error string     `json:"error,omitempty"`
	Token *wireToken `json:"token,omitempty"`
}

type wireToken struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	IDToken     string    `json:"id_token,omitempty"`
}

// forwarder is the forwarding socket's part of a running agent.
type forwarder struct {
	o       ForwardOptions
	path    string
	ln      *net.UnixListener
	allowed map[string]bool
	sem     chan struct{} // connections
	calls   chan struct{} // token requests running
	ctx     context.Context
	release func()
}

// listenForward checks o and listens on the forwarding socket as Serve
// does on the cache socket (listenPrivate). Token calls end when stop closes.
func listenForward(ctx context.Context, o ForwardOptions, cacheSocket string, stop <-chan struct{}) (*forwarder, error) {
	if o.Token == nil {
		return nil, errors.New("latch agent: forwarding needs a token source")
	}
	if len(o.Profiles) == 0 {
		return nil, errors.New("latch agent: forwarding needs at least one profile allowed by name (--forward-profile NAME)")
	}
	allowed := make(map[string]bool, len(o.Profiles))
	for _, p := range o.Profiles {
		if err := vault.ValidateName(p); err != nil {
			return nil, fmt.Errorf("latch agent: forward profile: %w", err)
		}
		allowed[p] = true
	}
	if o.Socket == "" {
		o.Socket = ForwardSocketPath(cacheSocket)
	}
	abs, err := filepath.Abs(o.Socket)
	if err != nil {
		return nil, fmt.Errorf("latch agent: forwarding socket: %w", err)
	}
	o.Socket = abs
	if o.Socket == cacheSocket {
		return nil, fmt.Errorf("latch agent: the forwarding socket must not be the session cache's socket %s: choose another path with --forward-socket", cacheSocket)
	}
	if len(o.Socket) > maxSocketPath {
		return nil, fmt.Errorf("forwarding socket path %s is longer than %d bytes: choose a shorter one with --forward-socket", o.Socket, maxSocketPath)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTokenTimeout
	}
	ln, release, err := listenPrivate(ctx, o.Socket)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	return &forwarder{
		o: o, path: o.Socket, ln: ln, allowed: allowed,
		sem:   make(chan struct{}, maxForwardConns),
		calls: make(chan struct{}, maxForwardCalls),
		ctx:   cctx, release: release,
	}, nil
}

func (f *forwarder) allowedNames() []string {
	names := make([]string, 0, len(f.allowed))
	for n := range f.allowed {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// serveForward answers one forwarded connection's requests in turn: the
// cache socket's loop with the forwarding handler, which knows no cache op.
func (s *server) serveForward(c *net.UnixConn) {
	s.serveLines(c, 1024, maxForwardRequest, func() any {
		s.o.Log.Warn("latch agent: forwarded request refused", "outcome", "too_large")
		return s.fwdFail(codeTooLarge, fmt.Sprintf("request larger than the %d KiB limit", maxForwardRequest>>10))
	}, func(line []byte) (any, func(), bool) {
		return s.handleForward(line), nil, false
	})
}

func (s *server) fwdFail(code, msg string) forwardResponse {
	return forwardResponse{V: ForwardProtocolVersion, Code: code, Error: msg}
}

// handleForward answers one forwarded request and logs each token request:
// the profile and the outcome, never the token.
func (s *server) handleForward(line []byte) forwardResponse {
	var req forwardRequest
	if err := json.Unmarshal(line, &req); err != nil {
		s.o.Log.Warn("latch agent: forwarded request refused", "outcome", "malformed")
		return s.fwdFail(codeBadRequest, "malformed request: want one JSON object per line")
	}
	if req.Op == opHello {
		return forwardResponse{V: ForwardProtocolVersion, OK: true, Kind: kindForward}
	}
	if req.V != ForwardProtocolVersion {
		s.o.Log.Warn("latch agent: forwarded request refused", "outcome", "version", "protocol", req.V)
		return s.fwdFail(codeVersion, fmt.Sprintf("this latch agent speaks forwarding protocol %d, the request speaks protocol %d",
			ForwardProtocolVersion, req.V))
	}
	if req.Op != opToken {
		s.o.Log.Warn("latch agent: forwarded request refused", "outcome", "bad_op")
		return s.fwdFail(codeBadRequest, fmt.Sprintf("a forwarding socket answers only hello and token, not %q", req.Op))
	}
	if err := vault.ValidateName(req.Profile); err != nil {
		s.o.Log.Warn("latch agent: forwarded request refused", "outcome", "bad_profile")
		return s.fwdFail(codeBadRequest, err.Error())
	}
	if req.MinValidMs < 0 || req.MinValidMs > maxTTLms {
		s.o.Log.Warn("latch agent: forwarded request refused", "profile", req.Profile, "outcome", "bad_min_valid")
		return s.fwdFail(codeBadRequest, "min_valid_ms must be between 0 and a year")
	}
	f := s.fwd
	if !f.allowed[req.Profile] {
		s.o.Log.Warn("latch agent: forwarded token request", "profile", req.Profile, "outcome", "refused")
		return s.fwdFail(codeNotAllowed, fmt.Sprintf("this latch agent does not forward profile %q", req.Profile))
	}

	ctx, cancel := context.WithTimeout(f.ctx, f.o.Timeout)
	defer cancel()
	select {
	case f.calls <- struct{}{}:
		defer func() { <-f.calls }()
	case <-ctx.Done():
		s.o.Log.Warn("latch agent: forwarded token request", "profile", req.Profile, "outcome", "failed", "err", "busy")
		return s.fwdFail(codeFailed, "the latch agent is busy: try again")
	}
	tok, err := f.o.Token(ctx, TokenRequest{
		Profile:  req.Profile,
		MinValid: time.Duration(req.MinValidMs) * time.Millisecond,
		IDToken:  req.IDToken,
	})
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("no access token came back")
	}
	if err != nil {
		code := codeFailed
		switch {
		case errors.Is(err, ErrRemoteLogin):
			code = codeLoginRequired
		case errors.Is(err, vault.ErrLocked):
			code = codeLocked
		}
		s.o.Log.Warn("latch agent: forwarded token request", "profile", req.Profile, "outcome", code, "err", err.Error())
		return s.fwdFail(code, err.Error())
	}
	s.o.Log.Info("latch agent: forwarded token request", "profile", req.Profile, "outcome", "allowed",
		"expires_at", tok.Expiry.UTC().Format(time.RFC3339))
	return forwardResponse{V: ForwardProtocolVersion, OK: true, Token: &wireToken{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresAt: tok.Expiry, IDToken: tok.IDToken,
	}}
}
