package exec

import (
	"fmt"
	"os"
	"syscall"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/runas"
)

// defaultPath is the PATH commands get unless the config's env sets one:
// the system directories, not whatever the agent was started with.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// commandUser resolves the user the commands run as, hands the commands'
// work directory to it, and checks that it can reach that directory (its
// working directory and CLUSTERGUARD_STATE_DIR).
func commandUser(cfg Config) (runas.User, *syscall.Credential, error) {
	var (
		u   runas.User
		err error
	)
	if cfg.User == "" {
		u, err = runas.Current()
	} else {
		u, err = runas.Lookup(cfg.User)
	}
	if err != nil {
		return u, nil, fmt.Errorf("exec driver for workload %q: %w; create the user or change user in the exec block", cfg.Workload, err)
	}
	cred, err := u.Credential()
	if err != nil {
		return u, nil, fmt.Errorf("exec driver for workload %q: %w", cfg.Workload, err)
	}
	if cred == nil {
		return u, nil, nil
	}
	if err := userDir(workDir(cfg), cred); err != nil {
		return u, nil, fmt.Errorf("exec driver for workload %q: hand the commands' directory to user %s: %w", cfg.Workload, u.Name, err)
	}
	if err := u.Can(workDir(cfg), runas.Read|runas.Write|runas.Execute); err != nil {
		return u, nil, fmt.Errorf("exec driver for workload %q: commands run as %s, who cannot use the workload's state directory: %w; let %s search the directories above it (e.g. chmod o+x, or a group) or set a state_dir it can reach", cfg.Workload, u.Name, err, u.Name)
	}
	return u, cred, nil
}

// baseEnv is the environment every command starts from: enough to find
// programs and the user's files, nothing of the agent's own.
func baseEnv(u runas.User) []string {
	lang := os.Getenv("LANG")
	if lang == "" {
		lang = "C.UTF-8"
	}
	return []string{
		"PATH=" + defaultPath,
		"LANG=" + lang,
		"HOME=" + u.Home,
		"USER=" + u.Name,
		"LOGNAME=" + u.Name,
	}
}
