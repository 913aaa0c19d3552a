# A cluster is imported by its name; it must already be registered in the provider's catalog.
terraform import clusterguard_cluster.prod prod
