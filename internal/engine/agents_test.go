package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Each node gets its own token when the provider names one, else the
// shared token; a node with neither is refused before any request.
func TestHTTPDialerPerNodeTokens(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 4)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.NodeFacts{Name: "x"})
	}))
	t.Cleanup(s.Close)
	dial := HTTPDialer(HTTPDialerOptions{Token: "shared-token", NodeTokens: map[string]string{"node-2": "node-2-token"}, RetryMax: -1})
	for node, want := range map[string]string{"node-1": "shared-token", "node-2": "node-2-token"} {
		cl, err := dial(node, s.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Node(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != want {
			t.Errorf("%s sent token %q, want %q", node, got, want)
		}
	}
	only := HTTPDialer(HTTPDialerOptions{NodeTokens: map[string]string{"node-2": "node-2-token"}})
	if _, err := only("node-1", s.URL); err == nil || !strings.Contains(err.Error(), "no agent token for node node-1") {
		t.Errorf("dial without a token for the node: %v", err)
	}
}

// The dialer refuses plain HTTP to another host unless allowed.
func TestHTTPDialerRefusesPlaintextToOtherHosts(t *testing.T) {
	t.Parallel()
	if _, err := HTTPDialer(HTTPDialerOptions{Token: "t"})("node-1", "http://10.0.0.5:7420"); err == nil || !strings.Contains(err.Error(), "insecure_plaintext") {
		t.Errorf("plain HTTP to 10.0.0.5: %v, want a refusal", err)
	}
	if _, err := HTTPDialer(HTTPDialerOptions{Token: "t", InsecurePlaintext: true})("node-1", "http://10.0.0.5:7420"); err != nil {
		t.Errorf("plain HTTP with InsecurePlaintext: %v", err)
	}
}
