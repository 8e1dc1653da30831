"""A cache disk that is read-only or full: the page says so in the learner's language, nothing is damaged.

The real fault where the machine allows it: LLMLAB_CACHE on a read-only bind mount (root with mount rights, as on the
CI and development machines); elsewhere only the message test runs.
"""

from __future__ import annotations

import errno
import subprocess

import pytest
from streamlit.testing.v1 import AppTest

import ui.i18n
from tests.pages.conftest import ROOT, TIMEOUT, exceptions
from ui.errors import disk_message


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize(
    ("err", "word"),
    [(errno.EROFS, {"ko": "읽기 전용", "en": "read-only"}), (errno.ENOSPC, {"ko": "가득", "en": "full"})],
)
def test_disk_errors_have_a_message_in_both_languages(err, word, lang):
    msg = disk_message(OSError(err, "x", "/cache/models/a.safetensors"), lang)
    assert word[lang] in msg and "/cache/models/a.safetensors" in msg and "LLMLAB_CACHE" in msg


def test_other_os_errors_stay_bugs():
    assert disk_message(OSError(errno.ENOENT, "missing", "x")) is None
    assert disk_message(ValueError("x")) is None


@pytest.fixture
def read_only_cache(tmp_path, monkeypatch):
    src, mnt = tmp_path / "src", tmp_path / "cache"
    src.mkdir()
    mnt.mkdir()
    (src / "keep.txt").write_text("earlier file")
    ok = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True).returncode == 0
    if ok:
        ok = subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    if not ok:
        pytest.skip("cannot make a read-only bind mount here (needs root with mount rights)")
    monkeypatch.setenv("LLMLAB_CACHE", str(mnt))
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_page_on_a_read_only_cache_shows_a_message_and_damages_nothing(read_only_cache, monkeypatch):
    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", "en")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.switch_page("pages/06_text2sql.py").run()  # the page builds the Chinook database into the cache first
    assert not exceptions(at), exceptions(at)
    shown = " ".join(e.value for e in at.error)
    assert "read-only" in shown and "LLMLAB_CACHE" in shown
    assert (read_only_cache / "keep.txt").read_text() == "earlier file"
