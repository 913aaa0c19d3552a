# Quickstart: register the local demo cluster started by `make demo` and
# print its workload digest. `make demo` writes terraform.tfvars here.
terraform {
  required_providers {
    clusterguard = {
      source = "registry.terraform.io/clusterguard/clusterguard"
    }
  }
}

variable "catalog" {
  description = "Path of the engine's catalog file."
  type        = string
}

variable "shared_volume" {
  description = "Shared volume directory of the demo cluster."
  type        = string
}

variable "nodes" {
  description = "Node name => agent endpoint."
  type        = map(string)
}

provider "clusterguard" {
  catalog = var.catalog
  # agent_token comes from CLUSTERGUARD_AGENT_TOKEN.
}

resource "clusterguard_cluster" "demo" {
  name          = "demo"
  shared_volume = var.shared_volume
  nodes         = var.nodes
  join_order    = "parallel"
  master_policy = "most_free_resources"
}

variable "repository" {
  description = "Directory of the demo's backup repository."
  type        = string
}

variable "repository_password" {
  description = "Password of the demo's backup repository."
  type        = string
  sensitive   = true
  ephemeral   = true
}

# Agents open only the repositories their config defines: make demo writes
# a repository "demo" block with this directory and password into each one.
resource "clusterguard_repository" "demo" {
  name     = "demo"
  url      = var.repository
  password = var.repository_password
  create   = true # initialise it on the first apply
}

# Every running workload, quiesced (flushed) for its copy, node by node with
# the master node last.
resource "clusterguard_protection_group" "all" {
  name       = "all"
  cluster    = clusterguard_cluster.demo.name
  repository = clusterguard_repository.demo.name
  selector   = { name_regex = ".*" }
  node_order = "master_last"
  retention  = { keep_last = 5 }
  rpo        = "1h"
}

# Backups every minute, run by the engine daemon `make demo` starts
# (terraform-provider-clusterguard engine serve), tagged and kept apart
# from the group's own retention.
resource "clusterguard_backup_schedule" "every_minute" {
  name             = "every-minute"
  protection_group = clusterguard_protection_group.all.name
  cron             = "* * * * *"
  tags             = ["scheduled"]
  retention        = { keep_last = 3 }
}

# One federated backup; change the trigger to take another.
resource "clusterguard_backup_run" "first" {
  group    = clusterguard_protection_group.all.name
  triggers = { n = "1" }
}

data "clusterguard_workload_digest" "demo" {
  cluster = clusterguard_cluster.demo.name
}

output "digest" {
  description = "Every workload of the demo cluster: node and state."
  value = {
    for w in data.clusterguard_workload_digest.demo.workloads :
    w.name => { node = w.node, state = w.state, driver = w.driver, paths = w.paths }
  }
}

output "node_status" {
  description = "What the last refresh saw of each node."
  value       = clusterguard_cluster.demo.node_status
}

output "backup" {
  description = "The federated backup run: where each workload was backed up."
  value = {
    status = clusterguard_backup_run.first.status
    order  = clusterguard_backup_run.first.node_order
    workloads = {
      for name, w in clusterguard_backup_run.first.workloads :
      name => { node = w.node, recovery_point = w.recovery_point, stun_ms = w.stun_ms }
    }
  }
}
