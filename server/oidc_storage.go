package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes of the provider's short-lived state.
const (
	authRequestTTL = 10 * time.Minute // from /authorize to the end of the login pages
	authCodeTTL    = time.Minute      // an authorization code, once issued
	deviceCodeTTL  = 10 * time.Minute // a device authorization
	devicePoll     = 5 * time.Second
)

// opStorage is op.Storage over the server's database: clients from the
// configuration, authorization and device requests in oauth_requests, and
// every grant as a session (see oidc_tokens.go).
type opStorage struct {
	s       *Server
	clients map[string]*client

	// devices remembers, between op's calls for one device token request,
	// which oauth_requests row the *op.DeviceAuthorizationState came from
	// and, later, which session it opened. op hands the state back by
	// pointer and it has no field of ours.
	devices sync.Map // *op.DeviceAuthorizationState → *deviceNote
}

type deviceNote struct{ rowID, sid string }

var errNotFound = errors.New("not found")

// newID returns 192 random bits, URL-safe.
func newID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authRequest is a row of oauth_requests, as op.AuthRequest.
type authRequest struct {
	id, kind, clientID         string
	scopes                     []string
	redirectURI, state, nonce  string
	challenge, challengeMethod string
	stage                      string
	userID                     int64
	authTime                   time.Time
	amr                        []string
	audience                   []string
	browser                    []byte
	expires                    time.Time
	sessionID                  sql.NullString
	userCode                   string // device requests, as loaded by user code

	sid string // the session its tokens opened, for the access token's claims
}

func (a *authRequest) GetID() string          { return a.id }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return a.amr }
func (a *authRequest) GetAudience() []string  { return a.audience }
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }
func (a *authRequest) GetClientID() string    { return a.clientID }
func (a *authRequest) GetNonce() string       { return a.nonce }
func (a *authRequest) GetRedirectURI() string { return a.redirectURI }
func (a *authRequest) GetScopes() []string    { return a.scopes }
func (a *authRequest) GetState() string       { return a.state }
func (a *authRequest) Done() bool             { return a.stage == stageApproved }
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseModeQuery
}
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseTypeCode
}
func (a *authRequest) GetSubject() string {
	if a.userID == 0 {
		return ""
	}
	return strconv.FormatInt(a.userID, 10)
}
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.challenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.challenge, Method: oidc.CodeChallengeMethod(a.challengeMethod)}
}

// Stages of a request through the login pages.
const (
	stageLogin    = "login"
	stageMFA      = "mfa"
	stageConsent  = "consent"
	stageApproved = "approved"
	stageDenied   = "denied"
)

const requestColumns = `id, kind, client_id, scopes, redirect_uri, state, nonce, code_challenge, challenge_method,
	stage, coalesce(user_id, 0), auth_time, amr, browser, expires_at, session_id`

type rowScanner interface{ Scan(...any) error }

