"""`scratch-detector`: the control plane's REST API from a terminal, signed as the user (SigV4, execute-api)."""
