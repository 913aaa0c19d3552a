package serve

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// secretFiles writes the token and key files a config names, with the
// modes the daemon requires, and returns their paths.
func secretFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{
		"agent":  "agent-token-0123456789abcdef",
		"reg":    "registration-token-0123456789",
		"node2":  "node-2-token-0123456789abcdef",
		"short":  "short",
		"key":    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"public": "public-token-0123456789abcdef",
	}
	paths := map[string]string{}
	for name, content := range files {
		p := filepath.Join(dir, name)
		mode := os.FileMode(0o600)
		if name == "public" {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(content+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask
			t.Fatal(err)
		}
		paths[name] = p
	}
	return paths
}

func TestParseConfigValid(t *testing.T) {
	dir := t.TempDir()
	f := secretFiles(t, dir)
	src := `
catalog                 = "` + filepath.Join(dir, "catalog.db") + `"
agent_token_file        = "` + f["agent"] + `"
agent_tokens            = { "node-2" = "` + f["node2"] + `" }
registration_token_file = "` + f["reg"] + `"
listen                  = "127.0.0.1:0"
max_concurrent_runs     = 2
leader_ttl              = "9s"
tick                    = "500ms"
request_timeout         = "1m"
`
	cfg, err := ParseConfig(filepath.Join(dir, "engine.hcl"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AgentToken.Reveal() != "agent-token-0123456789abcdef" || cfg.AgentTokens["node-2"].Reveal() != "node-2-token-0123456789abcdef" ||
		cfg.RegistrationToken.Reveal() != "registration-token-0123456789" {
		t.Errorf("tokens not read from their files: %+v", cfg)
	}
	if cfg.MaxConcurrentRuns != 2 || cfg.LeaderTTL != 9*time.Second || cfg.Tick != 500*time.Millisecond || cfg.RequestTimeout != time.Minute {
		t.Errorf("settings: %+v", cfg)
	}
	// The config never prints a secret, whichever verb.
	for _, s := range []string{cfg.AgentToken.String(), strings.TrimSpace(string(must(cfg.RegistrationToken.MarshalText())))} {
		if strings.Contains(s, "token-0123") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Every mistake is reported with the file, line and column, what is wrong
// and what to do; secrets are never echoed.
func TestParseConfigErrors(t *testing.T) {
	dir := t.TempDir()
	f := secretFiles(t, dir)
	db := filepath.Join(dir, "catalog.db")
	base := "agent_token_file = \"" + f["agent"] + "\"\n"
	cases := []struct {
		name, src string
		line      int
		want      []string
	}{
		{"missing catalog", base, 0, []string{`Missing required argument`, `"catalog" is required`}},
		{"relative catalog", "catalog = \"catalog.db\"\n" + base, 1, []string{"Relative catalog path", "absolute path"}},
		{"password in URL", base + "catalog = \"postgres://cg:hunter2-secret@db/cat\"\ncatalog_key_file = \"" + f["key"] + "\"\n", 2, []string{"Password in the catalog URL", "passfile"}},
		{"postgres without key", base + "catalog = \"postgres://cg@db/cat\"\n", 2, []string{"Missing catalog_key_file", "head -c 32"}},
		{"no agent token", "catalog = \"" + db + "\"\n", 0, []string{"Missing agent token", "agent_token_file"}},
		{"token file readable by others", "catalog = \"" + db + "\"\nagent_token_file = \"" + f["public"] + "\"\n", 2, []string{"chmod 600"}},
		{"token too short", "catalog = \"" + db + "\"\nagent_token_file = \"" + f["short"] + "\"\n", 2, []string{"at least 16 characters"}},
		{"token written in place of a file", "catalog = \"" + db + "\"\nagent_token_file = \"s3cr3t-token-in-the-config\"\n", 2, []string{"not an absolute path"}},
		{"plain HTTP off loopback", "catalog = \"" + db + "\"\n" + base + "listen = \"0.0.0.0:7430\"\n", 3, []string{"Plain HTTP on a non-loopback address", "tls"}},
		{"bad listen", "catalog = \"" + db + "\"\n" + base + "listen = \"7430\"\n", 3, []string{"Invalid listen address", "127.0.0.1:7430"}},
		{"bad duration", "catalog = \"" + db + "\"\n" + base + "leader_ttl = \"soon\"\n", 3, []string{"Invalid duration", "leader_ttl"}},
		{"tick too long", "catalog = \"" + db + "\"\n" + base + "leader_ttl = \"6s\"\ntick = \"3s\"\n", 4, []string{"Tick too long", "third of leader_ttl"}},
		{"max runs", "catalog = \"" + db + "\"\n" + base + "max_concurrent_runs = 0\n", 3, []string{"1 to 256"}},
		{"registration equals agent token", "catalog = \"" + db + "\"\n" + base + "registration_token_file = \"" + f["agent"] + "\"\n", 3, []string{"Registration token equals the agent token"}},
		{"cert without key", "catalog = \"" + db + "\"\n" + base + "client_cert_file = \"" + f["agent"] + "\"\n", 3, []string{"set client_cert_file and client_key_file together"}},
		{"unknown attribute", "catalog = \"" + db + "\"\n" + base + "agent_token = \"inline\"\n", 3, []string{"Unsupported argument"}},
		{"tls block without files", "catalog = \"" + db + "\"\n" + base + "tls {\n}\n", 3, []string{"cert_file"}},
		{"syntax error", "catalog = \n", 1, []string{"engine.hcl:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "engine.hcl")
			_, err := ParseConfig(path, []byte(tc.src))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig = %v; want a *ConfigError", err)
			}
			msg := err.Error()
			if tc.line > 0 && !strings.Contains(msg, path+":"+itoa(tc.line)+":") {
				t.Errorf("error does not name %s:%d:\n%s", path, tc.line, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			for _, secret := range []string{"hunter2-secret", "agent-token-0123456789abcdef", "s3cr3t-token-in-the-config"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error echoes a secret %q:\n%s", secret, msg)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
