"""The README is the front door: it must document every setting and the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from wirewatch.core.settings import Settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [
        f"WIREWATCH_{name.upper()}"
        for name in Settings.model_fields
        if f"WIREWATCH_{name.upper()}" not in README
    ]
    assert not missing, f"README's configuration table lacks {missing}"


def test_documented_variables_exist() -> None:
    known = {f"WIREWATCH_{name.upper()}" for name in Settings.model_fields}
    documented = set(re.findall(r"WIREWATCH_[A-Z_]+[A-Z]", README))
    assert documented <= known, f"README names unknown settings: {sorted(documented - known)}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test:", makefile, re.MULTILINE) and re.search(r"^run:", makefile, re.MULTILINE)
