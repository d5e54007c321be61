package flows

import (
	"errors"
	"net/url"
	"testing"
)

// Extra authorization parameters: latch login's --auth-param values are
// taken as typed; the interface's Parameters field splits at spaces and
// decodes %XX escapes (how a space or a % is written there); a set written
// back by AuthParamField reads as it was.
func TestParseAuthParams(t *testing.T) {
	for _, tc := range []struct {
		name, in string   // in: the interface's field
		pairs    []string // or --auth-param values
		bad      string   // the AuthParamError's Pair
		escape   bool     // a bad %-escape rather than a missing name or '='
		want     url.Values
	}{
		{name: "none", in: ""},
		{name: "one", in: "prompt=login", want: url.Values{"prompt": {"login"}}},
		{name: "spaces around", in: "  prompt=login   acr_values=urn:mfa ",
			want: url.Values{"prompt": {"login"}, "acr_values": {"urn:mfa"}}},
		{name: "escaped @", in: "login_hint=ada%40example.com", want: url.Values{"login_hint": {"ada@example.com"}}},
		{name: "plain @", in: "login_hint=a@b.c", want: url.Values{"login_hint": {"a@b.c"}}},
		{name: "plus stays", in: "login_hint=ada+work@example.com", want: url.Values{"login_hint": {"ada+work@example.com"}}},
		{name: "ampersand stays", in: "x=a&b=c", want: url.Values{"x": {"a&b=c"}}},
		{name: "equals in value", in: "claims_hint=a=b", want: url.Values{"claims_hint": {"a=b"}}},
		{name: "semicolon stays", in: "x=a;b", want: url.Values{"x": {"a;b"}}},
		{name: "escaped space", in: "acr_values=urn:x:y%20level2", want: url.Values{"acr_values": {"urn:x:y level2"}}},
		{name: "literal percent", in: "x=100%25", want: url.Values{"x": {"100%"}}},
		{name: "repeated", in: "resource=a resource=b", want: url.Values{"resource": {"a", "b"}}},
		{name: "empty value", in: "empty=", want: url.Values{"empty": {""}}},
		{name: "no =", in: "prompt=login oops", bad: "oops"},
		{name: "no name", in: "=value", bad: "=value"},
		{name: "bad escape", in: "bad=%zz", bad: "bad=%zz", escape: true},
		{name: "bare percent", in: "x=100%", bad: "x=100%", escape: true},
		{name: "escaped = in a name", in: "a%3Db=c", want: url.Values{"a=b": {"c"}}},
		// A flag value is one pair whatever it holds, taken as typed.
		{name: "flag with a space", pairs: []string{"acr_values=urn:x:y level2"},
			want: url.Values{"acr_values": {"urn:x:y level2"}}},
		{name: "flag with a tab and non-ASCII", pairs: []string{"login_hint=zoë\tx", "a b=c"},
			want: url.Values{"login_hint": {"zoë\tx"}, "a b": {"c"}}},
		{name: "flag percent as typed", pairs: []string{"x=100%", "login_hint=ada%40example.com"},
			want: url.Values{"x": {"100%"}, "login_hint": {"ada%40example.com"}}},
		{name: "flag plus and ampersand", pairs: []string{"login_hint=ada+work@example.com", "x=a&b=c"},
			want: url.Values{"login_hint": {"ada+work@example.com"}, "x": {"a&b=c"}}},
		{name: "flag no =", pairs: []string{"novalue"}, bad: "novalue"},
		{name: "flag no name", pairs: []string{"=v"}, bad: "=v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse, pairs := ParseAuthParams, tc.pairs
			if pairs == nil {
				parse, pairs = func([]string) (url.Values, error) { return ParseAuthParamField(tc.in) }, []string{tc.in}
			}
			got, err := parse(pairs)
			var bad *AuthParamError
			switch {
			case tc.bad != "":
				if !errors.As(err, &bad) || bad.Pair != tc.bad || (bad.Escape != "") != tc.escape || got != nil {
					t.Fatalf("ParseAuthParams(%q) = %v, %v; want an AuthParamError for %q (escape %v)", pairs, got, err, tc.bad, tc.escape)
				}
				return
			case err != nil || got.Encode() != tc.want.Encode():
				t.Fatalf("ParseAuthParams(%q) = %v, %v; want %v", pairs, got, err, tc.want)
			}
			written := AuthParamField(got)
			again, err := ParseAuthParamField(written)
			if err != nil || again.Encode() != got.Encode() {
				t.Fatalf("%v written back as %q reads %v, %v", got, written, again, err)
			}
		})
	}
}

// What AuthParamField writes stays legible where it can: only what would
// not read back is escaped.
func TestAuthParamField(t *testing.T) {
	got := AuthParamField(url.Values{"login_hint": {"ada+work@example.com"},
		"acr_values": {"urn:x:y level2"}, "x": {"100%"}})
	if want := "acr_values=urn:x:y%20level2 login_hint=ada+work@example.com x=100%25"; got != want {
		t.Fatalf("AuthParamField = %q, want %q", got, want)
	}
}

// The messages the interface shows under its field name the pair and what
// is wrong with it.
func TestAuthParamErrorMessage(t *testing.T) {
	for _, tc := range []struct{ pair, want string }{
		{"oops", "oops has no '='"},
		{"=value", "=value has no name before '='"},
		{"bad=%zz", `bad=%zz has a bad %-escape "%zz" (write a literal % as %25)`},
	} {
		_, err := ParseAuthParamField(tc.pair)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseAuthParamField(%q): %v, want %q", tc.pair, err, tc.want)
		}
	}
}
