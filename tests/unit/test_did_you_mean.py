""""Did you mean" ranks names word by word, digits as numbers, and stays quiet when nothing
is close."""

from __future__ import annotations

import pytest

from icsflow.definitions.errors import Problem, closest, did_you_mean, similarity
from icsflow.definitions.model import Source

STATES = ["stage3_responded", "stage1", "stage2", "stage1_responded"]


@pytest.mark.parametrize(("wrong", "candidates", "expected"), [
    ("stage_one_typo", STATES, "stage1"),
    ("stage_1", ["stage1", "stage2", "stage_10"], "stage1"),
    ("stage_one", STATES, "stage1"),
    ("dnoe", ["open", "done"], "done"),
    ("wroker", ["worker"], "worker"),
    ("opend_on", ["worker_email", "opened_on"], "opened_on"),
    ("worker_mail", ["worker_email", "opened_on"], "worker_email"),
    ("workeremail", ["worker_email"], "worker_email"),
    ("team_manger", ["iro", "team_manager"], "team_manager"),
    ("stage_2", ["stage1", "stage3_responded"], None),  # another number is another state
    ("xyz", ["open", "done"], None),
    ("finished", ["finish_notice"], None),
    ("open", [], None),
])
def test_closest(wrong, candidates, expected):
    assert closest(wrong, candidates) == expected


def test_similarity_orders_the_meant_name_first():
    assert similarity("stage_one_typo", "stage1") > similarity("stage_one_typo",
                                                               "stage3_responded")
    assert similarity("stage_1", "stage1") == 1.0


def test_did_you_mean_text():
    assert did_you_mean("dnoe", ["done"]) == "; did you mean 'done'?"
    assert did_you_mean("zzz", ["done"]) == ""


def test_problem_shows_the_column_when_known():
    assert str(Problem(Source("a.yaml", 3, 7), "bad")) == "a.yaml:3:7: bad"
    assert str(Problem(Source("a.yaml", 3), "bad")) == "a.yaml:3: bad"
