package agent

// ReadSecretFile reads a secret (token, key) the way the agent reads its
// own: a regular file, not a symlink, owned by root or this process's user,
// readable by no one else, at most 64 KiB. The engine daemon uses it for
// its token files so both processes hold secrets to the same rules; attr
// names the config attribute, for messages (which never hold the secret).
func ReadSecretFile(path, attr string) ([]byte, error) { return readSecretFile(path, attr) }
