# A restore job is imported by its operation id.
terraform import clusterguard_restore_job.db restore-20261122T101500Z-1a2b3c4d
