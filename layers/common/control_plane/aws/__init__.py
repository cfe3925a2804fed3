"""Adapters: the only modules that talk to AWS (or Slack). Each wraps one client behind a small interface."""
