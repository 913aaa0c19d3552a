# A protection group is imported by its name.
terraform import clusterguard_protection_group.databases databases
