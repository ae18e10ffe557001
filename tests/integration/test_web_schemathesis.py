"""Property-based requests from the API's own OpenAPI document (schemathesis): no input, valid
or not, makes the server answer 500. Bounded: about forty examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_support import WebWorld, build

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis")

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    w = build(Path(tmp_path_factory.mktemp("schemathesis")))
    yield w
    w.engine.close()


@pytest.mark.slow  # up to 10 s: EXAMPLES_PER_OPERATION generated requests for every operation
def test_no_input_makes_a_server_error(world: WebWorld) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    client = TestClient(world.app, raise_server_exceptions=False)
    document = client.get("/api/openapi.json", headers=headers).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    seen: dict[str, int] = {}
    failures: list[str] = []

    @settings(max_examples=EXAMPLES_PER_OPERATION * len(operations), deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(operations))
        case = data.draw(operation.as_strategy())
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        kwargs.setdefault("headers", {}).update(headers)
        method = kwargs.pop("method")
        url = kwargs.pop("url")
        kwargs = {k: v for k, v in kwargs.items() if k in ("headers", "params", "json",
                                                          "content", "data")}
        response = client.request(method, url, **kwargs)
        seen[operation.label] = seen.get(operation.label, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{method} {url} -> {response.status_code}: "
                            f"{response.text[:200]}")
        assert response.status_code < 500, failures[-1]

    run()
    assert failures == []
    assert len(seen) == len(operations), f"not every operation was tried: {seen}"
