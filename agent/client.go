package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/latch-dev/latch/vault"
)

// callTimeout bounds one call to the agent, dial and retry included: an
// agent that does not answer in time is as good as none.
const callTimeout = 2 * time.Second

// Client is the vault.Cache of one latch home kept by a running agent. It
// keeps one connection, guarded by a mutex, and dials again when the agent
// has closed it (the agent ends connections idle for a few seconds).
type Client struct {
	path, scope string
	pid         int

	mu   sync.Mutex
	conn *net.UnixConn
	r    *bufio.Reader
}

var _ vault.Cache = (*Client)(nil)

// Dial connects to the agent on socketPath for the cache scope (see
// vault.CacheScope). When no agent answers, the error wraps vault.ErrNoCache;
// an agent of another protocol version gives a *VersionError; an agent of
// another user is refused.
func Dial(ctx context.Context, socketPath, scope string) (*Client, error) {
	if err := validScope(scope); err != nil {
		return nil, fmt.Errorf("latch agent: %w", err)
	}
	c := &Client{path: socketPath, scope: scope}
	resp, err := c.call(ctx, request{Op: opHello})
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.Hello == nil {
		c.Close()
		return nil, fmt.Errorf("latch agent at %s: hello without pid: %w", socketPath, vault.ErrNoCache)
	}
	c.pid = resp.Hello.PID
	return c, nil
}

// Get returns the value under name; it does not extend the entry's life. An
// absent entry, or an agent that has gone (it exits once empty), wraps
// vault.ErrNotFound.
func (c *Client) Get(ctx context.Context, name string) ([]byte, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("latch agent: %w", err)
	}
	resp, err := c.call(ctx, request{Op: opGet, Scope: c.scope, Name: name})
	if err != nil {
		return nil, missing(name, err)
	}
	return resp.Value, nil
}

// Put stores value under name for ttl (rounded up to a millisecond).
func (c *Client) Put(ctx context.Context, name string, value []byte, ttl time.Duration) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("latch agent: %w", err)
	}
	if ttl <= 0 {
		return fmt.Errorf("latch agent: put %q: ttl must be positive", name)
	}
	_, err := c.call(ctx, request{Op: opPut, Scope: c.scope, Name: name, Value: value, TTLms: millis(ttl)})
	if err != nil {
		return fmt.Errorf("put %q: %w", name, err)
	}
	return nil
}

// Touch gives the entry under name a new life of ttl from now.
func (c *Client) Touch(ctx context.Context, name string, ttl time.Duration) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("latch agent: %w", err)
	}
	if ttl <= 0 {
		return fmt.Errorf("latch agent: touch %q: ttl must be positive", name)
	}
	_, err := c.call(ctx, request{Op: opTouch, Scope: c.scope, Name: name, TTLms: millis(ttl)})
	if err != nil {
		return missing(name, err)
	}
	return nil
}

// Delete removes the entry under name. An agent that has gone holds nothing,
// so that is not an error either.
func (c *Client) Delete(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("latch agent: %w", err)
	}
	_, err := c.call(ctx, request{Op: opDelete, Scope: c.scope, Name: name})
	if err != nil && !errors.Is(err, vault.ErrNoCache) {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	return nil
}

// Clear removes every entry of the client's scope whose name starts with
// prefix ("" for all).
func (c *Client) Clear(ctx context.Context, prefix string) error {
	_, err := c.call(ctx, request{Op: opClear, Scope: c.scope, Name: prefix})
	if err != nil && !errors.Is(err, vault.ErrNoCache) {
		return fmt.Errorf("clear: %w", err)
	}
	return nil
}

// Where names the agent, for latch vault status.
func (c *Client) Where() string {
	return fmt.Sprintf("latch agent (pid %d, %s)", c.pid, c.path)
}

// Stop asks the agent to exit; its entries of every scope are wiped.
func (c *Client) Stop(ctx context.Context) error {
	c.Close()
	return Stop(ctx, c.path)
}

// Close releases the client's connection. The agent keeps its entries.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeConn()
	return nil
}

