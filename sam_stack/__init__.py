"""template.yaml and a stack built from it, wherever it runs: reading the template, calling the stack's API, running
the stack's image's entry points and writing its feature group's offline store. The local stack (local/), rollout/,
bench/ and the tests use it; it knows nothing of the local stack's names."""
