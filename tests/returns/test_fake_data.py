"""The validators' own fake data (data-to-insight's repositories, MIT licence: SSDA903
``tests/fake_data/``: 2,675 children, 5,050 episodes, 12,582 reviews; CIN ``fake_data/*.xml``)
imported with --skip-invalid: every unusable row named in the rejects file, nothing else lost,
and importing again changes nothing.

The files are read from a local copy of those repositories (a git directory: ``$ICSFLOW_DFE_
903_REPO`` / ``$ICSFLOW_DFE_CIN_REPO``, by default where the project's tooling keeps mirrors);
this project commits none of them. Without the copy these tests skip, saying so.
"""

from __future__ import annotations

import csv
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import counts

from icsflow.workflow import Engine, FakeClock
from icsflow.workflow.transfer.returns.held import read_held
from icsflow.workflow.transfer.returns.importing import import_returns, read_return
from icsflow.workflow.transfer.returns.records import CinReturn, Ssda903Return

MIRRORS = Path("/work/.mirror")
REPO_903 = Path(os.environ.get("ICSFLOW_DFE_903_REPO",
                               MIRRORS / "data-to-insight+csc-validator-be-903" / "repo"))
REPO_CIN = Path(os.environ.get("ICSFLOW_DFE_CIN_REPO",
                               MIRRORS / "data-to-insight+csc-validator-be-cin" / "repo"))
CIN_FILES = ("CIN_Census_2021.xml", "CIN_Census_2024.xml", "CIN_Census_2026.xml",
             "CIN2rows.xml", "fake_CIN_data.xml")
LATER = datetime(2032, 1, 1, tzinfo=UTC)  # the 903 fake data runs to 2031


def copy_out(repo: Path, paths: dict[str, str], dest: Path) -> Path:
    """``git show HEAD:path`` of each file into ``dest`` (skip when the copy is absent)."""
    if not (repo / "HEAD").exists():
        pytest.skip(f"no local copy of the validators' repository at {repo} (set "
                    "ICSFLOW_DFE_903_REPO / ICSFLOW_DFE_CIN_REPO to a git directory)")
    dest.mkdir(parents=True, exist_ok=True)
    for name, path in paths.items():
        shown = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{path}"],
                               capture_output=True, check=False)
        if shown.returncode != 0:
            pytest.skip(f"{repo} holds no {path}: {shown.stderr.decode()[:200]}")
        (dest / name).write_bytes(shown.stdout)
    return dest


def rejected_lines(path: Path) -> set[tuple[str, str]]:
    with path.open() as fh:
        return {(r["file"], r["line"]) for r in csv.DictReader(fh)}


@pytest.mark.slow  # the DfE validators' whole fake 903 file, imported twice
def test_the_903_fake_data_imports_every_usable_child_and_names_every_unusable_row(
        tmp_path: Path) -> None:
    folder = copy_out(REPO_903, {n: f"tests/fake_data/{n}" for n in
                                 ("header.csv", "episodes.csv", "reviews.csv")},
                      tmp_path / "903")
    engine = Engine.open(db=f"sqlite:///{tmp_path / 'f.db'}", clock=FakeClock(LATER))
    try:
        refused = import_returns(engine, [("ssda903", folder)])
        assert not refused.ok and counts(engine)["instances"] == 0  # all or nothing
        rejects = tmp_path / "rejects.csv"
        report = import_returns(engine, [("ssda903", folder)], skip_invalid=True,
                                rejects=rejects)
        assert report.ok and report.children == 2675
        ret = read_return("ssda903", folder)
        assert isinstance(ret, Ssda903Return)
        assert {(p.source, str(p.line)) for p in report.rejected} == rejected_lines(rejects)
        assert {(p.source, str(p.line)) for p in ret.problems} <= rejected_lines(rejects)
        skipped = set(report.skipped_children)
        held = read_held(engine)
        assert not skipped & set(held.periods)  # a child with an unusable row: nothing of it
        taken = set(ret.children) - skipped
        assert taken == set(held.periods) and len(taken) == report.children_imported > 20
        for child in taken:  # nothing else lost: every review of every child taken is held
            want = sorted((r.held_on, r.code) for p in ret.children[child].periods
                          for r in p.reviews)
            got = sorted((d, c) for p in held.periods[child] for d, c in p.reviews)
            assert got == want, child
        before = counts(engine)
        again = import_returns(engine, [("ssda903", folder)], skip_invalid=True,
                               rejects=tmp_path / "again.csv")
        assert again.ok and again.imported.applied == 0 and counts(engine) == before
    finally:
        engine.close()


@pytest.mark.parametrize("name", CIN_FILES)
def test_the_cin_fake_data_imports_every_usable_child_and_names_every_unusable_row(
        tmp_path: Path, name: str) -> None:
    folder = copy_out(REPO_CIN, {name: f"fake_data/{name}"}, tmp_path / "cin")
    path = folder / name
    engine = Engine.open(db=f"sqlite:///{tmp_path / 'c.db'}", clock=FakeClock(LATER))
    try:
        rejects = tmp_path / "rejects.csv"
        report = import_returns(engine, [("cin-census", path)], skip_invalid=True,
                                rejects=rejects)
        assert report.ok
        assert {(p.source, str(p.line)) for p in report.rejected} == rejected_lines(rejects)
        ret = read_return("cin-census", path)
        assert isinstance(ret, CinReturn)
        held = read_held(engine)
        for child in set(ret.children) - set(report.skipped_children):
            want = sorted(s.start for s in ret.children[child].enquiries if not s.not_required)
            assert sorted(c.enquiry for c in held.conferences.get(child, [])) == want, child
        assert not set(report.skipped_children) & set(held.conferences)
        before = counts(engine)
        again = import_returns(engine, [("cin-census", path)], skip_invalid=True,
                               rejects=tmp_path / "again.csv")
        assert again.ok and again.imported.applied == 0 and counts(engine) == before
    finally:
        engine.close()
