"""Dagster definitions (resources, jobs, schedules, partitions) and the `b24wh` command line."""
