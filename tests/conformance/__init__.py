"""docs/contract.md, checked from the outside against every framework's service.

Each test talks to a real gunicorn started from the generated Procfile and
asserts on what it answered, logged, exported and exposed. There is one
module per section of the contract.
"""
