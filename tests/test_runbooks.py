"""The runbooks: every alert links a section of the project's docs/runbooks.md
that exists, and every section names only boards, panels and queries that do.

The kit's copy (docs/runbooks.md, for the default answers) is read as a
project's would be; a render proves the hook writes each project's own.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import Environment

from kit import dashboards as kit
from kit.render import FRAMEWORKS, KIT_ROOT, render
from monitoring import runbooks
from monitoring.catalogue import metrics
from monitoring.project import EXAMPLE, runbook_text, service
from monitoring.rules import alert_names, alerts_file, recording_groups

RUNBOOKS = KIT_ROOT / "docs" / "runbooks.md"
ALERTS = KIT_ROOT / "grafana" / "rules" / "alerts.yml"
BOARDS = {board["uid"]: board for board in kit.load().values()}
# A board link, then the panels of that board in italics.
LOOK = re.compile(r"^- \[(?P<title>[^\]]+)\]\((?P<url>[^)\s]+)\): (?P<panels>.+)$")
ITALIC = re.compile(r"(?<![*\w])\*(?!\*)([^*\n]+?)\*(?![*\w])")
PROMQL = re.compile(r"^```promql\n(.*?)\n```$", re.M | re.S)


def alerts(path: Path = ALERTS) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading (GitLab's and MkDocs' agree on these):
    lower case, punctuation dropped, spaces as hyphens."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def sections(markdown: str) -> dict[str, str]:
    """Each heading's anchor and its text, outside code blocks."""
    prose = re.sub(r"^```.*?^```$", "", markdown, flags=re.M | re.S)
    return {heading_anchor(m[1]): m[1] for m in re.finditer(r"^#{1,6} (.+)$", prose, flags=re.M)}


def broken_links(rules: list[dict[str, Any]], markdown: str, base: str) -> list[str]:
    """Runbook links (annotations, and the file's own links) that lead nowhere."""
    found = sections(markdown)
    broken = []
    for rule in rules:
        url = rule["annotations"].get("runbook_url", "")
        page, _, fragment = url.partition("#")
        if page != base or found.get(fragment) != rule["alert"]:
            broken.append(f"{rule['alert']}: {url or 'no runbook_url'}")
    for fragment in re.findall(r"\]\(#([^)]+)\)", markdown):
        if fragment not in found:
            broken.append(f"link #{fragment}")
    return broken


def unknown_panels(markdown: str) -> list[str]:
    """Boards and panels the runbooks name that no dashboard has."""
    titles = {kit_panel["title"] for board in BOARDS.values() for kit_panel in kit.panels(board)}
    unknown = []
    for line in markdown.splitlines():
        look = LOOK.match(line)
        if look is None:
            continue
        uid = re.search(r"/d/([\w-]+)\?", look["url"])
        board = BOARDS.get(uid[1]) if uid else None
        if board is None or board["title"] != look["title"]:
            unknown.append(f"board {look['title']} ({look['url']})")
            continue
        on_board = {panel["title"] for panel in kit.panels(board)}
        unknown += [
            f"{board['title']} / {name}"
            for name in ITALIC.findall(look["panels"])
            if name not in on_board
        ]
    prose = PROMQL.sub("", markdown)
    unknown += [f"panel {name}" for name in ITALIC.findall(prose) if name not in titles]
    return unknown


def test_every_alert_has_a_runbook_url_that_leads_to_its_section() -> None:
    rules = alerts()
    base = runbooks.runbooks_url(EXAMPLE)
    assert base == "https://github.com/your-org/example-service/blob/main/docs/runbooks.md"
    markdown = RUNBOOKS.read_text()
    assert not broken_links(rules, markdown, base)
    # One section per alert, in the rules' order.
    headings = re.findall(r"^## (.+)$", PROMQL.sub("", markdown), flags=re.M)
    assert headings == [rule["alert"] for rule in rules]


@pytest.mark.parametrize("fault", ["no runbook_url", "renamed section", "other page", "dead link"])
def test_a_runbook_link_that_leads_nowhere_is_caught(fault: str) -> None:
    rules = alerts()
    markdown = RUNBOOKS.read_text()
    base = runbooks.runbooks_url(EXAMPLE)
    annotations = rules[5]["annotations"]
    if fault == "no runbook_url":
        del annotations["runbook_url"]
    elif fault == "renamed section":
        markdown = markdown.replace(f"\n## {rules[5]['alert']}\n", "\n## Service is down\n")
    elif fault == "other page":
        annotations["runbook_url"] = annotations["runbook_url"].replace("/main/", "/master/")
    else:
        markdown += "\nSee [nothing](#nowhere).\n"
    assert broken_links(rules, markdown, base)


def test_the_renderer_refuses_an_alert_without_a_runbook(monkeypatch: pytest.MonkeyPatch) -> None:
    # Generation fails rather than leave an alert's link without its section.
    monkeypatch.delitem(runbooks.RUNBOOKS, "ServiceDown")
    with pytest.raises(KeyError, match="ServiceDown"):
        runbook_text(EXAMPLE)


def test_every_alert_of_the_rules_has_a_runbook_and_no_runbook_is_orphaned() -> None:
    assert sorted(runbooks.RUNBOOKS) == sorted(alert_names(service(EXAMPLE)))


