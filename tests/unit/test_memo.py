"""Every cache is bounded and listed in one place (issue 24, item 7)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from icsflow.definitions.memo import Memo, clear_memos, memoized, memos

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("workflow", "definitions", "notifiers", "storage")


def test_a_memo_forgets_its_oldest_entries_past_its_limit() -> None:
    memo: Memo[int, str] = Memo("test.oldest_first", 3)
    for n in range(5):
        assert memo.put(n, str(n)) == str(n)
    assert [memo.get(n) for n in range(5)] == [None, None, "2", "3", "4"]
    assert memo.size() == 3


def test_threads_putting_at_once_never_pass_the_limit() -> None:
    memo: Memo[int, int] = Memo("test.threads", 50)

    def fill(start: int) -> None:
        for n in range(start, start + 2000):
            memo.put(n, n)

    threads = [threading.Thread(target=fill, args=(k * 2000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert memo.size() == 50


def test_memos_lists_every_cache_with_its_size_and_limit_and_clears_them_all() -> None:
    # Importing the engine and the SQL store registers every cache they keep.
    import icsflow.storage.outbox  # noqa: F401
    import icsflow.storage.statements  # noqa: F401
    import icsflow.workflow.engine  # noqa: F401

    @memoized("test.squares", 8)
    def square(n: int) -> int:
        return n * n

    assert [square(n) for n in range(20)][-1] == 361
    listed = {m.name: m for m in memos()}
    assert {"expressions.compiled_expressions", "expressions.compiled_templates",
            "codecs.utc_text", "statements.timer_claims", "outbox.claims", "data.is_email",
            "limits.subject_fields", "context.functions"} <= set(listed)
    assert listed["test.squares"].size == 8 and listed["test.squares"].limit == 8
    assert all(m.size <= m.limit for m in listed.values())
    clear_memos()
    assert {m.name: m.size for m in memos()}["test.squares"] == 0
    assert square(3) == 9


def test_two_caches_cannot_share_a_name() -> None:
    Memo("test.once", 1)
    with pytest.raises(ValueError, match="already registered"):
        Memo("test.once", 1)


def test_no_other_kind_of_cache_exists_in_the_rooms() -> None:
    """No ``functools.lru_cache``/``cache`` outside memo.py, and no module-level dict that a
    function fills (``NAME[key] = ...`` on a module's global): each would grow unseen."""
    bad = []
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            if path.name == "memo.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module_dicts = {t.id for node in tree.body
                            if isinstance(node, (ast.Assign, ast.AnnAssign))
                            and isinstance(node.value, ast.Dict) and not node.value.keys
                            for t in (node.targets if isinstance(node, ast.Assign)
                                      else [node.target]) if isinstance(t, ast.Name)}
            for node in ast.walk(tree):
                text = ast.unparse(node) if isinstance(node, (ast.Attribute, ast.Name)) else ""
                if text in ("functools.lru_cache", "lru_cache", "functools.cache"):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {text}")
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) \
                        and isinstance(node.value, ast.Name) and node.value.id in module_dicts:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} fills {node.value.id}")
    assert bad == []
