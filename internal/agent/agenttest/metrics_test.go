package agenttest

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape GETs node's /metrics with token ("" for none).
func scrape(t *testing.T, c *Cluster, node, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.Node(node).Endpoint+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// value returns the sample of metric (name with labels, as exposed), or -1.
func value(body, metric string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// An agent's /metrics needs its token and reports workloads by state,
// requests by route and code, quiesce holds and ownership lease renewals.
func TestAgentMetrics(t *testing.T) {
	c := Start(t, Options{Nodes: 1, Workloads: []string{"web", "db"}, WorkloadEnv: fastWorkload})
	if code, _ := scrape(t, c, "node-1", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d, want 401", code)
	}
	c.StartWorkload(t, "node-1", "web")
	cl := c.Client(t, "node-1")
	ctx := context.Background()
	if _, err := cl.Quiesce(ctx, "web", time.Minute); err != nil {
		t.Fatal(err)
	}
	code, body := scrape(t, c, "node-1", c.Token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	for metric, want := range map[string]float64{
		`clusterguard_agent_workloads{state="active"}`:                              1,
		`clusterguard_agent_workloads{state="inactive"}`:                            1,
		`clusterguard_agent_workload_state{state="active",workload="web"}`:          1,
		`clusterguard_agent_workload_state{state="active",workload="db"}`:           0,
		`clusterguard_agent_quiesce_holds_active`:                                   1,
		`clusterguard_agent_quiesce_holds_total`:                                    1,
		`clusterguard_agent_http_requests_total{code="401",route="GET /metrics"}`:   1,
		`clusterguard_agent_http_requests_total{code="200",route="GET /v1/health"}`: -2, // any
	} {
		got := value(body, metric)
		if want == -2 && got < 1 || want != -2 && got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if _, err := cl.Action(ctx, "web", "thaw"); err != nil {
		t.Fatal(err)
	}
	// The ownership lease of the started workload is renewed in the background.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = scrape(t, c, "node-1", c.Token)
		if value(body, "clusterguard_agent_ownership_lease_renewals_total") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lease renewal counted within 20s:\n%s", grep(body, "clusterguard_agent_ownership"))
		}
	}
	if v := value(body, "clusterguard_agent_quiesce_holds_active"); v != 0 {
		t.Errorf("holds active after the thaw = %v, want 0", v)
	}
	if v := value(body, "clusterguard_agent_ownership_leases_held"); v != 1 {
		t.Errorf("leases held = %v, want 1", v)
	}
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