def test_the_runbooks_name_only_boards_and_panels_that_exist() -> None:
    markdown = RUNBOOKS.read_text()
    looks = [line for line in markdown.splitlines() if LOOK.match(line)]
    assert len(looks) >= len(runbooks.RUNBOOKS), "every section names panels"
    assert not unknown_panels(markdown)
    assert {uid: board["title"] for uid, board in BOARDS.items()} == runbooks.BOARDS


@pytest.mark.parametrize(
    "planted",
    [
        "- [Runtime](http://localhost:3000/d/kit-runtime?var-job=example-service): *Heap size*",
        "- [Runtime](http://localhost:3000/d/kit-database-pool?var-job=x): *Fullest pool*",
        "- [Runtime](http://localhost:3000/d/kit-runtime?var-job=x): *Fullest pool*",
        "Look at *Request latency* first.",
    ],
)
def test_a_panel_that_does_not_exist_is_caught(planted: str) -> None:
    assert unknown_panels(RUNBOOKS.read_text() + planted + "\n")


def test_the_runbook_queries_parse_and_read_the_services_own_series() -> None:
    markdown = RUNBOOKS.read_text()
    queries = PROMQL.findall(markdown)
    assert len(queries) >= 2 * 15  # every section: its queries, then the rule
    rules = {rule["expr"] for rule in alerts()}
    # What the rules record and what the boards and rules read: a query naming
    # anything else names a metric that is not there.
    known = {
        rule["record"] for group in recording_groups(service(EXAMPLE)) for rule in group["rules"]
    }
    known |= {name for target in kit.targets() for name in metrics(target.expr)}
    known |= {name for expr in rules for name in metrics(expr)}
    for query in queries:
        for node in kit.selectors(query):
            assert kit.matchers(node.node).get("job") == ("=", "example-service"), query
        assert set(metrics(query)) <= known, query
    assert rules <= set(queries), "each section shows its alert's expression"


@pytest.mark.parametrize(
    "context",
    [
        {"project_slug": "shop", "ci_provider": "gitlab", "slo_latency_seconds": "0.1"},
        {"project_slug": "api", "slo_availability": "95", "slo_latency_target": "99.9"},
        {"project_slug": "web", "runbooks_url": "http://wiki.internal/web/runbooks"},
    ],
)
def test_runbooks_hold_for_other_projects(context: dict[str, str]) -> None:
    markdown = runbook_text(context)
    found = service(context)
    rules = [rule for group in alerts_file(found)["groups"] for rule in group["rules"]]
    assert not broken_links(rules, markdown, runbooks.runbooks_url(context))
    assert not unknown_panels(markdown)
    for query in PROMQL.findall(markdown):
        for node in kit.selectors(query):
            assert kit.matchers(node.node).get("job") == ("=", found.job), query
    threshold = f'le="{float(context.get("slo_latency_seconds", "0.5"))!r}"'
    assert threshold in markdown


# --- the answer ---------------------------------------------------------------------------


def default_answer(framework: str, **answers: str) -> str:
    template = json.loads((KIT_ROOT / "templates" / framework / "cookiecutter.json").read_text())
    return Environment().from_string(template["runbooks_url"]).render(cookiecutter=answers)


@pytest.mark.parametrize("ci_provider", ["github", "gitlab", "none"])
def test_the_templates_default_is_the_renderers(ci_provider: str) -> None:
    # A context without the answer (a project generated before it existed,
    # until its update) gets the address a new project gets by default.
    context = {"project_slug": "shop", "ci_provider": ci_provider}
    for framework in FRAMEWORKS:
        assert default_answer(framework, **context) == runbooks.default_runbooks_url(context)
    assert not runbooks.problems({"runbooks_url": runbooks.default_runbooks_url(context)})


@pytest.mark.parametrize(
    "url",
    [
        "",
        "docs/runbooks.md",
        "ftp://example.com/runbooks.md",
        "https://example.com/runbooks.md#top",
        "https://example.com/run books.md",
        "https://example.com/{{ $labels.job }}.md",
        'https://example.com/"quoted"',
    ],
)
def test_a_runbooks_url_that_cannot_work_is_refused(url: str) -> None:
    (problem,) = runbooks.problems({"project_slug": "shop", "runbooks_url": url})
    assert problem.startswith(f"runbooks_url {url!r} must be"), problem
    with pytest.raises(ValueError, match="runbooks_url"):
        runbooks.runbooks_url({"project_slug": "shop", "runbooks_url": url})


@pytest.mark.render
def test_a_project_gets_runbooks_for_its_job_and_its_address(tmp_path: Path) -> None:
    url = "https://docs.example.com/shop/runbooks/"
    answers: dict[str, Any] = {"project_name": "Shop", "ci_provider": "gitlab", "runbooks_url": url}
    project = render("flask", tmp_path, **answers)
    context = {"project_slug": "shop", **answers}
    markdown = (project / "docs" / "runbooks.md").read_text()
    assert markdown == runbook_text(context)
    rules = alerts(project / "grafana" / "rules" / "alerts.yml")
    assert not broken_links(rules, markdown, url)
    assert not unknown_panels(markdown)
    assert 'job="shop"' in markdown and "example-service" not in markdown
