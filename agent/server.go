package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure Serve.
type Options struct {
	// Socket is the path to listen on; empty means SocketPath().
	Socket string
	// Idle is how long the agent stays up while it holds no entries; zero
	// means DefaultIdle.
	Idle time.Duration
	// MaxConns bounds the connections served at once; a connection beyond
	// it is closed unanswered. Zero means 16.
	MaxConns int
	// Log receives the agent's few events (listening, a refused peer, the
	// reason it exits); nil discards them. It never receives a name or a
	// value.
	Log *slog.Logger
	// OnRefuse, when set, is called with the uid of every connection
	// refused because it came from another user.
	OnRefuse func(uid int)
	// Forward, when set, makes the agent also listen on a forwarding
	// socket that hands out access tokens of the profiles it names (see
	// ForwardOptions). An agent that forwards does not exit when idle.
	Forward *ForwardOptions

	// For tests: the protocol version spoken (zero: ProtocolVersion), how
	// long a connection may take to send a request (zero: 5 s), and a hook
	// called once the socket listens.
	version     int
	connTimeout time.Duration
	ready       func()
}

const (
	defaultMaxConns    = 16
	defaultConnTimeout = 5 * time.Second
	writeTimeout       = 2 * time.Second
	// lockWait bounds how long a starting agent waits for one that is
	// exiting (it has closed its socket, not yet released its lock).
	lockWait = 2 * time.Second
)

type server struct {
	o        Options
	uid, pid int
	store    *store
	ln       *net.UnixListener
	sem      chan struct{}
	stopC    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[*net.UnixConn]struct{}

	// fwd is the forwarding socket's part, nil unless o.Forward is set.
	fwd *forwarder
}

// Serve runs the agent on o.Socket until ctx is done, a client asks it to
// stop, or it has held no entries for o.Idle. It creates the socket's
// directory 0700 (and refuses one that another user owns or that group or
// others may enter), replaces a stale socket only when no agent answers on
// it, and serves only peers of its own uid. On return the socket is gone and
// the values it held are wiped. It returns nil on any of those three ends.
func Serve(ctx context.Context, o Options) error {
	if err := checkPlatform(); err != nil {
		return err
	}
	if o.Socket == "" {
		p, err := SocketPath()
		if err != nil {
			return err
		}
		o.Socket = p
	}
	if len(o.Socket) > maxSocketPath {
		return fmt.Errorf("agent socket path %s is longer than %d bytes: set LATCH_AGENT_SOCK to a shorter path", o.Socket, maxSocketPath)
	}
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.MaxConns <= 0 {
		o.MaxConns = defaultMaxConns
	}
	if o.version == 0 {
		o.version = ProtocolVersion
	}
	if o.connTimeout <= 0 {
		o.connTimeout = defaultConnTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := setNotDumpable(); err != nil {
		return fmt.Errorf("latch agent: refusing to hold secrets in a dumpable process: %w", err)
	}
	ln, release, err := listenPrivate(ctx, o.Socket)
	if err != nil {
		return err
	}
	defer release()

	s := &server{
		o: o, uid: os.Getuid(), pid: os.Getpid(),
		store: newStore(o.Idle),
		ln:    ln,
		sem:   make(chan struct{}, o.MaxConns),
		stopC: make(chan struct{}),
		conns: make(map[*net.UnixConn]struct{}),
	}
	idleC := s.store.idleC
	if o.Forward != nil {
		fwd, err := listenForward(ctx, *o.Forward, o.Socket, s.stopC)
		if err != nil {
			ln.Close()
			s.store.close()
			return err
		}
		defer fwd.release()
		s.fwd = fwd
		// A forwarding agent serves machines it cannot see: holding no
		// entries here says nothing about whether they still need it.
		idleC = nil
	}
	o.Log.Info("latch agent listening", "socket", o.Socket, "pid", s.pid, "protocol", o.version)
	go s.acceptLoop(s.ln, s.sem, s.serveConn)
	if s.fwd != nil {
		o.Log.Info("latch agent forwarding", "socket", s.fwd.path, "profiles", strings.Join(s.fwd.allowedNames(), ","),
			"protocol", ForwardProtocolVersion)
		go s.acceptLoop(s.fwd.ln, s.fwd.sem, s.serveForward)
	}
	if o.ready != nil {
		o.ready()
	}

	var why string
	select {
	case <-ctx.Done():
		why = "signal"
	case <-s.stopC:
		why = "asked to stop"
	case <-idleC:
		why = fmt.Sprintf("no entries for %s", o.Idle)
	}
	s.shutdown()
	o.Log.Info("latch agent exiting", "reason", why)
	return nil
}

// shutdown closes the socket (new clients see no agent at once), ends the
// connections and wipes the values. Safe to call more than once.
func (s *server) shutdown() {
	s.requestStop()
	s.mu.Lock()
	for c := range s.conns {
		// Wake readers; a response being written still gets out.
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.store.close()
}

// requestStop makes Serve return and closes the socket at once, so that a
// client that asked to stop finds no agent when it dials again.
func (s *server) requestStop() {
	s.stopOnce.Do(func() {
		close(s.stopC)
		s.ln.Close() // removes the socket file
		if s.fwd != nil {
			s.fwd.ln.Close()
		}
	})
}

func (s *server) stopping() bool {
	select {
	case <-s.stopC:
		return true
	default:
		return false
	}
}

// acceptLoop accepts on ln and serves each connection with serve, at most
// cap(sem) at once.
func (s *server) acceptLoop(ln *net.UnixListener, sem chan struct{}, serve func(*net.UnixConn)) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if s.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: back off, don't spin.
			s.o.Log.Warn("latch agent: accept", "err", err)
			select {
			case <-s.stopC:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.stopping() {
			s.mu.Unlock()
			c.Close()
			<-sem
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				<-sem
				s.wg.Done()
			}()
			if s.ownPeer(c) {
				serve(c)
			}
		}()
	}
}

