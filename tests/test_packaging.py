"""`make install` on a fresh clone prints no warnings of ours: setuptools (>= 77) warns about a
`license` table and, for packages at the project root without `package-dir`, about the editable
install's meta path finder."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression():
    assert isinstance(PYPROJECT["project"]["license"], str)
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]


def test_packages_are_declared_at_the_project_root():
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"": "."}


def _requirements() -> list[str]:
    return [
        *PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"]["dev"],
    ]


def test_every_dependency_has_a_lower_and_an_upper_bound_that_admit_the_pinned_version():
    from packaging.requirements import Requirement

    pins = {}
    for line in (Path(__file__).parent.parent / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    for text in _requirements():
        requirement = Requirement(text)
        operators = {spec.operator for spec in requirement.specifier}
        assert ">=" in operators and "<" in operators, f"{text}: needs a lower and an upper bound"
        name = requirement.name.lower().replace("_", "-")
        assert requirement.specifier.contains(pins[name]), f"{text} excludes the pin {pins[name]}"


def test_the_compiled_executor_gets_the_graphql_core_it_was_written_for():
    assert "graphql-core>=3.3,<3.4" in PYPROJECT["project"]["dependencies"]
