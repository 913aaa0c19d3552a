package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// FuzzParseConfig: whatever the bytes, the agent config loader never
// panics, and a refusal is a *ConfigError whose every error carries its
// file:line:col, so an operator can find what to fix.
func FuzzParseConfig(f *testing.F) {
	dir := f.TempDir()
	e := configEnv{dir: dir, volume: filepath.Join(dir, "shared"), tokenFile: filepath.Join(dir, "agent.token"), program: "/bin/true"}
	if err := os.MkdirAll(filepath.Join(e.volume, "apps", "web"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(e.tokenFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	valid := e.render(validConfig)
	for _, seed := range []string{
		valid,
		"",
		"node = ",
		"node = \"n\"\nnode = \"m\"\n",
		strings.Replace(valid, `driver = "exec"`, `driver = 42`, 1),
		strings.Replace(valid, `paths  = ["apps/web", "apps/./web-logs"]`, `paths = ["../../etc"]`, 1),
		strings.Replace(valid, `paths  = ["apps/web", "apps/./web-logs"]`, `paths = null`, 1),
		strings.Replace(valid, `timeout  = "10s"`, `timeout = "forever"`, 1),
		valid + "\nworkload \"web\" {\n  driver = \"exec\"\n}\n",
		valid + "\nworkload \"db\" {\n  driver = \"postgresql\"\n  paths = [\"apps/web\"]\n  postgresql { port = 99999 }\n}\n",
		valid + "\nworkload \"vm\" {\n  driver = \"qemu\"\n  paths = [\"vms\"]\n  qemu { disks = [\"/abs.qcow2\"] }\n}\n",
		valid + "\ntls {\n  cert_file = \"/nonexistent\"\n}\n",
		"workload {\n",
		"node = \"${var.x}\"\n",
		"node = [for x in [1,2]: x]\n",
		strings.Repeat("{", 200),
		"\x00\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		type result struct {
			cfg *Config
			err error
		}
		done := make(chan result, 1)
		go func() { c, err := ParseConfig("fuzz.hcl", src); done <- result{c, err} }()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ParseConfig did not return within 10s for %q", src)
		}
		cfg, err := r.cfg, r.err
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without an error")
			}
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("error is %T, not *ConfigError: %v", err, err)
		}
		errs := 0
		for _, d := range ce.Diagnostics {
			if d.Severity != hcl.DiagError {
				continue
			}
			errs++
			if d.Subject == nil {
				t.Fatalf("error without a position: %s: %s", d.Summary, d.Detail)
			}
		}
		if errs == 0 {
			t.Fatalf("refused without an error diagnostic: %v", err)
		}
		if !strings.Contains(err.Error(), "fuzz.hcl:") {
			t.Fatalf("message names no position: %v", err)
		}
	})
}
