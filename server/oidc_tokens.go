package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Every grant to an OAuth client is a session: the refresh tokens the token
// endpoint hands out are the session's refresh-token family, rotated by the
// same rotate() as the account API's (with its reuse detection and grace
// window), so OAuth logins appear in /auth/sessions and end with it. Access
// tokens are JWTs whose id (jti) is "<session id>.<random>", so that
// userinfo, introspection and revocation find the session; a first-party
// client's access tokens also carry the claims the account API's
// verifyAccess requires (issuer audience, sid, type).

// grant is what a token request is about, whatever its kind.
type grant struct {
	uid      int64
	clientID string
	scopes   []string
	authTime time.Time
	amr      []string
	rowID    string // the oauth_requests row, if any
}

// grantOf reads a token request of op: an authorization code's request, a
// device authorization or a refresh token's session.
func (st *opStorage) grantOf(req op.TokenRequest) (*grant, error) {
	uid, err := strconv.ParseInt(req.GetSubject(), 10, 64)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("no user")
	}
	switch r := req.(type) {
	case *authRequest:
		return &grant{uid: uid, clientID: r.clientID, scopes: r.scopes, authTime: r.authTime, amr: r.amr, rowID: r.id}, nil
	case *op.DeviceAuthorizationState:
		g := &grant{uid: uid, clientID: r.ClientID, scopes: r.Scopes, authTime: r.AuthTime, amr: r.AMR}
		if n, ok := st.devices.Load(r); ok {
			g.rowID = n.(*deviceNote).rowID
		}
		return g, nil
	}
	return nil, oidc.ErrUnsupportedGrantType()
}

// grantKind names a token request for latch_oauth_tokens_total.
func grantKind(req op.TokenRequest) string {
	switch req.(type) {
	case *authRequest:
		return "authorization_code"
	case *op.DeviceAuthorizationState:
		return "device_code"
	}
	return "refresh_token"
}

// accessTokenID is the jti of an access token of session sid.
func accessTokenID(sid string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return sid + "." + hex.EncodeToString(b)
}

// accessExpiry is when an access token issued now expires.
func (s *Server) accessExpiry() time.Time { return ceilSecond(s.now().Add(s.cfg.AccessTTL)) }

// openGrant starts the session of a new grant. Without a refresh token the
// session lasts as long as its access token, and its refresh token is never
// disclosed.
func (st *opStorage) openGrant(ctx context.Context, g *grant, withRefresh bool) (*session, error) {
	s := st.s
	c := st.clients[g.clientID]
	var sess *session
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if sess, err = s.startSession(ctx, tx, g.uid, c.name+" (OAuth)"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sessions SET client_id = ?, scopes = ?, auth_time = ?, amr = ? WHERE id = ?",
			g.clientID, strings.Join(g.scopes, " "), g.authTime.Unix(), strings.Join(g.amr, " "), sess.ID); err != nil {
			return err
		}
		if !withRefresh {
			end := s.accessExpiry().Unix()
			if _, err := tx.ExecContext(ctx, "UPDATE sessions SET expires_at = ? WHERE id = ?", end, sess.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE refresh_tokens SET expires_at = ? WHERE session_id = ?", end, sess.ID); err != nil {
				return err
			}
			sess.Refresh = ""
		}
		if g.rowID == "" {
			return nil
		}
		// Spend the authorization code (or note the device grant's
		// session): of two redemptions of one code, one wins.
		res, err := tx.ExecContext(ctx, `UPDATE oauth_requests SET session_id = ?,
			code_used_at = CASE WHEN kind = 'code' THEN CAST(? AS BIGINT) END WHERE id = ? AND code_used_at IS NULL`, sess.ID, s.now().Unix(), g.rowID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return oidc.ErrInvalidGrant().WithDescription("The code was already used.")
		}
		return nil
	})
	return sess, err
}

// noteSession remembers the session a token request opened, for the access
// token's claims.
func (st *opStorage) noteSession(req op.TokenRequest, sid string) {
	switch r := req.(type) {
	case *authRequest:
		r.sid = sid
	case *refreshRequest:
		r.sid = sid
	case *op.DeviceAuthorizationState:
		if n, ok := st.devices.Load(r); ok {
			n.(*deviceNote).sid = sid
		}
	}
}

func (st *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, err := st.grantOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	sess, err := st.openGrant(ctx, g, false)
	if err != nil {
		return "", time.Time{}, err
	}
	st.noteSession(req, sess.ID)
	st.s.metrics.oauthTokens.inc(grantKind(req))
	st.s.log.Info("oauth grant", "user_id", g.uid, "client_id", g.clientID, "session", sess.ID, "grant", grantKind(req))
	return accessTokenID(sess.ID), st.s.accessExpiry(), nil
}

