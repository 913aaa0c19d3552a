package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/agenttest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

const offsitePassword = "offsite password for copies"

// Offsite copies through Terraform, with real agents: a backup run, a copy
// policy to a second repository (other password, so every chunk is
// re-encrypted), then the primary repository directory is deleted and a
// restore job from the copy brings the workload's data back byte-exact.
func TestAccCopyPolicy_restoreFromCopyAfterPrimaryLost(t *testing.T) {
	testAccPreCheck(t)
	primary := testRepository(t)
	offsite := agenttest.Repository{Name: "offsite", URL: filepath.Join(t.TempDir(), "offsite"), Password: offsitePassword}
	c := agenttest.Start(t, agenttest.Options{Nodes: 2, Workloads: []string{"web"}, Repositories: []agenttest.Repository{primary, offsite}})
	e := &testEnv{cluster: c, catalog: filepath.Join(t.TempDir(), "catalog.db"), repoDir: primary.URL}
	e.writeData(t, "web", "marker", "v1")
	e.writeData(t, "web", "big.bin", randomText(2<<20))
	want := e.readVolume(t, "apps/web/big.bin")
	e.cluster.StartWorkload(t, "node-1", "web")

	backup := testAccBackupConfig(e, primary.URL, `  workloads = ["web"]`, `  triggers = { n = "1" }`)
	offsiteRepo := fmt.Sprintf(`
resource "clusterguard_repository" "offsite" {
  name     = "offsite"
  url      = %q
  password = %q
  create   = true
}
`, offsite.URL, offsitePassword)
	copyPolicy := `
resource "clusterguard_copy_policy" "offsite" {
  group      = clusterguard_protection_group.test.name
  repository = clusterguard_repository.offsite.name
  triggers   = { run = clusterguard_backup_run.test.id }
  retention  = { keep_last = 3 }
}
`
	restore := `
resource "clusterguard_restore_job" "test" {
  cluster    = clusterguard_cluster.test.name
  repository = clusterguard_repository.offsite.name
  workloads  = [{ name = "web" }]
  verify     = "full"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: backup + offsiteRepo + copyPolicy,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("clusterguard_copy_policy.offsite", tfjsonpath.New("copied"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("clusterguard_copy_policy.offsite", tfjsonpath.New("copies"), knownvalue.MapSizeExact(1)),
				},
				Check: func(*terraform.State) error {
					// Disaster: the workload's data is damaged and the
					// primary repository is gone.
					e.writeData(t, "web", "marker", "v2-ransomed")
					e.writeData(t, "web", "big.bin", "ransomed")
					return os.RemoveAll(primary.URL)
				},
			},
			{
				Config: backup + offsiteRepo + copyPolicy + restore,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("clusterguard_restore_job.test", tfjsonpath.New("status"), knownvalue.StringExact("succeeded")),
				},
				Check: func(*terraform.State) error {
					if got := e.readVolume(t, "apps/web/marker"); got != "v1" {
						return fmt.Errorf("apps/web/marker = %q after restoring from the copy, want v1", got)
					}
					if got := e.readVolume(t, "apps/web/big.bin"); got != want {
						return fmt.Errorf("apps/web/big.bin differs after restoring from the copy (%d bytes, want %d)", len(got), len(want))
					}
					return nil
				},
			},
		},
	})

}

// The offsite copy from a directory repository to MinIO through Terraform:
// the copy lands in the bucket, verified, and a second apply with the same
// run copies nothing new.
func TestAccCopyPolicy_toMinIO(t *testing.T) {
	e := newTestEnv(t, 2, "web")
	e.writeData(t, "web", "big.bin", randomText(1<<20))
	e.cluster.StartWorkload(t, "node-1", "web")
	srv := minio.Start(t)
	backup := testAccBackupConfig(e, e.repoDir, `  workloads = ["web"]`, `  triggers = { n = "1" }`)
	offsiteRepo := fmt.Sprintf(`
resource "clusterguard_repository" "offsite" {
  name              = "offsite"
  url               = "s3://offsite-copies/prod"
  endpoint          = %q
  access_key_id     = %q
  secret_access_key = %q
  path_style        = true
  insecure          = true
  password          = %q
  create            = true
}

resource "clusterguard_copy_policy" "offsite" {
  group      = clusterguard_protection_group.test.name
  repository = clusterguard_repository.offsite.name
  triggers   = { run = clusterguard_backup_run.test.id }
}
`, srv.Endpoint, srv.AccessKey, srv.SecretKey, offsitePassword)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: backup + offsiteRepo,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("clusterguard_copy_policy.offsite", tfjsonpath.New("copied"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("clusterguard_copy_policy.offsite", tfjsonpath.New("copies"), knownvalue.MapSizeExact(1)),
				},
				Check: func(*terraform.State) error {
					n := 0
					for obj := range srv.Client().ListObjects(context.Background(), "offsite-copies", miniogo.ListObjectsOptions{Prefix: "prod/snapshots/", Recursive: true}) {
						if obj.Err != nil {
							return obj.Err
						}
						n++
					}
					if n != 1 {
						return fmt.Errorf("%d snapshots in the bucket, want the one copy", n)
					}
					return nil
				},
			},
		},
	})
}
