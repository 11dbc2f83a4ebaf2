from django.apps import AppConfig

from apps.core.partitions import PartitionedLog


class RetentionConfig(AppConfig):
    name = "apps.retention"
    label = "retention"
    verbose_name = "Retention and disposal"
    partitioned_logs = (PartitionedLog("DisposalLogEntry", "disposed_at"),)
