"""The control plane's logic: use cases (runs, registry, config, schedule, notifications, Slack approvals)
over adapters in `control_plane.aws`, the only modules that import boto3."""
