package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"time"
)

// The protocol: one JSON object per line in each direction over a unix
// stream socket, one response per request, in order. Every message carries
// "v". A connection may carry many requests.
//
//	→ {"v":1,"op":"put","scope":"3f2a…","name":"at/work","value":"<base64>","ttl_ms":300000}
//	← {"v":1,"ok":true}
//	→ {"v":1,"op":"get","scope":"3f2a…","name":"at/work"}
//	← {"v":1,"ok":true,"value":"<base64>"}
//	← {"v":1,"ok":false,"code":"not_found","error":"no such entry"}
//
// Ops: hello (answers pid and uid), get, put (value, ttl_ms), touch (ttl_ms),
// delete, clear (every entry of scope whose name starts with name), stop. A request of another version is
// answered with code "version" and the agent's own "v", except stop, which
// every version honours so that any latch can stop any agent.
const (
	opHello  = "hello"
	opGet    = "get"
	opPut    = "put"
	opTouch  = "touch"
	opDelete = "delete"
	opClear  = "clear"
	opStop   = "stop"
)

// Codes a failed response carries for the states a client acts on.
const (
	codeNotFound   = "not_found"
	codeVersion    = "version"
	codeBadRequest = "bad_request"
	codeTooLarge   = "too_large"
	codeFull       = "full"
)

const (
	// maxRequest bounds one request line, newline included.
	maxRequest = 64 << 10
	// maxResponse bounds one response line: a value read back is smaller
	// than the request that put it.
	maxResponse = 2 * maxRequest
	// maxTTLms bounds ttl_ms (a year), far from overflowing a Duration.
	maxTTLms = 366 * 24 * 3600 * 1000
)

type request struct {
	V     int    `json:"v"`
	Op    string `json:"op"`
	Scope string `json:"scope,omitempty"`
	Name  string `json:"name,omitempty"`
	Value []byte `json:"value,omitempty"`
	TTLms int64  `json:"ttl_ms,omitempty"`
}

type response struct {
	V     int        `json:"v"`
	OK    bool       `json:"ok"`
	Code  string     `json:"code,omitempty"`
	Error string     `json:"error,omitempty"`
	Value []byte     `json:"value,omitempty"`
	Hello *helloInfo `json:"hello,omitempty"`
	// Kind is "forward" in the answer of a forwarding socket (see
	// forward.go), which is no session cache; a cache agent leaves it out.
	Kind string `json:"kind,omitempty"`
}

// helloInfo is what hello answers besides the version ("v").
type helloInfo struct {
	PID int `json:"pid"`
	UID int `json:"uid"`
}

var errTooLarge = errors.New("message too large")

// readLine reads one line of at most limit bytes (newline included). The
// buffers it passes through are wiped: a line may hold a value.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit {
			clear(chunk)
			clear(line)
			return nil, errTooLarge
		}
		line = appendWiped(line, chunk)
		clear(chunk)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			clear(line)
			return nil, io.ErrUnexpectedEOF
		default:
			clear(line)
			return nil, err
		}
	}
}

// appendWiped appends src to dst, wiping dst's old array when it has to grow.
func appendWiped(dst, src []byte) []byte {
	if len(dst)+len(src) <= cap(dst) {
		return append(dst, src...)
	}
	grown := make([]byte, len(dst), max(2*cap(dst), len(dst)+len(src), 512))
	copy(grown, dst)
	clear(dst)
	return append(grown, src...)
}

// writeMsg writes v as one line and wipes the encoding.
func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	line := make([]byte, len(b)+1)
	copy(line, b)
	clear(b)
	line[len(line)-1] = '\n'
	_, err = w.Write(line)
	clear(line)
	return err
}

// exchange sends req on c and reads one response of the cache protocol,
// within ctx and the call timeout.
func exchange(ctx context.Context, c *net.UnixConn, r *bufio.Reader, req request) (response, error) {
	return roundTrip[response](ctx, c, r, req, maxResponse, callTimeout)
}

// roundTrip sends req on c as one line and reads one response line of at
// most limit bytes into a Resp, within ctx and wait: the framing both
// sockets (the cache's and the forwarding one) speak.
func roundTrip[Resp any](ctx context.Context, c *net.UnixConn, r *bufio.Reader, req any, limit int, wait time.Duration) (Resp, error) {
	var resp Resp
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	defer context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })()
	if err := writeMsg(c, req); err != nil {
		return resp, err
	}
	line, err := readLine(r, limit)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the agent closed the connection without answering")
		}
		return resp, err
	}
	err = json.Unmarshal(line, &resp)
	clear(line)
	if err != nil {
		var zero Resp
		return zero, errors.New("malformed response")
	}
	return resp, nil
}
