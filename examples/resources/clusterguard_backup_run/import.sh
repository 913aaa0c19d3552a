# A backup run is imported by its run id (see the catalog or a previous state).
terraform import clusterguard_backup_run.pre_upgrade run-20261122T101500Z-1a2b3c4d