// scanRows reads every row of rows (from a query that failed with err, if
// it did) with scan, and closes rows: a transaction may use its connection
// again at once.
func scanRows[T any](rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanRequest reads a row selected with requestColumns, then extra columns
// into extra.
func (st *opStorage) scanRequest(row rowScanner, extra ...any) (*authRequest, error) {
	var (
		a             authRequest
		scopes, amr   string
		authTime, exp int64
	)
	err := row.Scan(append([]any{&a.id, &a.kind, &a.clientID, &scopes, &a.redirectURI, &a.state, &a.nonce, &a.challenge,
		&a.challengeMethod, &a.stage, &a.userID, &authTime, &amr, &a.browser, &exp, &a.sessionID}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	a.scopes, a.amr = strings.Fields(scopes), strings.Fields(amr)
	a.authTime, a.expires = time.Unix(authTime, 0), time.Unix(exp, 0)
	a.audience = st.audience(a.clientID)
	return &a, nil
}

// audience is who the tokens of a client's grant are for: the client, and
// for a first-party client the account API too (the issuer), whose
// verifyAccess requires it.
func (st *opStorage) audience(clientID string) []string {
	aud := []string{clientID}
	if c := st.clients[clientID]; c != nil && c.accountAPI {
		aud = append(aud, st.s.cfg.Issuer)
	}
	return aud
}

// request loads an unexpired request by id.
func (st *opStorage) request(ctx context.Context, id string) (*authRequest, error) {
	a, err := st.scanRequest(st.s.st.db.QueryRowContext(ctx,
		"SELECT "+requestColumns+" FROM oauth_requests WHERE id = ?", id))
	if err != nil {
		return nil, err
	}
	if !st.s.now().Before(a.expires) {
		return nil, errNotFound
	}
	return a, nil
}

// allowedScopes keeps the scopes the client may ask for.
func (c *client) allowedScopes(scopes []string) []string {
	return slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !c.IsScopeAllowed(sc) })
}

func (st *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c := st.clients[req.ClientID]
	if c == nil {
		return nil, oidc.ErrInvalidClient()
	}
	// A POSTed authorization request's parameters have not passed the
	// handler's check of the query (text.go).
	for _, v := range []string{req.RedirectURI, req.State, req.Nonce, req.CodeChallenge, string(req.CodeChallengeMethod)} {
		if !textOK(v) {
			return nil, oidc.ErrInvalidRequest().WithDescription("Parameters must be UTF-8 without NUL characters.")
		}
	}
	now := st.s.now()
	id := newID()
	err := st.s.st.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_requests (id, kind, client_id, scopes, redirect_uri, state, nonce,
			code_challenge, challenge_method, created_at, expires_at) VALUES (?, 'code', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, req.ClientID, strings.Join(c.allowedScopes(req.Scopes), " "), req.RedirectURI, req.State, req.Nonce,
			req.CodeChallenge, string(req.CodeChallengeMethod), now.Unix(), now.Add(authRequestTTL).Unix())
		return err
	})
	if err != nil {
		return nil, err
	}
	return st.request(ctx, id)
}

func (st *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := st.request(ctx, id)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("The authorization request is unknown or expired.").WithParent(err)
	}
	return a, nil
}

