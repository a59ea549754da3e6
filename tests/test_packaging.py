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
