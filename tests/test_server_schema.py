"""schemathesis against the real server's /openapi.json: at least 50 generated requests per
operation (multipart and JSON bodies, odd paths and queries), with an admin key; none is answered
with a 5xx, and every refusal is problem+json with a ``code``."""

from __future__ import annotations

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

OPERATIONS = [
    ("POST", "/v1/detect"),
    ("POST", "/v1/verify"),
    ("POST", "/v1/identify"),
    ("POST", "/v1/embeddings/identify"),
    ("GET", "/v1/people"),
    ("POST", "/v1/people"),
    ("GET", "/v1/people/{name}"),
    ("PATCH", "/v1/people/{name}"),
    ("DELETE", "/v1/people/{name}"),
    ("POST", "/v1/people/{name}/faces"),
    ("DELETE", "/v1/people/{name}/faces/{face_id}"),
    ("GET", "/v1/people/{name}/faces/{face_id}/thumbnail"),
    ("POST", "/v1/people/{name}/verify"),
    ("POST", "/v1/people/{name}/embeddings"),
    ("GET", "/v1/clusters"),
    ("GET", "/v1/clusters/{cluster_id}"),
    ("GET", "/v1/clusters/{cluster_id}/faces/{face_id}/thumbnail"),
    ("POST", "/v1/clusters/{cluster_id}/name"),
    ("POST", "/v1/clusters/{cluster_id}/merge"),
    ("POST", "/v1/clusters/{cluster_id}/split"),
    ("GET", "/v1/keys"),
    ("POST", "/v1/keys"),
    ("DELETE", "/v1/keys/{key_id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
]


@pytest.fixture(scope="module")
def new_key(served):
    """A fresh admin key for each generated request: DELETE /v1/keys/{key_id} may revoke any key,
    the shared ones included, and the next request must not depend on which."""
    from faceshot.keys import KeyStore

    with KeyStore(served["db"]) as store:
        yield lambda: store.create("admin", name="schemathesis")[0]


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_dict(httpx.get(served["url"] + "/openapi.json").json())


def test_the_list_covers_every_operation(api_schema):
    listed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize("method,path", OPERATIONS, ids=lambda v: v)
def test_no_generated_request_gets_a_server_error(api_schema, served, new_key, method, path):
    operation = api_schema[path][method]
    calls = []

    @given(case=operation.as_strategy())
    @settings(max_examples=50, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(base_url=served["url"], headers={"X-API-Key": new_key()}, timeout=60)
        calls.append(response.status_code)
        assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:500])
        if response.status_code >= 400:
            kind = response.headers.get("content-type") or [""]
            kind = kind[0] if isinstance(kind, list) else kind
            assert kind.startswith("application/problem+json"), response.text[:300]
            assert response.json()["code"], response.text[:300]

    check()
    assert len(calls) >= 50 or method == "GET" and path in ("/healthz", "/readyz"), len(calls)