// ownPeer says whether c comes from a process of the agent's own uid, and
// logs the refusal of any other.
func (s *server) ownPeer(c *net.UnixConn) bool {
	uid, err := peerUID(c)
	if err != nil || uid != s.uid {
		// No answer at all: a peer of another user learns nothing, not
		// even the protocol version.
		s.o.Log.Warn("latch agent: refused a connection from another user", "uid", uid)
		if s.o.OnRefuse != nil {
			s.o.OnRefuse(uid)
		}
		return false
	}
	return true
}

// serveConn answers one connection to the cache socket.
func (s *server) serveConn(c *net.UnixConn) {
	s.serveLines(c, 4096, maxRequest, func() any {
		return s.fail(codeTooLarge, fmt.Sprintf("request larger than the %d KiB limit", maxRequest>>10))
	}, func(line []byte) (any, func(), bool) {
		resp, stop := s.handle(line)
		return resp, func() { clear(resp.Value) }, stop
	})
}

// serveLines answers c's request lines in turn, the loop of both sockets:
// each line of at most limit bytes goes to handle, whose answer is written
// back and then wiped with wipe (when not nil); a line over the limit is
// answered with tooLarge() and ends the connection, as do stop, EOF, the
// idle deadline and shutdown. Which requests a socket answers is its
// handler's alone.
func (s *server) serveLines(c *net.UnixConn, bufSize, limit int, tooLarge func() any,
	handle func(line []byte) (resp any, wipe func(), stop bool)) {
	r := bufio.NewReaderSize(c, bufSize)
	for {
		// Under s.mu, so that shutdown's deadline is never overwritten.
		s.mu.Lock()
		if s.stopping() {
			s.mu.Unlock()
			return
		}
		c.SetReadDeadline(time.Now().Add(s.o.connTimeout))
		s.mu.Unlock()
		line, err := readLine(r, limit)
		if errors.Is(err, errTooLarge) {
			c.SetWriteDeadline(time.Now().Add(writeTimeout))
			writeMsg(c, tooLarge())
			return
		}
		if err != nil {
			return // EOF, the deadline, or shutdown
		}
		resp, wipe, stop := handle(line)
		clear(line)
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		err = writeMsg(c, resp)
		if wipe != nil {
			wipe()
		}
		if stop || err != nil {
			return
		}
	}
}

func (s *server) fail(code, msg string) response {
	return response{V: s.o.version, Code: code, Error: msg}
}

// handle answers one request; stop reports that the agent is stopping. Its
// error messages never quote the request: it may hold a value.
func (s *server) handle(line []byte) (resp response, stop bool) {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		clear(req.Value)
		return s.fail(codeBadRequest, "malformed request: want one JSON object per line"), false
	}
	if req.Op == opStop {
		// Every version honours stop, so that any latch can end any agent.
		s.requestStop()
		return response{V: s.o.version, OK: true}, true
	}
	if req.V != s.o.version {
		clear(req.Value)
		return s.fail(codeVersion, fmt.Sprintf("this latch agent speaks protocol %d, the request speaks protocol %d", s.o.version, req.V)), false
	}
	ok := response{V: s.o.version, OK: true}
	if req.Op == opHello {
		ok.Hello = &helloInfo{PID: s.pid, UID: s.uid}
		return ok, false
	}
	if err := validScope(req.Scope); err != nil {
		clear(req.Value)
		return s.fail(codeBadRequest, err.Error()), false
	}
	if req.Op == opClear {
		// name, if any, is a prefix: the entries to clear.
		s.store.clearScope(req.Scope, req.Name)
		return ok, false
	}
	if err := validName(req.Name); err != nil {
		clear(req.Value)
		return s.fail(codeBadRequest, err.Error()), false
	}
	k := key{req.Scope, req.Name}
	switch req.Op {
	case opGet:
		v, found := s.store.get(k)
		if !found {
			return s.fail(codeNotFound, "no such entry"), false
		}
		ok.Value = v
	case opPut:
		if req.TTLms <= 0 || req.TTLms > maxTTLms {
			clear(req.Value)
			return s.fail(codeBadRequest, "put needs a ttl_ms between 1 and a year"), false
		}
		if req.Value == nil {
			req.Value = []byte{} // an empty value is omitted on the wire
		}
		if err := s.store.put(k, req.Value, time.Duration(req.TTLms)*time.Millisecond); err != nil {
			return s.fail(codeFull, err.Error()), false
		}
	case opTouch:
		if req.TTLms <= 0 || req.TTLms > maxTTLms {
			return s.fail(codeBadRequest, "touch needs a ttl_ms between 1 and a year"), false
		}
		if !s.store.touch(k, time.Duration(req.TTLms)*time.Millisecond) {
			return s.fail(codeNotFound, "no such entry"), false
		}
	case opDelete:
		s.store.delete(k)
	default:
		clear(req.Value)
		return s.fail(codeBadRequest, fmt.Sprintf("unknown op %q", req.Op)), false
	}
	return ok, false
}
