"""Retention and archival (issue 19, item 2; docs/retention.md): the scheduled pruning of each
domain's tables and the archive of old step_records partitions to the backup repository."""
