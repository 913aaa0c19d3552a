package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

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
