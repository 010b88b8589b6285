"""The kit's Grafana dashboards and Prometheus rules, as code.

``python -m monitoring`` writes ``grafana/dashboards/*.json``,
``grafana/rules/{recording,alerts}.yml`` and the panel table of the README
from these modules; the generated files are committed, and the kit's tests
fail when they are stale. Everything here reads only the metrics of
docs/contract.md, section 7.
"""
