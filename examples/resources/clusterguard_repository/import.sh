# A repository is imported by its name; it must be registered in the provider's catalog.
# Its password stays in the configuration (it is write-only).
terraform import clusterguard_repository.nfs nfs
