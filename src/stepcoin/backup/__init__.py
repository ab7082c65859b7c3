"""Backups with PostgreSQL's own tools: WAL archiving, pg_basebackup (full and, on 17+,
incremental), pg_combinebackup and pg_verifybackup; a catalogue per repository; restores,
retention, copies to other repositories and a restore drill."""