// Stop asks the agent on socketPath to exit, whatever protocol version it
// speaks: the way out of a *VersionError. No agent there is not an error.
func Stop(ctx context.Context, socketPath string) error {
	conn, err := dialAgent(ctx, socketPath)
	if err != nil {
		if errors.Is(err, vault.ErrNoCache) {
			return nil
		}
		return err
	}
	defer conn.Close()
	resp, err := exchange(ctx, conn, bufio.NewReader(conn), request{V: ProtocolVersion, Op: opStop})
	if err != nil {
		return fmt.Errorf("stop the latch agent at %s: %w", socketPath, err)
	}
	if !resp.OK {
		return fmt.Errorf("stop the latch agent at %s: %s", socketPath, resp.Error)
	}
	return nil
}

// call sends req and returns the agent's successful response. A connection
// the agent has closed since its last use is dialled again, once.
func (c *Client) call(ctx context.Context, req request) (response, error) {
	req.V = ProtocolVersion
	if size := approxSize(req); size > maxRequest {
		return response{}, fmt.Errorf("latch agent: a request of about %d KiB is over the %d KiB limit", size>>10, maxRequest>>10)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			conn, err := dialAgent(ctx, c.path)
			if err != nil {
				if parent.Err() != nil {
					return response{}, fmt.Errorf("latch agent: %w", parent.Err())
				}
				return response{}, err
			}
			c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
		}
		resp, err := exchange(ctx, c.conn, c.r, req)
		if err != nil {
			c.closeConn()
			if parent.Err() != nil {
				return response{}, fmt.Errorf("latch agent: %w", parent.Err())
			}
			if reused && attempt == 0 {
				continue
			}
			return response{}, fmt.Errorf("latch agent at %s: %v: %w", c.path, err, vault.ErrNoCache)
		}
		if resp.Kind == kindForward {
			// A forwarded agent's socket (LATCH_AGENT_SOCK on a remote
			// box): it hands out tokens, it keeps no session cache here.
			c.closeConn()
			return response{}, fmt.Errorf("%s is a forwarded latch agent's socket, not a session cache: %w (%w)",
				c.path, ErrForwardSocket, vault.ErrNoCache)
		}
		if resp.V != ProtocolVersion {
			c.closeConn()
			clear(resp.Value)
			return response{}, &VersionError{Agent: resp.V, Client: ProtocolVersion}
		}
		if !resp.OK {
			if resp.Code == codeNotFound {
				return response{}, vault.ErrNotFound
			}
			return response{}, fmt.Errorf("latch agent: %s", resp.Error)
		}
		return resp, nil
	}
}

func (c *Client) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// dialAgent connects to the agent on path and checks that it runs as this
// user: a socket planted by someone else must not receive a secret.
func dialAgent(ctx context.Context, path string) (*net.UnixConn, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("no latch agent answers at %s (%v): %w", path, err, vault.ErrNoCache)
	}
	conn := nc.(*net.UnixConn)
	uid, err := peerUID(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("latch agent at %s: peer credentials: %v: %w", path, err, vault.ErrNoCache)
	}
	if uid != os.Getuid() {
		conn.Close()
		return nil, fmt.Errorf("the process listening on %s runs as uid %d, not as you (uid %d): refusing to use it; remove the socket, or set LATCH_AGENT_SOCK",
			path, uid, os.Getuid())
	}
	return conn, nil
}

// missing turns an agent that has gone into a miss: its entries went with
// it.
func missing(name string, err error) error {
	if errors.Is(err, vault.ErrNoCache) && !errors.Is(err, vault.ErrNotFound) {
		return fmt.Errorf("cache entry %q: %w (%w)", name, vault.ErrNotFound, err)
	}
	return fmt.Errorf("cache entry %q: %w", name, err)
}

// approxSize is the encoded size of req, counted without encoding the value.
func approxSize(req request) int {
	v := req.Value
	req.Value = nil
	b, _ := json.Marshal(req)
	return len(b) + (len(v)+2)/3*4 + len(`,"value":""`) + 1
}

// millis rounds d up to whole milliseconds; a ttl past a year is left for the
// agent to refuse.
func millis(d time.Duration) int64 {
	if d > time.Duration(maxTTLms)*time.Millisecond {
		return maxTTLms + 1
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
