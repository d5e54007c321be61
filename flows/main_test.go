package flows

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/latch-dev/latch/client"
	"github.com/latch-dev/latch/vault"
)

// helperEnv, when set, makes the test binary act as a child latch process
// that asks for an access token (see runTokenHelper) instead of running tests.
const helperEnv = "LATCH_FLOWS_TEST_HELPER"

func TestMain(m *testing.M) {
	// Production's scrypt cost is about a second per vault read, seven
	// under -race: far too slow for these tests, and not what they test.
	vault.ScryptWorkFactor = 10
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "token":
		tok, err := runTokenHelper()
		if err != nil {
			fmt.Fprintln(os.Stderr, "token helper:", err)
			os.Exit(1)
		}
		fmt.Println(tok)
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown", helperEnv)
		os.Exit(2)
	}
}

// runTokenHelper is one latch process: it opens the file vault in
// HELPER_VAULT, and asks for HELPER_PROFILE's access token from the server at
// HELPER_SERVER, with the clock stopped at HELPER_NOW (Unix seconds) — the
// time the parent's server clock shows.
func runTokenHelper() (string, error) {
	now, err := strconv.ParseInt(os.Getenv("HELPER_NOW"), 10, 64)
	dir := os.Getenv("HELPER_VAULT")
	if err != nil || dir == "" {
		return "", fmt.Errorf("bad helper arguments")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secrets, _, err := vault.Open(ctx, vault.ModeFile, dir, vault.Options{Passphrase: fixedPass})
	if err != nil {
		return "", err
	}
	c, err := client.New(os.Getenv("HELPER_SERVER"), client.Options{})
	if err != nil {
		return "", err
	}
	m := &TokenManager{Secrets: secrets, Dir: dir, Now: func() time.Time { return time.Unix(now, 0) }}
	return m.AccessToken(ctx, os.Getenv("HELPER_PROFILE"), c)
}

func fixedPass() ([]byte, error) { return []byte("correct horse battery staple"), nil }
