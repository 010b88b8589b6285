"""The service's API: one module per resource, each with its router."""
