package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A Secret prints as "(redacted)" under every fmt verb, not only %s and %v.
func TestSecretIsRedactedUnderEveryVerb(t *testing.T) {
	s := Secret("hunter2")
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%T-%[1]d"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74657232") || strings.Contains(strings.ToLower(out), "68756e74657232") || strings.Contains(out, "104") {
			t.Errorf("%s prints %q", verb, out)
		}
	}
	structVerb := "%d"
	if got := fmt.Sprintf(structVerb, struct{ S Secret }{s}); strings.Contains(got, "104") || strings.Contains(got, "hunter2") {
		t.Errorf("%%d of a struct holding a Secret prints %q", got)
	}
}

// parseWith parses a minimal config with token_file = tokenFile and the extra blocks.
func parseWith(t *testing.T, e agentEnv, tokenFile, extra string) error {
	t.Helper()
	_, err := ParseConfig("agent.hcl", []byte(fmt.Sprintf("node = \"n1\"\nlisten = \"127.0.0.1:0\"\nshared_volume = %q\nstate_dir = %q\ntoken_file = %q\n%s",
		e.volume, e.dir, tokenFile, extra)))
	return err
}

// A relative *_file value may be the secret itself, written in the wrong
// attribute: the error must not repeat it.
func TestRelativeSecretFileValueIsNotRepeated(t *testing.T) {
	e := newAgentEnv(t)
	const secret = "correct-horse-battery-staple-42"
	for name, err := range map[string]error{
		"password_file": parseWith(t, e, e.tokenFile, fmt.Sprintf("repository \"r\" {\n  url = \"/srv/repo\"\n  password_file = %q\n}\n", secret)),
		"secret_access_key_file": parseWith(t, e, e.tokenFile, fmt.Sprintf("repository \"r\" {\n  url = \"s3://b/p\"\n  access_key_id = \"AK\"\n  secret_access_key_file = %q\n  password_file = %q\n}\n",
			secret, e.tokenFile)),
		"token_file": parseWith(t, e, secret, ""),
	} {
		var cerr *ConfigError
		if !errors.As(err, &cerr) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want a config error naming %s", name, err, name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error repeats the value: %v", name, err)
		}
	}
}

// Secret files are opened once without following symlinks, and the open
// file is checked: a symlink, a FIFO (whose read would block the agent's
// start forever), a file owned by another user, or one others can read is
// refused, for repository secrets and bearer tokens alike.
func TestSecretFilesAreCheckedOnTheOpenFile(t *testing.T) {
	e := newAgentEnv(t)
	good := filepath.Join(e.dir, "good.pw")
	writeFile(t, good, "pw-"+testToken+"\n")
	link := filepath.Join(e.dir, "link.pw")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(e.dir, "fifo.pw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	readable := filepath.Join(e.dir, "readable.pw")
	writeFile(t, readable, "pw-"+testToken+"\n")
	if err := os.Chmod(readable, 0o604); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{"symlink": link, "fifo": fifo, "readable": readable}
	if os.Geteuid() == 0 {
		foreign := filepath.Join(e.dir, "foreign.pw")
		writeFile(t, foreign, "pw-"+testToken+"\n")
		if err := os.Chown(foreign, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		cases["other owner"] = foreign
	}
	want := map[string]string{"symlink": "symbolic link", "fifo": "not a regular file", "readable": "mode 0604", "other owner": "owned by uid 4242"}
	for name, path := range cases {
		block := fmt.Sprintf("repository \"r\" {\n  url = \"/srv/repo\"\n  password_file = %q\n}\n", path)
		for attr, err := range map[string]error{"password_file": parseWith(t, e, e.tokenFile, block), "token_file": parseWith(t, e, path, "")} {
			var cerr *ConfigError
			if !errors.As(err, &cerr) || !strings.Contains(err.Error(), want[name]) {
				t.Errorf("%s as %s: %v, want a config error containing %q", name, attr, err, want[name])
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("%s as %s: the error shows the secret: %v", name, attr, err)
			}
		}
	}
	block := fmt.Sprintf("repository \"r\" {\n  url = \"/srv/repo\"\n  password_file = %q\n}\n", good)
	if err := parseWith(t, e, good, block); err != nil {
		t.Fatalf("a 0600 regular file owned by the agent's user: %v", err)
	}
}
