# A second repository with its own password, e.g. a bucket at another site.
resource "clusterguard_repository" "offsite" {
  name       = "offsite"
  url        = "s3://backups-offsite/prod"
  endpoint   = "https://s3.example.net"
  path_style = true
  password   = var.offsite_password
  create     = true
}

# Copy the group's recovery points after each run; keep the copies longer
# than the primary keeps its own.
resource "clusterguard_copy_policy" "offsite" {
  group      = clusterguard_protection_group.db.name
  repository = clusterguard_repository.offsite.name
  triggers   = { run = clusterguard_backup_run.nightly.id }
  retention = {
    keep_daily   = 14
    keep_monthly = 12
  }
}
