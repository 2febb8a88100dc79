"""The documentation site (mkdocs.yml, docs/): its guide names every shipped component, and it builds with no warning."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "guide"


def undocumented(names: Iterable[str], page: str) -> list[str]:
    """The names that `page` never mentions as code (`name`): a bare substring would let `r1` pass for `r1-toy`."""
    text = (GUIDE / page).read_text(encoding="utf-8")
    return [n for n in names if f"`{n}`" not in text]


def importable(module: str) -> bool:
    """Whether `module` can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def test_the_recipe_catalogue_lists_every_shipped_recipe() -> None:
    names = sorted(p.stem for p in (REPO / "ganforge" / "recipes").glob("*.yaml"))
    assert len(names) > 50
    assert undocumented(names, "recipes.md") == []


# The registries as the package ships them, read in a fresh process: other test modules register components of their
# own (tests/test_api.py) when pytest imports them, and those have no place in the guide.
SHIPPED = """
import json
import ganforge.games, ganforge.models  # their modules register the games and model families on import
from ganforge.augment.base import AUGMENTATIONS
from ganforge.games.base import GAMES
from ganforge.losses import OBJECTIVES
from ganforge.metrics.spec import METRIC_SPECS
from ganforge.regularizers import REGULARIZERS
print(json.dumps({
    "metric": list(METRIC_SPECS),
    "objective": OBJECTIVES.names(),
    "regulariser": REGULARIZERS.names(),
    "game": GAMES.names(),
    "augmentation": AUGMENTATIONS.names(),
    "generator": ganforge.models.GENERATORS.names(),
    "discriminator": ganforge.models.DISCRIMINATORS.names(),
    "translator": ganforge.models.TRANSLATORS.names(),
}))
"""


@pytest.fixture(scope="module")
def shipped() -> dict[str, list[str]]:
    """Component names by kind, as registered by ganforge itself."""
    out = subprocess.run([sys.executable, "-c", SHIPPED], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(names.values()), names
    return names


def test_the_metrics_page_describes_every_declared_metric(shipped: dict[str, list[str]]) -> None:
    assert undocumented(shipped["metric"], "metrics.md") == []


def test_the_components_page_describes_every_registered_component(shipped: dict[str, list[str]]) -> None:
    missing = {kind: undocumented(names, "components.md") for kind, names in shipped.items() if kind != "metric"}
    assert {kind: names for kind, names in missing.items() if names} == {}


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    absent = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python") if not importable(m)]
    if absent:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(absent)}): pip install -e '.[docs]'")
    # No --quiet: it drops mkdocs' log below ERROR, and with it the warnings that --strict counts.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "WARNING" not in log, log
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()
