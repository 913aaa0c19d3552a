package agent

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// RepositoryConfig is one repository block: a repository this agent may
// open. Requests name it; its URL and secrets come only from here (H1), so
// a caller holding the token cannot point the agent at another repository.
type RepositoryConfig struct {
	Name      string
	URL       string // directory path or s3://bucket/prefix
	Endpoint  string
	Region    string
	PathStyle bool
	Insecure  bool // plain http to the S3 endpoint
	// AccessKeyID is not a secret on its own; the files below hold the secrets.
	AccessKeyID     string
	Password        Secret // contents of PasswordFile
	SecretAccessKey Secret // contents of SecretAccessKeyFile
	SessionToken    Secret // contents of SessionTokenFile

	PasswordFile        string
	SecretAccessKeyFile string
	SessionTokenFile    string
	// Range is where the block is, for messages.
	Range hcl.Range
}

// location returns the backend settings with the secrets revealed; never log it.
func (r RepositoryConfig) location() location.Config {
	return location.Config{
		URL: r.URL, Endpoint: r.Endpoint, Region: r.Region, AccessKeyID: r.AccessKeyID,
		SecretAccessKey: r.SecretAccessKey.Reveal(), SessionToken: r.SessionToken.Reveal(),
		PathStyle: r.PathStyle, Insecure: r.Insecure,
	}
}

// Repository returns the repository block named name.
func (c *Config) Repository(name string) (RepositoryConfig, bool) {
	for _, r := range c.Repositories {
		if r.Name == name {
			return r, true
		}
	}
	return RepositoryConfig{}, false
}

// RepositoryNames returns the names of the repository blocks, sorted.
func (c *Config) RepositoryNames() []string {
	names := make([]string, 0, len(c.Repositories))
	for _, r := range c.Repositories {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	return names
}

var repositorySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "url", Required: true},
		{Name: "password_file", Required: true},
		{Name: "endpoint"},
		{Name: "region"},
		{Name: "access_key_id"},
		{Name: "secret_access_key_file"},
		{Name: "session_token_file"},
		{Name: "path_style"},
		{Name: "insecure"},
	},
}

// parseRepository reads one repository block. The repository is not opened
// here: it may not exist yet (the engine initialises it when Terraform
// registers it), and the agent must start without reaching the bucket.
func (p *configParser) parseRepository(block *hcl.Block) {
	name := block.Labels[0]
	if first, dup := p.cfg.Repository(name); dup {
		p.errorAt(block.LabelRanges[0], "Duplicate repository",
			fmt.Sprintf("repository %q is already defined at %s:%d; give each repository block a unique name", name, first.Range.Filename, first.Range.Start.Line))
		return
	}
	if !namePattern.MatchString(name) {
		p.errorAt(block.LabelRanges[0], "Invalid repository name",
			fmt.Sprintf("%q is not a usable repository name; use the name of the clusterguard_repository resource: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name))
	}
	content, diags := block.Body.Content(repositorySchema)
	p.diags = append(p.diags, diags...)
	attrs := content.Attributes
	r := RepositoryConfig{Name: name, Range: block.DefRange}
	for _, f := range []struct {
		name   string
		target *string
	}{{"url", &r.URL}, {"endpoint", &r.Endpoint}, {"region", &r.Region}, {"access_key_id", &r.AccessKeyID}} {
		if a := attrs[f.name]; a != nil {
			p.decode(a.Expr, f.target)
		}
	}
	for _, f := range []struct {
		name   string
		target *bool
	}{{"path_style", &r.PathStyle}, {"insecure", &r.Insecure}} {
		if a := attrs[f.name]; a != nil {
			p.decode(a.Expr, f.target)
		}
	}
	if a := attrs["password_file"]; a != nil && p.decode(a.Expr, &r.PasswordFile) {
		r.Password, _ = p.loadSecretFile(a, r.PasswordFile, "password_file", "the password that unlocks the repository (the clusterguard_repository's password)")
	}
	if a := attrs["secret_access_key_file"]; a != nil && p.decode(a.Expr, &r.SecretAccessKeyFile) {
		r.SecretAccessKey, _ = p.loadSecretFile(a, r.SecretAccessKeyFile, "secret_access_key_file", "the S3 secret access key")
	}
	if a := attrs["session_token_file"]; a != nil && p.decode(a.Expr, &r.SessionTokenFile) {
		r.SessionToken, _ = p.loadSecretFile(a, r.SessionTokenFile, "session_token_file", "the S3 session token")
	}
	if a := attrs["url"]; a != nil && r.URL != "" {
		if err := r.location().Validate(); err != nil {
			p.errorAt(a.Expr.Range(), "Invalid repository", fmt.Sprintf("repository %q: %v", name, err))
		}
	}
	p.cfg.Repositories = append(p.cfg.Repositories, r)
}

// loadSecretFile reads a secret from an absolute file that only its owner
// can read: a secret others can read is no secret, so that is an error.
// Trailing newlines are dropped (echo and editors add them).
func (p *configParser) loadSecretFile(a *hcl.Attribute, path, attr, what string) (Secret, bool) {
	rng := a.Expr.Range()
	if !filepath.IsAbs(path) {
		// The value is not repeated: someone may have written the secret itself here.
		p.errorAt(rng, "Invalid "+attr, fmt.Sprintf("%s is not an absolute path; give the absolute path of the file holding %s", attr, what))
		return "", false
	}
	raw, err := readSecretFile(path, attr)
	if err != nil {
		var se *secretFileError
		if errors.As(err, &se) {
			p.errorAt(rng, se.Title, fmt.Sprintf("%v (%s: %s)", err, attr, what))
		} else {
			p.errorAt(rng, "Cannot read "+attr, err.Error())
		}
		return "", false
	}
	v := strings.TrimRight(string(raw), "\r\n")
	if v == "" {
		p.errorAt(rng, "Empty "+attr, fmt.Sprintf("%s is empty; write %s into it", path, what))
		return "", false
	}
	return Secret(v), true
}

// unknownRepositoryMessage says which repositories the agent has and what to add.
func (c *Config) unknownRepositoryMessage(name string) string {
	have := "none"
	if names := c.RepositoryNames(); len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	if name == "" {
		return fmt.Sprintf("the request names no repository; node %s has repository blocks: %s", c.Node, have)
	}
	// The config's path is not named: any caller holding a token reads this.
	return fmt.Sprintf("node %s has no repository %q (its agent config defines: %s); add `repository %q { url = \"...\", password_file = \"...\" }` with the clusterguard_repository's url and password to the node's agent config and restart the agent",
		c.Node, name, have, name)
}
