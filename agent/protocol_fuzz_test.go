package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// FuzzAgentRequests feeds a connection's byte stream to the agent as
// serveConn does (readLine, then handle, per line) and checks each answer
// against a model of the store: an answer always carries the agent's
// version, a refusal has a known code and never quotes the request's value,
// and a get returns only what a put stored.
func FuzzAgentRequests(f *testing.F) {
	var seed bytes.Buffer
	for _, r := range []request{
		{V: ProtocolVersion, Op: opHello},
		{V: ProtocolVersion, Op: opPut, Scope: "3f2a9c", Name: "at/work", Value: []byte("secret-access-token"), TTLms: 300000},
		{V: ProtocolVersion, Op: opGet, Scope: "3f2a9c", Name: "at/work"},
		{V: ProtocolVersion, Op: opTouch, Scope: "3f2a9c", Name: "at/work", TTLms: 1000},
		{V: ProtocolVersion, Op: opPut, Scope: "3f2a9c", Name: "vault/identity", Value: []byte{}, TTLms: 1},
		{V: ProtocolVersion, Op: opDelete, Scope: "3f2a9c", Name: "at/work"},
		{V: ProtocolVersion, Op: opClear, Scope: "3f2a9c"},
		{V: ProtocolVersion + 1, Op: opGet, Scope: "x", Name: "y"},
		{V: ProtocolVersion, Op: "frobnicate", Scope: "s", Name: "n", Value: []byte("secret-value-here")},
		{V: 0, Op: opStop},
	} {
		if err := writeMsg(&seed, r); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(seed.Bytes())
	f.Add([]byte(`{"v":1,"op":"put","scope":"a","name":"b","value":"!!","ttl_ms":1}` + "\n" + `{"v":1,"op":"get","scope":"a","name":"b"}` + "\n"))
	f.Add([]byte(`{"v":1,"op":"put","scope":"a","name":"b","value":"c2VjcmV0","ttl_ms":1e300}` + "\nnot json\n{\"v\":1"))
	f.Add(append(bytes.Repeat([]byte("x"), maxRequest), '\n'))

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(f.TempDir(), "s"), Net: "unix"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	known := map[string]bool{codeNotFound: true, codeVersion: true, codeBadRequest: true, codeTooLarge: true, codeFull: true}

	f.Fuzz(func(t *testing.T, stream []byte) {
		s := &server{o: Options{version: ProtocolVersion}, store: newStore(time.Hour), ln: ln, stopC: make(chan struct{})}
		defer s.store.close()
		model := map[key][]byte{}
		r := bufio.NewReaderSize(bytes.NewReader(stream), 4096)
		for {
			line, err := readLine(r, maxRequest)
			if err != nil {
				return // too large, EOF or a cut-off line: serveConn hangs up
			}
			if len(line) > maxRequest {
				t.Fatalf("readLine returned %d bytes", len(line))
			}
			var req request
			decoded := json.Unmarshal(line, &req) == nil
			resp, stop := s.handle(line)
			if resp.V != ProtocolVersion {
				t.Fatalf("answer of version %d", resp.V)
			}
			if stop {
				if !decoded || req.Op != opStop || !resp.OK {
					t.Fatalf("stopped on %q", line)
				}
				return
			}
			if !resp.OK {
				if !known[resp.Code] || resp.Error == "" {
					t.Fatalf("refusal %+v", resp)
				}
				if decoded && len(req.Value) >= 6 && bytes.Contains([]byte(resp.Error), req.Value) {
					t.Fatalf("refusal quotes the value: %q", resp.Error)
				}
				if resp.Code == codeNotFound && req.Op == opGet {
					delete(model, key{req.Scope, req.Name}) // absent, or its ttl ran out
				}
				continue
			}
			if !decoded {
				t.Fatalf("accepted %q", line)
			}
			k := key{req.Scope, req.Name}
			switch req.Op {
			case opPut:
				model[k] = append([]byte{}, req.Value...)
			case opGet:
				want, ok := model[k]
				if !ok || !bytes.Equal(resp.Value, want) {
					t.Fatalf("get %v = %q, model %q %v", k, resp.Value, want, ok)
				}
			case opDelete:
				delete(model, k)
			case opClear:
				for mk := range model {
					if mk.scope == req.Scope {
						delete(model, mk)
					}
				}
			case opHello, opTouch:
			default:
				t.Fatalf("accepted op %q", req.Op)
			}
			if req.Op != opHello && req.Op != opStop && validScope(req.Scope) != nil {
				t.Fatalf("accepted scope %q", req.Scope)
			}
		}
	})
}
