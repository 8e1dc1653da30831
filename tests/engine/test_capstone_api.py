"""The capstone's FastAPI app over the real llama.cpp (the packaged SmolLM2 GGUF): auth, limits, validation, answers,
artifacts, OpenAPI. In-process with FastAPI's TestClient (a real ASGI round trip through httpx)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.capstone.api import ApiLimits, RateLimiter, create_app
from engine.models.registry import resolve

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    art = tmp_path_factory.mktemp("artifacts")
    (art / "train.csv").write_text("question,answer\n")
    (art / "sub").mkdir()
    app = create_app(
        resolve("chat").gguf_path(),
        TOKEN,
        ApiLimits(max_body_bytes=2048, requests_per_minute=1000, n_ctx=512),
        artifacts=art,
    )
    with TestClient(app) as c:
        yield c


def test_health_needs_no_token(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_answer(client):
    r = client.post("/v1/answer", json={"question": "What is 2+2?", "max_tokens": 8}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"answer", "model", "prompt_tokens", "completion_tokens", "seconds"}
    assert 1 <= body["completion_tokens"] <= 8 and body["prompt_tokens"] > 5
    again = client.post("/v1/answer", json={"question": "What is 2+2?", "max_tokens": 8}, headers=AUTH).json()
    assert again["answer"] == body["answer"]  # greedy: the same answer


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": f"Basic {TOKEN}"}, 401)],
)
def test_token_required(client, headers, status):
    r = client.post("/v1/answer", json={"question": "hi"}, headers=headers)
    assert r.status_code == status
    assert "answer" not in r.json()


def test_body_limits(client):
    big = {"question": "가" * 900}  # valid length, but 900 Hangul are 2,700 bytes of UTF-8 > 2,048
    r = client.post(
        "/v1/answer",
        content=__import__("json").dumps(big, ensure_ascii=False).encode(),
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert r.status_code == 413

    def chunks():  # no Content-Length: the limit counts the bytes as they arrive
        for _ in range(10):
            yield b" " * 400

    r = client.post("/v1/answer", content=chunks(), headers=AUTH | {"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    "body",
    [b'{"question": ', b'{"question": ""}', b'{"q": "hi"}', b'{"question": "hi", "max_tokens": 100000}', b"[1, 2]"],
)
def test_malformed_requests_are_422(client, body):
    r = client.post("/v1/answer", content=body, headers=AUTH | {"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"]


def test_blank_question(client):
    r = client.post("/v1/answer", json={"question": "   \n "}, headers=AUTH)
    assert r.status_code == 422


def test_artifacts(client):
    listing = client.get("/v1/artifacts", headers=AUTH)
    assert listing.status_code == 200 and listing.json() == [{"name": "train.csv", "bytes": 16}]
    assert client.get("/v1/artifacts/train.csv", headers=AUTH).text == "question,answer\n"
    assert client.get("/v1/artifacts/train.csv").status_code == 401
    for bad in ("..%2F..%2Fetc%2Fpasswd", "sub", "nope.gguf"):
        assert client.get(f"/v1/artifacts/{bad}", headers=AUTH).status_code == 404


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/answer" in spec["paths"] and "HTTPBearer" in spec["components"]["securitySchemes"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # the Swagger UI comes from the app, not a CDN
    script = next(part.split('"')[0] for part in docs.text.split('src="')[1:] if "swagger-ui-bundle" in part)
    assert client.get(script).status_code == 200


def test_rate_limit():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check("a") is None and limiter.check("a") is None
    assert limiter.check("a") == 60.0  # the third request within a minute waits for the first to expire
    assert limiter.check("b") is None  # per token
    now[0] = 30.0
    assert limiter.check("a") == 30.0
    now[0] = 60.0
    assert limiter.check("a") is None


def test_rate_limit_over_http(tmp_path):
    app = create_app(resolve("chat").gguf_path(), TOKEN, ApiLimits(requests_per_minute=1))
    with TestClient(app) as c:
        c.get("/v1/artifacts", headers=AUTH)
        r = c.get("/v1/artifacts", headers=AUTH)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_app_needs_a_token(tmp_path):
    with pytest.raises(ValueError):
        create_app(tmp_path / "m.gguf", "")
