package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// Secrets given to a repository that must never reach Terraform state.
const (
	testS3Secret  = "S3-SECRET-must-not-reach-state"
	testS3Session = "S3-SESSION-must-not-reach-state"
)

func testAccRepositoryOnlyConfig(catalogPath, repoDir, extra string) string {
	return fmt.Sprintf(`
provider "clusterguard" {
  catalog     = %q
  agent_token = "0123456789abcdef0123"
}

resource "clusterguard_repository" "test" {
  name              = "repo"
  url               = %q
  password          = "correct horse battery staple"
  access_key_id     = "AKIDEXAMPLE"
  secret_access_key = %q
  session_token     = %q
%s
}
`, catalogPath, repoDir, testS3Secret, testS3Session, extra)
}

// Without create = true a location with no repository is an error that says
// so (a mistyped url never becomes a new repository); with it the
// repository is initialised. The S3 secret and session token are
// write-only: they are not in state.
func TestAccRepository_createIsExplicitAndSecretsStayOutOfState(t *testing.T) {
	testAccPreCheck(t)
	dir := t.TempDir()
	catalogPath := filepath.Join(dir, "catalog.db")
	repoDir := filepath.Join(dir, "repo")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      testAccRepositoryOnlyConfig(catalogPath, repoDir, ""),
				ExpectError: regexp.MustCompile(`no repository at[\s\S]*set create = true`),
			},
			{
				PreConfig: func() {
					if _, err := os.Stat(repoDir); !os.IsNotExist(err) {
						t.Fatalf("attach-only apply created %s (%v)", repoDir, err)
					}
				},
				Config: testAccRepositoryOnlyConfig(catalogPath, repoDir, "  create = true"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(repoAddr, "created", "true"),
					resource.TestCheckNoResourceAttr(repoAddr, "secret_access_key"),
					resource.TestCheckNoResourceAttr(repoAddr, "session_token"),
					resource.TestCheckNoResourceAttr(repoAddr, "password"),
					noSecretInState(testS3Secret, testS3Session),
					noSecretInFiles(catalogPath+"*", testS3Secret, testS3Session, "correct horse battery staple"),
				),
			},
			{
				// A changed write-only secret is applied by bumping
				// credentials_version, and still stays out of state.
				Config: testAccRepositoryOnlyConfig(catalogPath, repoDir, "  create = true\n  credentials_version = 1"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(repoAddr, "credentials_version", "1"),
					resource.TestCheckNoResourceAttr(repoAddr, "secret_access_key"),
					noSecretInState(testS3Secret, testS3Session),
				),
			},
		},
	})
}

// noSecretInState fails when any attribute of any resource holds one of
// the secrets.
func noSecretInState(secrets ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		for addr, rs := range s.RootModule().Resources {
			for k, v := range rs.Primary.Attributes {
				for _, secret := range secrets {
					if v == secret {
						return fmt.Errorf("%s.%s holds a secret in state", addr, k)
					}
				}
			}
		}
		return nil
	}
}

// noSecretInFiles fails when a file matching glob (the catalog, its WAL)
// holds one of the secrets.
func noSecretInFiles(glob string, secrets ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			return fmt.Errorf("no files match %s (%v)", glob, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			for _, secret := range secrets {
				if strings.Contains(string(b), secret) {
					return fmt.Errorf("%s holds a secret in plaintext", f)
				}
			}
		}
		return nil
	}
}

// An unreachable PostgreSQL catalog is reported as a server to check, not
// as a directory that must be writable.
func TestCatalogOpenDiagnosticForPostgres(t *testing.T) {
	t.Setenv(envCatalogKey, strings.Repeat("ab", 32))
	where := "postgres://cg@127.0.0.1:1/cat?sslmode=disable&connect_timeout=2"
	_, err := openCatalog(context.Background(), where)
	if err == nil {
		t.Fatal("opened a catalog on a closed port")
	}
	d := diagCatalogOpen(path.Root("catalog"), where, err)
	if !strings.Contains(d.Detail(), "PostgreSQL server is running") || strings.Contains(d.Detail(), "directory is writable") {
		t.Fatalf("diagnostic for an unreachable PostgreSQL catalog: %s", d.Detail())
	}
	t.Setenv(envCatalogKey, "")
	t.Setenv(envCatalogKeyFile, "")
	if _, err := openCatalog(context.Background(), where); err == nil || !strings.Contains(err.Error(), envCatalogKey) {
		t.Fatalf("PostgreSQL catalog without a key: %v, want an error naming %s", err, envCatalogKey)
	}
}
