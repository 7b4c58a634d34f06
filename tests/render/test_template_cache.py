"""render/root.py keeps compiled templates across runs (jinja2's bytecode cache in the tool's
cache directory): a kept template is not compiled again, an edited one is, and a machine where
the cache cannot be made renders as before."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.config.model import load_config
from provisioner.render import root
from provisioner.render.root import DlzTarget, render_root, templates_dir
from tests.helpers.config import REPO


@pytest.fixture(autouse=True)
def fresh_environments() -> Iterator[None]:
    """Each render below as a new process's first; later tests get the usual environment back."""
    root._jinja.cache_clear()
    yield
    root._jinja.cache_clear()


def _render(templates: Path) -> dict[str, str]:
    cfg = load_config(REPO / "examples" / "provision.yaml", environ={})
    env = cfg.environments["dev"]
    return dict(render_root(env, DlzTarget("c", "a"), cfg.path, templates=templates).files)


def test_a_kept_template_is_loaded_and_an_edited_one_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    templates = tmp_path / "templates"
    shutil.copytree(templates_dir(), templates)
    first = _render(templates)
    kept = tmp_path / "cache" / "dlz-provisioner" / "templates"
    assert len(list(kept.glob("*.cache"))) >= len(first)  # one per template used

    root._jinja.cache_clear()  # a later run
    compiled = 0
    real_compile = root._jinja(templates).compile

    def counting_compile(*args: object, **kwargs: object) -> object:
        nonlocal compiled
        compiled += 1
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(root._jinja(templates), "compile", counting_compile)
    assert _render(templates) == first
    assert compiled == 0  # every template came from the cache

    clusters = templates / "clusters.tf.j2"
    clusters.write_text(clusters.read_text() + "# edited\n")
    root._jinja.cache_clear()
    assert _render(templates)["clusters.tf"].endswith("# edited\n")


def test_no_cache_where_none_can_be_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not-a-directory").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-directory"))
    assert "clusters.tf" in _render(templates_dir())


def test_a_cache_that_cannot_be_written_to_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk, a read-only or vanished cache directory: Jinja's write fails; the render does not."""
    import jinja2

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    gone = tmp_path / "gone" / "entry"  # its directory does not exist: the write raises FileNotFoundError
    monkeypatch.setattr(jinja2.FileSystemBytecodeCache, "_get_cache_filename", lambda self, bucket: str(gone))
    assert "clusters.tf" in _render(templates_dir())
    assert not list((tmp_path / "cache" / "dlz-provisioner" / "templates").iterdir())
