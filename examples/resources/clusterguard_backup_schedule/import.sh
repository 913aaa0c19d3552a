# A backup schedule is imported by its name.
terraform import clusterguard_backup_schedule.nightly databases-nightly
