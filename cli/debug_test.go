package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/pflag"

	"github.com/latch-dev/latch/client"
)

func TestDebugMode(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flag      *string // nil: not given
		env       string
		want      string
		wantUsage string
	}{
		{name: "off", want: ""},
		{name: "--debug", flag: ptr("api"), want: "api"},
		{name: "--debug=json", flag: ptr("json"), want: "json"},
		{name: "--debug=JSON", flag: ptr("JSON"), want: "json"},
		{name: "--debug=off beats the env", flag: ptr("off"), env: "json", want: ""},
		{name: "--debug=yaml", flag: ptr("yaml"), wantUsage: "--debug=yaml"},
		{name: "LATCH_DEBUG=1", env: "1", want: "api"},
		{name: "LATCH_DEBUG=api", env: "api", want: "api"},
		{name: "LATCH_DEBUG=json", env: "json", want: "json"},
		{name: "LATCH_DEBUG=0", env: "0", want: ""},
		{name: "LATCH_DEBUG=verbose", env: "verbose", wantUsage: "LATCH_DEBUG=verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envDebug, tc.env)
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			fs.String("debug", "", "")
			fs.Lookup("debug").NoOptDefVal = "api"
			if tc.flag != nil {
				if err := fs.Set("debug", *tc.flag); err != nil {
					t.Fatal(err)
				}
			}
			got, err := debugMode(fs.Lookup("debug"))
			switch {
			case tc.wantUsage != "":
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantUsage) {
					t.Fatalf("err = %v, want a usage error naming %s", err, tc.wantUsage)
				}
			case err != nil || got != tc.want:
				t.Fatalf("mode %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// A wrong --debug value is a usage error before anything runs; a bare
// --debug before the command does not swallow the command's name.
func TestDebugFlagUsage(t *testing.T) {
	r := runCLI(t, nil, "", "status", "--debug=yaml")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--debug") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, testEnv(t), "", "--debug", "status", "--json")
	if r.code == exitUsage || !strings.Contains(r.stdout, `"profiles"`) {
		t.Fatalf("--debug status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Events traced from many goroutines come out whole, one per line.
func TestDebugPrinterSerializes(t *testing.T) {
	var out bytes.Buffer
	p := &debugPrinter{w: &out, json: true}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				p.trace(client.Event{Exchange: &client.Exchange{Method: "POST", URL: "http://127.0.0.1/token",
					Status: 200, ResponseBody: strings.Repeat("x", 100*i)}})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil || v["type"] != "exchange" {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}

// Without a tracer, the commands' clients carry none, so a client builds
// none of the tracing.
func TestClientOptionsUntraced(t *testing.T) {
	g := newGlobals()
	if g.clientOptions().Trace != nil {
		t.Fatal("Trace set without --debug")
	}
	g.trace = func(client.Event) {}
	if g.clientOptions().Trace == nil {
		t.Fatal("Trace not set with a tracer")
	}
}
