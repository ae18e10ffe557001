"""Hostile definitions are refused fast and small: every file of tests/hostile is loaded in a
subprocess of its own, which reports its CPU time and memory (generous bounds: a guard against
runaway expansion, not a benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
MAX_SECONDS = 2.0
MAX_BYTES = 200 * 1024 * 1024

# file -> (line, a substring of its one problem)
EXPECTED: dict[str, tuple[int, str]] = {
    "billion_laughs": (7, "expands to more than 50000 values"),
    "recursive_alias": (3, "a YAML alias refers to a value that contains it"),
    "deep_nesting": (3, "nested more than 50 levels deep"),
    "deep_mappings": (52, "nested more than 50 levels deep"),
    "nul_byte": (10, "control character U+0000 (NUL) is not allowed"),
    "bel_byte": (2, "control character U+0007 (BEL) is not allowed"),
    "power_in_subject": (15, "subject of template 'finished' is refused: power too large"),
    "power_in_when": (16, "'9**(9**9) > 0' is refused: power too large"),
    "repeat_in_body": (16, "body of template 'finished' is refused: repetition too large"),
    "format_width": (17, "is refused: format pads to more than 100000 characters"),
}

_PROBE = """
import json, resource, sys, time, tracemalloc
from icsflow.definitions.loader import DefinitionLoadError, load_file
tracemalloc.start()
started = time.process_time()
try:
    load_file(sys.argv[1])
    problems = []
except DefinitionLoadError as exc:
    problems = [[p.source.line, p.message, str(p)] for p in exc.problems]
elapsed = time.process_time() - started  # CPU time: other work on the machine does not count
peak = tracemalloc.get_traced_memory()[1]
# Peak resident memory of this process: VmHWM (ru_maxrss would carry over the parent's peak
# from before the exec, on Linux).
try:
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"problems": problems, "seconds": elapsed, "peak": peak, "rss": rss}))
"""


def _probe(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_every_hostile_file_has_an_expectation():
    assert sorted(p.stem for p in HOSTILE.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_definition_is_refused_fast_and_small(name):
    report = _probe(HOSTILE / f"{name}.yaml")
    line, text = EXPECTED[name]
    assert len(report["problems"]) == 1, report["problems"]
    got_line, message, whole = report["problems"][0]
    assert got_line == line and text in message, report["problems"]
    assert "\n" not in whole
    assert report["seconds"] < MAX_SECONDS
    assert report["peak"] < MAX_BYTES and report["rss"] < MAX_BYTES


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("name: huge\nversion: 1\ndescription: \"" + "x" * (2 * 1024 * 1024) + "\"\n")
    report = _probe(path)
    assert [p[:2] for p in report["problems"]] == [
        [1, f"the file is {path.stat().st_size} bytes; a definition may have at most 1048576"]]
    assert report["seconds"] < MAX_SECONDS


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\nversion: 1\ntitle: a\ufffeb\n", "f.yaml:3:9: character U+FFFE"),
    ("name: x\nversion: 1\ntitle: \"a\x85b\x9b\"\n", "f.yaml:3:12: control character U+009B"),
    ("x: \x07", "f.yaml:1:4: control character U+0007 (BEL)"),
    ("name: x\ntitle: \ud800\n", "f.yaml:1: the file is not UTF-8 text"),
    ("a: [1, 2\n", "f.yaml:2:1: not valid YAML"),
])
def test_unreadable_text_gets_one_located_line(text, expected):
    from icsflow.definitions.loader import DefinitionLoadError, load_text

    with pytest.raises(DefinitionLoadError) as info:
        load_text(text, "f.yaml")
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
