package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/latch-dev/latch/vault"
)

// helloTimeout bounds DialForward's hello: over ssh -R the answer crosses
// the network, and every latch command on the remote box pays it once.
const helloTimeout = 3 * time.Second

// ForwardClient asks a forwarded latch agent for access tokens. It keeps
// the connection its hello opened for the token request that follows.
type ForwardClient struct {
	path string

	mu   sync.Mutex
	conn *net.UnixConn
	r    *bufio.Reader
}

// DialForward says hello on socketPath and returns a client when a
// forwarding agent answers. An error wrapping ErrNotForwarding means there
// is none: nothing listens there, or a session cache agent does. An error
// without it means a socket that accepts but does not answer as it should
// (ssh still forwarding to an agent that has gone, or a socket of another
// user).
func DialForward(ctx context.Context, socketPath string) (*ForwardClient, error) {
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	conn, err := dialAgent(ctx, socketPath)
	if err != nil {
		if errors.Is(err, vault.ErrNoCache) {
			return nil, fmt.Errorf("%w at %s: %w", ErrNotForwarding, socketPath, err)
		}
		return nil, err
	}
	c := &ForwardClient{path: socketPath, conn: conn, r: bufio.NewReaderSize(conn, 4096)}
	resp, err := c.exchange(ctx, forwardRequest{V: ForwardProtocolVersion, Op: opHello})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s accepts connections but no latch agent answers there (%v): "+
			"is latch agent --forwardable still running on the machine you came from, and ssh -R still connected?", socketPath, err)
	}
	if resp.Kind != kindForward {
		c.Close()
		return nil, fmt.Errorf("%w: %s is a latch agent's session cache", ErrNotForwarding, socketPath)
	}
	return c, nil
}

// Token asks the agent for a valid access token of req.Profile. A profile
// the agent does not forward wraps ErrNotAllowed; a session over on the
// agent's machine wraps ErrRemoteLogin; its vault locked wraps
// vault.ErrLocked.
func (c *ForwardClient) Token(ctx context.Context, req TokenRequest) (*Token, error) {
	if err := vault.ValidateName(req.Profile); err != nil {
		return nil, err
	}
	if req.MinValid < 0 {
		req.MinValid = 0
	}
	wreq := forwardRequest{V: ForwardProtocolVersion, Op: opToken, Profile: req.Profile,
		MinValidMs: min(int64((req.MinValid+time.Millisecond-1)/time.Millisecond), maxTTLms+1), IDToken: req.IDToken}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	var resp forwardResponse
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			conn, err := dialAgent(ctx, c.path)
			if err != nil {
				return nil, fmt.Errorf("the forwarded latch agent at %s: %w", c.path, err)
			}
			c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
		}
		var err error
		resp, err = c.exchange(ctx, wreq)
		if err == nil {
			break
		}
		c.closeConn()
		// The agent ends connections idle for a few seconds: a token
		// request is safe to send again.
		if reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return nil, fmt.Errorf("the forwarded latch agent at %s did not answer: %w", c.path, err)
	}
	if resp.V != ForwardProtocolVersion {
		c.closeConn()
		return nil, fmt.Errorf("the latch agent forwarded to %s speaks forwarding protocol %d, this latch speaks %d: "+
			"use the same latch version on both machines", c.path, resp.V, ForwardProtocolVersion)
	}
	if !resp.OK {
		switch resp.Code {
		case codeNotAllowed:
			return nil, fmt.Errorf("the latch agent forwarded to %s refuses profile %q: %w; on the machine the agent runs on, "+
				"restart it with latch agent --forwardable --forward-profile %s (and a --forward-profile for each profile it forwards now)",
				c.path, req.Profile, ErrNotAllowed, req.Profile)
		case codeLoginRequired:
			return nil, &tagged{tag: ErrRemoteLogin, msg: fmt.Sprintf("the machine the latch agent forwarded to %s runs on has no valid session "+
				"for %q (%s): log in there with latch login --profile %s", c.path, req.Profile, resp.Error, req.Profile)}
		case codeLocked:
			return nil, &tagged{tag: vault.ErrLocked, msg: fmt.Sprintf("the vault on the machine the latch agent forwarded to %s runs on is locked: "+
				"unlock it there with latch vault unlock, or start that agent with LATCH_VAULT_PASSPHRASE set", c.path)}
		default:
			return nil, fmt.Errorf("the latch agent forwarded to %s could not hand out a token for %q: %s", c.path, req.Profile, resp.Error)
		}
	}
	if resp.Token == nil || resp.Token.AccessToken == "" {
		return nil, fmt.Errorf("the latch agent forwarded to %s answered without a token", c.path)
	}
	return &Token{AccessToken: resp.Token.AccessToken, TokenType: resp.Token.TokenType,
		Expiry: resp.Token.ExpiresAt, IDToken: resp.Token.IDToken}, nil
}

// Where names the forwarded agent, for messages.
func (c *ForwardClient) Where() string { return c.path }

// Close releases the connection.
func (c *ForwardClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeConn()
	return nil
}

func (c *ForwardClient) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// exchange sends req on the client's connection and reads one response,
// within ctx (DialForward's and Token's bound it).
func (c *ForwardClient) exchange(ctx context.Context, req forwardRequest) (forwardResponse, error) {
	return roundTrip[forwardResponse](ctx, c.conn, c.r, req, maxForwardResponse, forwardTimeout)
}
