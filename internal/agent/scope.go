package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
)

// CodeForbidden is the api.Error code of a request the token's scope does not allow.
const CodeForbidden = "forbidden"

// tokenScope says what a bearer token may do.
type tokenScope int

const (
	scopeNone     tokenScope = iota // wrong token
	scopeFull                       // token_file: everything
	scopeReadOnly                   // read_only_token_file: GET only (probes)
)

// scopeOf compares the hash of a presented token with both configured
// tokens, in constant time, and always with both.
func (s *Server) scopeOf(got [sha256.Size]byte) tokenScope {
	full := subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
	readOnly := s.hasReadOnlyToken && subtle.ConstantTimeCompare(got[:], s.readOnlyTokenHash[:]) == 1
	switch {
	case full:
		return scopeFull
	case readOnly:
		return scopeReadOnly
	}
	return scopeNone
}

// allowed reports whether scope permits r; a read-only token may only read
// (GET), so a monitoring system holding it cannot start, stop, freeze, back
// up, restore or claim anything.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, scope tokenScope) bool {
	if scope == scopeFull || (scope == scopeReadOnly && r.Method == http.MethodGet) {
		return true
	}
	s.authFailures.Add(1)
	s.logger.Warn("request refused: read-only token used for a change", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	s.writeError(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf(
		"%s %s needs the agent's full token: the token sent is the read-only token (read_only_token_file), which may only GET; "+
			"give the engine the token in this agent's token_file", r.Method, r.URL.Path))
	return false
}
