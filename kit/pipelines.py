"""A generated project's pipeline, dependency-update and pre-commit configuration,
checked by each one's own validator.

What ``ci_provider`` gives a project (hooks/kit_hooks.py, ``CI_LAYERS``):
``github`` the GitHub Actions workflow and Dependabot's configuration,
``gitlab`` the GitLab CI/CD pipeline and Renovate's, ``none`` Renovate's only.
Every project has the pre-commit configuration.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .deploy import actionlint, load_yaml, run, tool

# The files each provider renders; those of the others must not exist.
PIPELINE_FILES: dict[str, tuple[str, ...]] = {
    "github": (".github/workflows/ci.yml", ".github/dependabot.yml"),
    "gitlab": (".gitlab-ci.yml", "renovate.json"),
    "none": ("renovate.json",),
}
# Where a provider's files live: none of it may exist for another provider.
PROVIDER_PATHS = (".github", ".gitlab-ci.yml", "renovate.json")
PRE_COMMIT = ".pre-commit-config.yaml"


def schema(name: str, path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with one of the schemas it vendors (``vendor.<name>``)."""
    return run(tool("check-jsonschema"), "--builtin-schema", f"vendor.{name}", *options, str(path))


def gitlab_schema(path: Path) -> subprocess.CompletedProcess[str]:
    """GitLab CI/CD's schema; ``!reference`` tags are read as GitLab reads them."""
    return schema("gitlab-ci", path, "--data-transform", "gitlab-ci")


def gitlab_scripts(path: Path) -> dict[str, str]:
    """Each job's shell script as the runner executes it: ``before_script``,
    ``script``, then ``after_script`` (a job's own, or the defaults)."""
    pipeline = load_yaml(path)
    default = pipeline.get("default", {})
    scripts = {}
    for name, job in pipeline.items():
        if isinstance(job, dict) and "script" in job:
            lines = [
                *job.get("before_script", default.get("before_script", [])),
                *job["script"],
                *job.get("after_script", default.get("after_script", [])),
            ]
            scripts[name] = "\n".join(lines) + "\n"
    return scripts


def shellcheck_gitlab(path: Path) -> list[str]:
    """ShellCheck's findings on every job's script (bash, as the runner's image has it);
    actionlint does the same for a GitHub workflow's ``run:`` steps."""
    findings = []
    for job, script in gitlab_scripts(path).items():
        result = subprocess.run(
            [tool("shellcheck"), "--shell=bash", "--format=gcc", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            findings.append(f"{job}: {result.stdout.strip()}")
    return findings


def pre_commit_config(path: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("pre-commit"), "validate-config", str(path))


def problems(project: Path, provider: str) -> list[str]:
    """Everything wrong with the project's pipeline, bot and pre-commit files for
    its ``ci_provider`` (empty when each validator passes)."""
    found: list[str] = []
    expected = set(PIPELINE_FILES[provider])
    present = {
        path for paths in PIPELINE_FILES.values() for path in paths if (project / path).exists()
    }
    if present != expected:
        found.append(f"{provider}: expected {sorted(expected)}, found {sorted(present)}")
    owned = {path for path in PROVIDER_PATHS if any(f.startswith(path) for f in expected)}
    for path in set(PROVIDER_PATHS) - owned:
        if (project / path).exists():
            found.append(f"{provider}: {path} belongs to another provider")
    if found:
        return found  # the validators below would only report missing files

    def check(result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            found.append(f"{what}:\n{result.stdout}{result.stderr}")

    if provider == "github":
        workflow = project / ".github/workflows/ci.yml"
        check(actionlint(workflow), "actionlint")
        check(schema("github-workflows", workflow), "GitHub workflow schema")
        check(schema("dependabot", project / ".github/dependabot.yml"), "Dependabot schema")
    if provider == "gitlab":
        pipeline = project / ".gitlab-ci.yml"
        check(gitlab_schema(pipeline), "GitLab CI/CD schema")
        found.extend(f"ShellCheck: {finding}" for finding in shellcheck_gitlab(pipeline))
    if "renovate.json" in expected:
        check(schema("renovate", project / "renovate.json"), "Renovate schema")
    check(pre_commit_config(project / PRE_COMMIT), "pre-commit validate-config")
    return found
