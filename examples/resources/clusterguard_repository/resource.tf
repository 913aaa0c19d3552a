# A repository in a directory every node can reach (here: NFS).
# create = true initialises it when there is none yet; without it, apply
# only attaches to an existing repository (a mistyped url is an error).
# Every node's agent config needs a block of the same name, e.g.
#   repository "nfs" {
#     url           = "/mnt/backup/clusterguard"
#     password_file = "/etc/clusterguard/nfs.password"
#   }
# agents open no repository their config does not define.
resource "clusterguard_repository" "nfs" {
  name     = "nfs"
  url      = "/mnt/backup/clusterguard"
  password = var.repository_password # write-only: never stored in state; at least 12 characters
  create   = true
}

# An existing repository in an S3-compatible bucket (attached, not created).
# The secret key is write-only like the password: bump credentials_version
# after changing it.
resource "clusterguard_repository" "offsite" {
  name              = "offsite"
  url               = "s3://clusterguard-backups/prod"
  endpoint          = "https://s3.eu-central-1.amazonaws.com"
  region            = "eu-central-1"
  access_key_id     = var.s3_access_key_id
  secret_access_key = var.s3_secret_access_key
  password          = var.repository_password

  # Bump after changing the password: the key is re-wrapped, data is not re-encrypted.
  password_version    = 1
  credentials_version = 1
}

variable "repository_password" {
  type      = string
  sensitive = true
}

variable "s3_access_key_id" {
  type      = string
  sensitive = true
}

variable "s3_secret_access_key" {
  type      = string
  sensitive = true
}
