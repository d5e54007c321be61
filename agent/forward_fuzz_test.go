package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// FuzzForwardRequests feeds a forwarded connection's byte stream to the
// forwarding socket's handler as serveForward does (readLine, then handle,
// per line) and checks each answer: it carries the forwarding version, a
// token only for the allowed profile asked in this version, a refusal with a
// known code, and the token source is never asked about any other profile.
func FuzzForwardRequests(f *testing.F) {
	var seed bytes.Buffer
	for _, r := range []forwardRequest{
		{V: ForwardProtocolVersion, Op: opHello},
		{V: ForwardProtocolVersion, Op: opToken, Profile: "work", MinValidMs: 600000, IDToken: true},
		{V: ForwardProtocolVersion, Op: opToken, Profile: "home"},
		{V: ForwardProtocolVersion + 1, Op: opToken, Profile: "work"},
		{V: ForwardProtocolVersion, Op: opStop},
		{V: ForwardProtocolVersion, Op: opGet, Profile: "work"},
		{V: ForwardProtocolVersion, Op: opToken, Profile: "work", MinValidMs: -5},
	} {
		if err := writeMsg(&seed, r); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(seed.Bytes())
	f.Add([]byte(`{"v":1,"op":"token","profile":"WORK"}` + "\n" + `{"v":1,"op":"token","profile":"work "}` + "\nnot json\n"))
	f.Add([]byte(`{"v":1,"op":"token","profile":"work","v":2}` + "\n" + `{"op":"token","profile":"work"}` + "\n"))
	f.Add(append(bytes.Repeat([]byte("x"), maxForwardRequest), '\n'))

	known := map[string]bool{codeVersion: true, codeBadRequest: true, codeNotAllowed: true}
	f.Fuzz(func(t *testing.T, stream []byte) {
		var asked []string
		fw := &forwarder{
			allowed: map[string]bool{"work": true},
			calls:   make(chan struct{}, 1),
			ctx:     context.Background(),
			o: ForwardOptions{Timeout: time.Second, Token: func(_ context.Context, req TokenRequest) (*Token, error) {
				asked = append(asked, req.Profile)
				return &Token{AccessToken: "at", TokenType: "Bearer", Expiry: time.Unix(2e9, 0)}, nil
			}},
		}
		s := &server{o: Options{Log: slog.New(slog.DiscardHandler)}, fwd: fw}
		r := bufio.NewReaderSize(bytes.NewReader(stream), 1024)
		for {
			line, err := readLine(r, maxForwardRequest)
			if err != nil {
				break
			}
			var req forwardRequest
			parsed := json.Unmarshal(line, &req) == nil
			resp := s.handleForward(line)
			if resp.V != ForwardProtocolVersion {
				t.Fatalf("answer of version %d", resp.V)
			}
			switch {
			case resp.Kind == kindForward:
				if !parsed || req.Op != opHello || !resp.OK || resp.Token != nil {
					t.Fatalf("%q answered as a hello: %+v", line, resp)
				}
			case resp.OK:
				if !parsed || req.V != ForwardProtocolVersion || req.Op != opToken || req.Profile != "work" || resp.Token == nil {
					t.Fatalf("%q answered with a token: %+v", line, resp)
				}
			case !known[resp.Code] || resp.Token != nil:
				t.Fatalf("%q refused with code %q and token %+v", line, resp.Code, resp.Token)
			}
			if len(line) > 200 && strings.Contains(resp.Error, string(line[:100])) {
				t.Fatalf("the refusal quotes the request: %s", resp.Error)
			}
		}
		for _, p := range asked {
			if p != "work" {
				t.Fatalf("the token source was asked about %q", p)
			}
		}
	})
}
