package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/client"
)

// The engine's client refuses plain HTTP to another host unless told the
// network is trusted; loopback and https stay allowed.
func TestNewRefusesPlaintextToOtherHosts(t *testing.T) {
	t.Parallel()
	for _, endpoint := range []string{"http://10.0.0.5:7420", "http://node-1.example:7420", "http://[fe80::1]:7420", "http://0.0.0.0:7420"} {
		_, err := client.New(client.Options{Node: "node-2", Endpoint: endpoint})
		if err == nil || !strings.Contains(err.Error(), "node-2") || !strings.Contains(err.Error(), "insecure_plaintext") {
			t.Errorf("New(%q) = %v; want a refusal naming node-2 and insecure_plaintext", endpoint, err)
		}
		if _, err := client.New(client.Options{Node: "node-2", Endpoint: endpoint, InsecurePlaintext: true}); err != nil {
			t.Errorf("New(%q) with InsecurePlaintext: %v", endpoint, err)
		}
	}
	for _, endpoint := range []string{"http://127.0.0.1:7420", "http://127.3.4.5:7420", "http://[::1]:7420", "http://localhost:7420", "https://10.0.0.5:7420"} {
		if _, err := client.New(client.Options{Node: "node-2", Endpoint: endpoint}); err != nil {
			t.Errorf("New(%q): %v", endpoint, err)
		}
	}
}

// Quiesce sends the maximum hold in its body.
func TestQuiesceSendsTheHold(t *testing.T) {
	t.Parallel()
	got := make(chan api.QuiesceRequest, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.QuiesceRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		got <- req
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.ActionResult{Workload: "web", Action: "quiesce"})
	}))
	t.Cleanup(s.Close)
	c, err := client.New(client.Options{Node: "n", Endpoint: s.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Quiesce(context.Background(), "web", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if req := <-got; req.MaxHoldMS != 1500 {
		t.Errorf("max_hold_ms = %d, want 1500", req.MaxHoldMS)
	}
}
