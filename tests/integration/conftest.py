"""Integration tests talk to real services: a moto server on loopback (fixtures in local.pytest_aws)."""
