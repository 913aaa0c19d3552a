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
