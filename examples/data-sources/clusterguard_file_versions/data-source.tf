# Every backed-up version of a configuration file, newest first.
data "clusterguard_file_versions" "web_config" {
  repository = clusterguard_repository.nfs.name
  workload   = "shop-web"
  path       = "apps/shop-web/config.yml"
}

output "config_versions" {
  value = [for v in data.clusterguard_file_versions.web_config.versions : "${v.created_at} ${v.size} bytes${v.unchanged ? " (unchanged)" : ""}"]
}
