"""Packaging: every package of the tree is installed, analysis/ only as flowkit.analysis
(a top-level "analysis" would be any other project's name too)."""
import configparser
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = cfg["options"]["packages"].split()
    mapping = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    return packages, mapping


def test_every_package_is_listed_and_analysis_is_under_flowkit():
    packages, mapping = _setup()
    assert mapping == {"flowkit.analysis": "analysis"} and "analysis" not in packages
    tree = {".".join(p.parent.relative_to(ROOT).parts)
            for p in (ROOT / "flowkit").rglob("__init__.py")} | {"flowkit.analysis"}
    assert sorted(packages) == sorted(tree)


def test_flowkit_analysis_is_the_analysis_directory():
    import flowkit.analysis.plan as plan
    assert os.path.samefile(Path(plan.__file__).parent, ROOT / "analysis")
