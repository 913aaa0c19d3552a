package rescuecli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Wrong usage exits 2 and says what to do, before anything is contacted.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workload", "web"}, "--nodes and --token-file are required"},
		{[]string{"--workload", "web", "--nodes", "node-1", "--token-file", pw}, "give NAME=URL pairs"},
		{[]string{"--workload", "web", "--nodes", "node-1=http://127.0.0.1:1", "--token-file", pw, "--node", "node-9"}, `--node "node-9" is not one of --nodes`},
		{[]string{"--workload", "web", "--nodes", "node-1=http://127.0.0.1:1", "--token-file", pw, "--assume-down", "node-2"}, "--assume-down \"node-2\" is not one of"},
		{[]string{"--workload", "web", "--nodes", "node-1=http://127.0.0.1:1", "--token-file", pw, "--before", "yesterday"}, "RFC 3339"},
		{[]string{"--workload", "web", "--nodes", "node-1=http://127.0.0.1:1", "--token-file", pw, "--before", "2026-01-01T00:00:00Z", "--recovery-point", "abcdef12"}, "exclude each other"},
	} {
		var out, errb bytes.Buffer
		if code := RunRestore(ctx, c.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("restore %q: exit %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := RunCatalog(ctx, []string{"rebuild", "--catalog", filepath.Join(t.TempDir(), "c.db")}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--repository-name are required") {
		t.Errorf("catalog rebuild without a repository name: exit %d, %q", code, errb.String())
	}
	if code := RunCatalog(ctx, []string{"rebuld"}, &out, &errb); code != 2 {
		t.Errorf("catalog with an unknown subcommand: exit %d", code)
	}
}

// The printed definition is HCL whose strings stay literal.
func TestDefinitionHCLQuotes(t *testing.T) {
	t.Parallel()
	got := DefinitionHCL(api.WorkloadDefinition{Name: "web", Driver: "exec", Paths: []string{"apps/web"},
		Exec: &api.ExecDefinition{Commands: map[string][]string{"start": {"/bin/sh", "-c", `echo "${HOME}" %{x}`}, "status": {"/bin/true"}},
			EnvNames: []string{"TOKEN"}}})
	for _, want := range []string{`status = ["/bin/true"]`, `start = ["/bin/sh", "-c", "echo \"$${HOME}\" %%{x}"]`, "# env: TOKEN (values were not recorded"} {
		if !strings.Contains(got, want) {
			t.Errorf("definition HCL lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "status =") > strings.Index(got, "start =") {
		t.Errorf("commands not in the agent's order (status first):\n%s", got)
	}
}
