"""The capstone page's REST API section: start `python -m engine capstone-serve` for this session, call it with a
real HTTP client (httpx), and show the status code and JSON of what came back — including the calls it refuses."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import streamlit as st

from engine.capstone.pipeline import start_api
from engine.models.registry import resolve
from ui.i18n import t

SS = st.session_state


def model_choice(run: dict | None) -> Path | None:
    """This session's tuned 4-bit model if there is one, else the untuned base (the section works either way)."""
    mine = Path(run["out_dir"]) / "model.gguf" if run and run.get("out_dir") else None
    options = (["mine"] if mine and mine.is_file() else []) + ["base"]
    choice = st.radio(
        t("hc.api_model"), options, key="hc_api_model", horizontal=True, format_func=lambda k: t(f"hc.api_model_{k}")
    )
    if choice == "mine":
        return mine
    try:
        return resolve("instruct").gguf_path()
    except Exception:
        st.warning(t("hc.api_no_model"), icon="⚠️")
        return None


def running() -> dict | None:
    api = SS.get("hc_api")
    if api and api["proc"].poll() is None:
        return api
    SS.pop("hc_api", None)
    return None


def start(model: Path) -> None:
    stop()
    token = secrets.token_urlsafe(16)
    proc, url = start_api(model, token)
    SS["hc_api"] = {"proc": proc, "url": url, "token": token, "model": model.name}


def stop() -> None:
    api = SS.pop("hc_api", None)
    if api and api["proc"].poll() is None:
        api["proc"].terminate()
        try:
            api["proc"].wait(timeout=10)
        except Exception:
            api["proc"].kill()


def call(api: dict, question: str | None, *, token: bool = True, raw: bytes | None = None) -> dict:
    """One POST /v1/answer; the result is {status, body, request} whatever the server answered."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {api['token']}"
    body = raw if raw is not None else json.dumps({"question": question}, ensure_ascii=False).encode()
    try:
        r = httpx.post(f"{api['url']}/v1/answer", content=body, headers=headers, timeout=120)
        try:
            payload = r.json()
        except ValueError:
            payload = r.text[:500]
        return {"status": r.status_code, "body": payload, "bytes": len(body), "token": token}
    except httpx.HTTPError as exc:
        return {"status": None, "body": str(exc), "bytes": len(body), "token": token}


def show_call(result: dict) -> None:
    status = result["status"]
    st.caption(t("hc.call_sent", bytes=result["bytes"], token=t("hc.yes") if result["token"] else t("hc.no")))
    if status == 200:
        st.success(f"200 — {result['body'].get('answer', '')}", icon="✅")
    elif status is None:
        st.error(t("hc.call_failed", detail=result["body"]), icon="🛑")
    else:
        st.warning(t(f"hc.status_{status}") if status in (401, 403, 413, 422, 429) else str(status), icon="⚠️")
    st.json(result["body"], expanded=status == 200)


def curl(api: dict) -> str:
    return (
        f"curl -s {api['url']}/v1/answer \\\n  -H 'Authorization: Bearer {api['token']}' \\\n"
        "  -H 'Content-Type: application/json' \\\n  -d '{\"question\": \"도서관은 평일에 몇 시에 문을 닫나요?\"}'\n"
        f"# OpenAPI: {api['url']}/docs   artifacts: {api['url']}/v1/artifacts"
    )
