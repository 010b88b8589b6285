"""Reading a Prometheus exposition the way Prometheus' client parser does."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def families(text: str, openmetrics: bool = False) -> dict[str, Metric]:
    parse = parse_openmetrics if openmetrics else parse_text
    return {family.name: family for family in parse(text)}


def samples(text: str, name: str, openmetrics: bool = False) -> list[Sample]:
    """The samples named ``name``. The parser reads only their lines and the
    comments: a service's exposition holds thousands of bucket lines, and a
    test reading one count after each request spent most of its time parsing
    them. Whether the whole exposition parses is for the tests that lint it."""
    lines = [
        line
        for line in text.splitlines(keepends=True)
        if line.startswith("#")
        or (line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "))
    ]
    found = []
    for family in (parse_openmetrics if openmetrics else parse_text)("".join(lines)):
        found += [sample for sample in family.samples if sample.name == name]
    return found


def total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``; 0 when none
    matches (``value`` fails instead)."""
    return sum(
        sample.value
        for sample in samples(text, name)
        if all(sample.labels.get(key) == value for key, value in labels.items())
    )


def value(text: str, name: str, **labels: str) -> float:
    """Like ``total``, but a series that is not in the exposition fails the test
    instead of reading as 0."""
    matched = [
        sample
        for sample in samples(text, name)
        if all(sample.labels.get(key) == wanted for key, wanted in labels.items())
    ]
    assert matched, f"no series {name}{labels or ''} in the exposition"
    return sum(sample.value for sample in matched)