func (st *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	if rr, ok := req.(*refreshRequest); ok {
		return st.refresh(ctx, rr, current)
	}
	g, err := st.grantOf(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	sess, err := st.openGrant(ctx, g, true)
	if err != nil {
		return "", "", time.Time{}, err
	}
	st.noteSession(req, sess.ID)
	st.s.metrics.oauthTokens.inc(grantKind(req))
	st.s.log.Info("oauth grant", "user_id", g.uid, "client_id", g.clientID, "session", sess.ID, "grant", grantKind(req))
	return accessTokenID(sess.ID), sess.Refresh, st.s.accessExpiry(), nil
}

// refresh rotates the refresh token with the account API's rotate(): a used
// token presented again (after the grace window) revokes the session, and
// the client gets invalid_grant.
func (st *opStorage) refresh(ctx context.Context, rr *refreshRequest, current string) (string, string, time.Time, error) {
	s := st.s
	sess, outcome, err := s.rotate(ctx, current)
	if outcome != "" {
		s.metrics.refreshes.inc(outcome)
	}
	if outcome == refreshReused {
		s.log.Warn("refresh token reuse: session revoked", "client_id", rr.clientID, "session", rr.sid)
	}
	var p *problem
	if errors.As(err, &p) {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("%s", p.Detail)
	}
	if err != nil {
		return "", "", time.Time{}, err
	}
	if sess.ID != rr.sid {
		return "", "", time.Time{}, oidc.ErrInvalidGrant()
	}
	s.metrics.oauthTokens.inc("refresh_token")
	return accessTokenID(sess.ID), sess.Refresh, s.accessExpiry(), nil
}

// refreshRequest is a refresh token's session, as op.RefreshTokenRequest.
type refreshRequest struct {
	sid, clientID string
	uid           int64
	scopes, amr   []string
	authTime      time.Time
	audience      []string
}

func (r *refreshRequest) GetAMR() []string             { return r.amr }
func (r *refreshRequest) GetAudience() []string        { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time       { return r.authTime }
func (r *refreshRequest) GetClientID() string          { return r.clientID }
func (r *refreshRequest) GetScopes() []string          { return r.scopes }
func (r *refreshRequest) GetSubject() string           { return strconv.FormatInt(r.uid, 10) }
func (r *refreshRequest) SetCurrentScopes(sc []string) { r.scopes = sc }

// TokenRequestByRefreshToken finds the session of an OAuth refresh token. It
// does not judge use or expiry: rotate does, in one transaction.
func (st *opStorage) TokenRequestByRefreshToken(ctx context.Context, tok string) (op.RefreshTokenRequest, error) {
	var (
		r           refreshRequest
		scopes, amr string
		authTime    int64
		revoked     sql.NullInt64
	)
	err := st.s.st.db.QueryRowContext(ctx, `
		SELECT s.id, s.client_id, s.user_id, s.scopes, s.amr, s.auth_time, s.revoked_at
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
		WHERE t.hash = ? AND s.client_id IS NOT NULL`, hashToken(tok)).
		Scan(&r.sid, &r.clientID, &r.uid, &scopes, &amr, &authTime, &revoked)
	if err != nil {
		return nil, errors.New("unknown refresh token")
	}
	if revoked.Valid {
		return nil, errors.New("session ended")
	}
	r.scopes, r.amr, r.authTime = strings.Fields(scopes), strings.Fields(amr), time.Unix(authTime, 0)
	r.audience = st.audience(r.clientID)
	return &r, nil
}

// GetPrivateClaimsFromRequest adds, for a first-party client, the claims
// that make the access token one the account API accepts.
func (st *opStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	var clientID, sid string
	switch r := req.(type) {
	case *authRequest:
		clientID, sid = r.clientID, r.sid
	case *refreshRequest:
		clientID, sid = r.clientID, r.sid
	case *op.DeviceAuthorizationState:
		clientID = r.ClientID
		if n, ok := st.devices.LoadAndDelete(r); ok {
			sid = n.(*deviceNote).sid
		}
	}
	if c := st.clients[clientID]; c == nil || !c.accountAPI || sid == "" {
		return nil, nil
	}
	claims := map[string]any{"sid": sid, "type": "access"}
	if uid, err := strconv.ParseInt(req.GetSubject(), 10, 64); err == nil {
		if u, err := st.s.loadUser(ctx, uid); err == nil {
			claims["email_verified"] = u.EmailVerified
		}
		// The account API's permission checks read the token's roles.
		roles, err := st.s.rolesOf(ctx, st.s.st.db, uid)
		if err != nil {
			return nil, err
		}
		claims["roles"] = roles
	}
	return claims, nil
}

func (st *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// openSession is the open session an access token id names, for user sub.
type openSession struct {
	id, clientID string
	uid          int64
	scopes, amr  []string
	authTime     time.Time
}

func (st *opStorage) openSessionOf(ctx context.Context, tokenID, sub string) (*openSession, error) {
	sid, _, ok := strings.Cut(tokenID, ".")
	if !ok {
		return nil, errors.New("not an access token of this server")
	}
	var (
		o           openSession
		cid         sql.NullString
		scopes, amr string
		authTime    int64
	)
	err := st.s.st.db.QueryRowContext(ctx, `SELECT id, client_id, user_id, scopes, amr, auth_time FROM sessions
		WHERE id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?`, sid, sub, st.s.now().Unix()).
		Scan(&o.id, &cid, &o.uid, &scopes, &amr, &authTime)
	if err != nil {
		return nil, errors.New("the session has ended")
	}
	o.clientID, o.scopes, o.amr, o.authTime = cid.String, strings.Fields(scopes), strings.Fields(amr), time.Unix(authTime, 0)
	return &o, nil
}

// userClaims fills the claims the scopes allow.
func (st *opStorage) userClaims(ctx context.Context, uid int64, scopes []string, info *oidc.UserInfo) error {
	u, err := st.s.loadUser(ctx, uid)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername, info.Name = u.Username, u.Username
			info.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
			// The field is omitted when false; say so explicitly.
			info.AppendClaims("email_verified", u.EmailVerified)
		case scopeRoles:
			roles, err := st.s.rolesOf(ctx, st.s.st.db, uid)
			if err != nil {
				return err
			}
			info.AppendClaims("roles", roles)
		}
	}
	return nil
}

func (st *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (st *opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	uid, err := strconv.ParseInt(req.GetSubject(), 10, 64)
	if err != nil {
		return err
	}
	info.Subject = req.GetSubject()
	return st.userClaims(ctx, uid, scopes, info)
}

func (st *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, sub, _ string) error {
	o, err := st.openSessionOf(ctx, tokenID, sub)
	if err != nil {
		return err
	}
	info.Subject = sub
	return st.userClaims(ctx, o.uid, o.scopes, info)
}

// SetIntrospectionFromToken answers for an access token whose session is
// still open. Any authenticated (confidential) client may introspect: that
// is what resource servers are registered as.
func (st *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, sub, _ string) error {
	o, err := st.openSessionOf(ctx, tokenID, sub)
	if err != nil {
		return err
	}
	resp.Subject, resp.ClientID, resp.Scope = sub, o.clientID, o.scopes
	resp.TokenType, resp.Issuer, resp.JWTID = oidc.BearerToken, st.s.cfg.Issuer, tokenID
	resp.Audience = st.audience(o.clientID)
	resp.AuthTime = oidc.FromTime(o.authTime)
	resp.AuthenticationMethodsReferences = o.amr
	if u, err := st.s.loadUser(ctx, o.uid); err == nil {
		resp.Username = u.Username
	}
	return nil
}

// GetRefreshTokenInfo names a refresh token for revocation by its hash.
func (st *opStorage) GetRefreshTokenInfo(ctx context.Context, _ string, tok string) (string, string, error) {
	if !strings.HasPrefix(tok, refreshPrefix) {
		return "", "", op.ErrInvalidRefreshToken
	}
	hash := hashToken(tok)
	var uid int64
	err := st.s.st.db.QueryRowContext(ctx, `SELECT s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
		WHERE t.hash = ? AND s.client_id IS NOT NULL`, hash).Scan(&uid)
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return strconv.FormatInt(uid, 10), "rt:" + hex.EncodeToString(hash), nil
}

// RevokeToken ends the session of a refresh token or an access token (RFC
// 7009 §2.1 allows revoking the whole grant for either). userID is set only
// for tokens op has verified; anything else is an unknown token, which is
// not an error.
func (st *opStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if userID == "" {
		return nil
	}
	var where string
	var arg any
	if h, ok := strings.CutPrefix(tokenOrID, "rt:"); ok {
		hash, err := hex.DecodeString(h)
		if err != nil {
			return nil
		}
		where, arg = "id = (SELECT session_id FROM refresh_tokens WHERE hash = ?)", hash
	} else {
		sid, _, ok := strings.Cut(tokenOrID, ".")
		if !ok {
			return nil
		}
		where, arg = "id = ?", sid
	}
	var owner sql.NullString
	err := st.s.st.db.QueryRowContext(ctx, "SELECT client_id FROM sessions WHERE "+where+" AND user_id = ?", arg, userID).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError()
	}
	if owner.String != clientID {
		return oidc.ErrInvalidClient().WithDescription("The token was not issued to this client.")
	}
	err = st.s.st.tx(ctx, func(tx *sql.Tx) error {
		return st.s.endSessions(ctx, tx, auditEvent{Type: evSessionRevoked,
			Detail: map[string]string{"reason": "oauth_revocation", "client_id": clientID}},
			"UPDATE sessions SET revoked_at = ?, revoked_reason = 'revoked' WHERE revoked_at IS NULL AND "+where+" RETURNING id, user_id",
			st.s.now().Unix(), arg)
	})
	if err != nil {
		return oidc.ErrServerError()
	}
	st.s.log.Info("oauth token revoked", "user_id", userID, "client_id", clientID)
	return nil
}

// TerminateSession (end_session with an ID token hint) ends the user's
// sessions with that client.
func (st *opStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return st.s.st.tx(ctx, func(tx *sql.Tx) error {
		return st.s.endSessions(ctx, tx, auditEvent{Type: evLogout, Detail: map[string]string{"client_id": clientID}},
			`UPDATE sessions SET revoked_at = ?, revoked_reason = 'logout'
			WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL RETURNING id, user_id`, st.s.now().Unix(), userID, clientID)
	})
}
