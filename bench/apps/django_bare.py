"""The bare Django baseline: the generated service's endpoints, no instrumentation."""

from bench_django import build

app = build()
