package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signingAlg is the only algorithm access tokens are signed with, and the
// only one accepted when verifying them.
const signingAlg = jose.ES256

// keySet holds the access-token signing keys loaded from the database: the
// active one signs, all of them verify and are published at the JWKS URL.
type keySet struct {
	signer jose.Signer
	active string
	// private is the active key, for the OpenID provider, which signs
	// through its own jose.Signer.
	private jose.JSONWebKey
	public  map[string]jose.JSONWebKey
	jwks    jose.JSONWebKeySet
}

// loadKeys reads the signing keys, creating the first one on a new database.
// Private keys are stored sealed with the server key: a copy of the database
// alone cannot mint access tokens.
func loadKeys(ctx context.Context, st *store, sl *sealer, now time.Time) (*keySet, error) {
	err := st.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM signing_keys WHERE active = 1").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		kidBytes := make([]byte, 8)
		rand.Read(kidBytes)
		jwk := jose.JSONWebKey{Key: priv, KeyID: hex.EncodeToString(kidBytes), Algorithm: string(signingAlg), Use: "sig"}
		raw, err := jwk.MarshalJSON()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO signing_keys (kid, alg, private_jwk, created_at) VALUES (?, ?, ?, ?)",
			jwk.KeyID, jwk.Algorithm, sl.seal(raw, []byte(jwk.KeyID)), now.Unix())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	rows, err := st.db.QueryContext(ctx, "SELECT kid, private_jwk, active FROM signing_keys ORDER BY created_at")
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	defer rows.Close()
	ks := &keySet{public: map[string]jose.JSONWebKey{}}
	for rows.Next() {
		var kid string
		var sealed []byte
		var active bool
		if err := rows.Scan(&kid, &sealed, &active); err != nil {
			return nil, err
		}
		raw, err := sl.open(sealed, []byte(kid))
		if err != nil {
			return nil, fmt.Errorf("signing key %s does not open with this server key (is --secret-key-file the one this database was made with?): %w", kid, err)
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", kid, err)
		}
		pub := jwk.Public()
		ks.public[kid] = pub
		ks.jwks.Keys = append(ks.jwks.Keys, pub)
		if active {
			ks.active = kid
			ks.private = jwk
			ks.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: signingAlg, Key: jwk},
				(&jose.SignerOptions{}).WithType("at+jwt"))
			if err != nil {
				return nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if ks.signer == nil {
		return nil, errors.New("no active signing key")
	}
	return ks, nil
}

// accessClaims are the claims of an access token.
type accessClaims struct {
	jwt.Claims
	SessionID string `json:"sid"`
	Type      string `json:"type"`
	// EmailVerified is whether the account's email was verified when the
	// token was issued.
	EmailVerified bool `json:"email_verified"`
	// Roles are the account's roles when the token was issued, least
	// privileged first: a role change takes effect at the next refresh.
	Roles []string `json:"roles"`
}

// ceilSecond rounds t up to a whole second. JWT times are whole seconds;
// rounding the expiry down would make a token live up to a second less than
// the expires_in the client was told — all of a 1 s token's life.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// issueAccess signs an access token for user uid in session sid.
func (s *Server) issueAccess(uid int64, sid string, emailVerified bool) (string, error) {
	roles, err := s.rolesOf(context.Background(), s.st.db, uid)
	if err != nil {
		return "", fmt.Errorf("read roles of user %d: %w", uid, err)
	}
	now := s.now()
	jti := make([]byte, 16)
	rand.Read(jti)
	c := accessClaims{
		Claims: jwt.Claims{
			Issuer:   s.cfg.Issuer,
			Subject:  strconv.FormatInt(uid, 10),
			Audience: jwt.Audience{s.cfg.Issuer},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(ceilSecond(now.Add(s.cfg.AccessTTL))),
			ID:       hex.EncodeToString(jti),
		},
		SessionID:     sid,
		Type:          "access",
		EmailVerified: emailVerified,
		Roles:         roles,
	}
	return jwt.Signed(s.keys.signer).Claims(c).Serialize()
}

// verifyAccess checks an access token's signature (ES256 only, a known kid),
// issuer, audience, expiry and type, and returns its claims.
func (s *Server) verifyAccess(raw string) (*accessClaims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{signingAlg})
	if err != nil {
		return nil, err
	}
	if len(tok.Headers) != 1 {
		return nil, errors.New("expected one signature")
	}
	key, ok := s.keys.public[tok.Headers[0].KeyID]
	if !ok {
		return nil, errors.New("unknown signing key")
	}
	var c accessClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, err
	}
	err = c.ValidateWithLeeway(jwt.Expected{
		Issuer:      s.cfg.Issuer,
		AnyAudience: jwt.Audience{s.cfg.Issuer},
		Time:        s.now(),
	}, 0)
	if err != nil {
		return nil, err
	}
	if c.Type != "access" || c.SessionID == "" || c.Expiry == nil {
		return nil, errors.New("not an access token")
	}
	// RFC 7519 §4.1.4: not accepted on or after exp (go-jose allows "on").
	if !s.now().Before(c.Expiry.Time()) {
		return nil, jwt.ErrExpired
	}
	return &c, nil
}
