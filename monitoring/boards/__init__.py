"""The kit's dashboards, one module each."""
