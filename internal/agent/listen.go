package agent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/net/netutil"
)

// CodeRequestTimeout is the api.Error code of a request whose body did not
// arrive within the read timeout.
const CodeRequestTimeout = "request_timeout"

// maxRequestBody bounds what readBodyFirst buffers before the token is
// checked: the largest body a handler accepts (1 MiB), so max_connections
// unauthenticated clients can make the agent hold at most that many MiB.
const maxRequestBody = 1 << 20

// listen opens the agent's listener: at most cfg.Limits.MaxConnections
// connections at once, TLS when configured, and client certificates
// required and verified when the tls block names a client CA. It returns
// the URL scheme served.
func listen(cfg *Config, logger *slog.Logger) (net.Listener, string, error) {
	var tlsConfig *tls.Config
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLS.ClientCAFile != "" {
			pool, err := loadCertPool(cfg.TLS.ClientCAFile)
			if err != nil {
				return nil, "", fmt.Errorf("tls client_ca_file: %w", err)
			}
			tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w; choose a free address in listen (\"127.0.0.1:0\" picks any free port)", cfg.Listen, err)
	}
	// Connections beyond the limit wait in the kernel's backlog rather than
	// being refused; the read timeouts make sure held slots come free.
	ln = netutil.LimitListener(ln, cfg.Limits.MaxConnections)
	if tlsConfig == nil {
		if cfg.PlaintextExposed() {
			logger.Warn("INSECURE: serving plain HTTP on an address other hosts can reach (insecure_plaintext = true): "+
				"the bearer token and every request cross the network in clear text; add a tls block to the agent config",
				"listen", cfg.Listen)
		}
		return ln, "http", nil
	}
	if tlsConfig.ClientAuth == tls.RequireAndVerifyClientCert {
		logger.Info("mutual TLS: clients must present a certificate signed by the client CA", "client_ca_file", cfg.TLS.ClientCAFile)
	}
	return tls.NewListener(ln, tlsConfig), "https", nil
}

// newHTTPServer bounds how long a client may take to send a request.
// WriteTimeout stays 0 on purpose: backup and restore responses are written
// after minutes of work, and a write deadline set when the request was read
// would cut them off. (net/http lifts the read deadline once the body is
// read, so ReadTimeout does not cut long handlers either.)
func newHTTPServer(cfg *Config, handler http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		ReadTimeout:       cfg.Limits.ReadTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// readBodyFirst reads the whole request body before any handler runs (the
// token check included), under the server's read deadline, so a client that
// declares a body and never sends it is cut off after read_timeout with 408,
// whichever endpoint it calls.
func (s *Server) readBodyFirst(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		r.Body.Close()
		if err != nil {
			var ne net.Error
			status, code, msg := http.StatusBadRequest, CodeBadRequest, "could not read the request body: "+err.Error()
			if errors.As(err, &ne) && ne.Timeout() {
				status, code = http.StatusRequestTimeout, CodeRequestTimeout
				msg = fmt.Sprintf("the request body did not arrive within the agent's read timeout (%s); send it at once", s.cfg.Limits.ReadTimeout)
			}
			w.Header().Set("Connection", "close")
			s.writeError(w, status, code, msg)
			return
		}
		if len(body) > maxRequestBody {
			w.Header().Set("Connection", "close")
			s.writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBody))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