// SaveAuthCode records the one code of an approved request: a second call
// (the callback loaded twice) fails rather than mint another code.
func (st *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	now := st.s.now()
	return st.s.st.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE oauth_requests SET code_hash = ?, code_expires_at = ?
			WHERE id = ? AND stage = ? AND code_hash IS NULL`, hashToken(code), now.Add(authCodeTTL).Unix(), id, stageApproved)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return oidc.ErrInvalidRequest().WithDescription("This authorization was already answered.")
		}
		return nil
	})
}

// AuthRequestByCode finds the request of a code. The code is spent when
// tokens are issued for it (openGrant), not here: op calls this before it
// authenticates the client, and a failed attempt must not burn the code.
// A code presented after it was spent ends the session its redemption
// opened (RFC 6749 §4.1.2): one of the two presenters is not the client.
func (st *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	var used, exp sql.NullInt64
	a, err := st.scanRequest(st.s.st.db.QueryRowContext(ctx, "SELECT "+requestColumns+
		", code_used_at, code_expires_at FROM oauth_requests WHERE code_hash = ?", hashToken(code)), &used, &exp)
	switch {
	case err != nil:
		return nil, err
	case used.Valid:
		if a.sessionID.Valid {
			err := st.s.st.tx(ctx, func(tx *sql.Tx) error {
				return st.s.endSessions(ctx, tx, auditEvent{Type: evSessionRevoked,
					Detail: map[string]string{"reason": "code_reuse", "client_id": a.clientID}},
					`UPDATE sessions SET revoked_at = ?, revoked_reason = 'reuse'
					WHERE id = ? AND revoked_at IS NULL RETURNING id, user_id`, st.s.now().Unix(), a.sessionID.String)
			})
			if err != nil {
				return nil, err
			}
			st.s.log.Warn("authorization code reused: session revoked", "client_id", a.clientID, "session", a.sessionID.String)
		}
		return nil, errors.New("code already used")
	case !exp.Valid || st.s.now().Unix() >= exp.Int64:
		return nil, errors.New("code expired")
	}
	return a, nil
}

// DeleteAuthRequest keeps the row: it remembers the used code until it
// expires, so that a second redemption is recognised; the janitor drops it.
func (st *opStorage) DeleteAuthRequest(context.Context, string) error { return nil }

func (st *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c := st.clients[id]; c != nil {
		return c, nil
	}
	return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
}

func (st *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if c := st.clients[id]; c != nil && c.checkSecret(secret) {
		return nil
	}
	return errors.New("wrong client id or secret")
}

// Keys: the provider signs with the account API's active key and publishes
// the same set.

type signingKey struct{ jwk jose.JSONWebKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return signingAlg }
func (k signingKey) Key() any                                    { return k.jwk.Key }
func (k signingKey) ID() string                                  { return k.jwk.KeyID }

type publicKey struct{ jwk jose.JSONWebKey }

func (k publicKey) ID() string                         { return k.jwk.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return signingAlg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.jwk.Key }

func (st *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{st.s.keys.private}, nil
}

func (st *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{signingAlg}, nil
}

func (st *opStorage) KeySet(context.Context) ([]op.Key, error) {
	keys := make([]op.Key, 0, len(st.s.keys.jwks.Keys))
	for _, k := range st.s.keys.jwks.Keys {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

func (st *opStorage) Health(ctx context.Context) error { return st.s.st.db.PingContext(ctx) }

// Not supported: JWT profile grants and client assertions.

func (st *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client assertions are not supported")
}

func (st *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

// Device authorization (RFC 8628).

func (st *opStorage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, _ time.Time, scopes []string) error {
	c := st.clients[clientID]
	if c == nil {
		return oidc.ErrInvalidClient()
	}
	// The expiry op passes is from the wall clock; the server's own clock
	// decides, as everywhere else.
	now := st.s.now()
	return st.s.st.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_requests (id, kind, client_id, scopes, device_code_hash, user_code,
			created_at, expires_at) VALUES (?, 'device', ?, ?, ?, ?, ?, ?)`,
			newID(), clientID, strings.Join(c.allowedScopes(scopes), " "), hashToken(deviceCode), userCode,
			now.Unix(), now.Add(deviceCodeTTL).Unix())
		if st.s.st.uniqueViolation(err) == "user_code" {
			return op.ErrDuplicateUserCode
		}
		return err
	})
}

// GetDeviceAuthorizatonState answers a device's poll. The device code is
// bound to the client that started it (the client id is recorded, unlike in
// op's example storage, so the refresh grant later finds the right client),
// and the subject is the user id, as in the account API's tokens. An
// approved authorization is handed out once.
func (st *opStorage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	var a *authRequest
	err := st.s.st.tx(ctx, func(tx *sql.Tx) error {
		var consumed sql.NullInt64
		var err error
		a, err = st.scanRequest(tx.QueryRowContext(ctx, "SELECT "+requestColumns+
			", consumed_at FROM oauth_requests WHERE device_code_hash = ? AND kind = 'device'", hashToken(deviceCode)), &consumed)
		switch {
		case err != nil:
			return err
		case a.clientID != clientID || consumed.Valid:
			return errNotFound
		case a.stage == stageApproved:
			_, err = tx.ExecContext(ctx, "UPDATE oauth_requests SET consumed_at = ? WHERE id = ?", st.s.now().Unix(), a.id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	state := &op.DeviceAuthorizationState{
		ClientID: a.clientID,
		Audience: a.audience,
		Scopes:   a.scopes,
		// op compares the expiry with the wall clock: hand it the time
		// left by the server's clock, measured from the wall clock.
		Expires: time.Now().Add(a.expires.Sub(st.s.now())),
		Done:    a.stage == stageApproved,
		Denied:  a.stage == stageDenied,
	}
	if state.Done {
		state.Subject = a.GetSubject()
		state.AMR = a.amr
		state.AuthTime = a.authTime
		st.devices.Store(state, &deviceNote{rowID: a.id})
	}
	return state, nil
}
