# Restore the database in place, on the node where it runs, from its newest
# recovery point; check every chunk before anything is written.
resource "clusterguard_restore_job" "db" {
  cluster    = clusterguard_cluster.prod.name
  repository = clusterguard_repository.nfs.name
  workloads  = [{ name = "db-orders" }]
  verify     = "full"
  triggers   = { ticket = "INC-4711" }
}

# Restore a web server and its application server, as they were before the
# bad release, together on the node with the most free resources (E16);
# copies running elsewhere move there (migrate).
resource "clusterguard_restore_job" "shop" {
  cluster    = clusterguard_cluster.prod.name
  repository = clusterguard_repository.nfs.name
  colocate   = true
  workloads = [
    { name = "shop-web", before = "2026-11-20T08:00:00Z", target = "most_free_resources", on_conflict = "migrate" },
    { name = "shop-app", before = "2026-11-20T08:00:00Z", on_conflict = "migrate" },
  ]
}

# A previous version of one file, written next to the live one for
# comparison; the running workload is not touched (M9).
resource "clusterguard_restore_job" "config_file" {
  cluster    = clusterguard_cluster.prod.name
  repository = clusterguard_repository.nfs.name
  workloads = [{
    name           = "shop-web"
    recovery_point = data.clusterguard_file_versions.web_config.versions[1].recovery_point
    files          = ["apps/shop-web/config.yml"]
    destination    = { node = "node-2", path = "restored/2026-11-20" }
  }]
}

output "restore_preview" {
  # Shown by terraform plan before anything happens (T3).
  value = clusterguard_restore_job.shop.plan
}
