"""The mission schema's models are built without importing importlib.metadata when no pydantic plugin
is installed, and with pydantic's own plugins when one is (missions/pydantic_plugins.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from missions import pydantic_plugins

ROOT = Path(__file__).resolve().parents[2]


def _python(script: str, *, pythonpath: Path | None = None) -> str:
    env = dict(os.environ)
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_no_plugin_installed_no_importlib_metadata_and_the_models_validate() -> None:
    out = _python(
        """
        import sys
        from missions.model import Mission
        m = Mission.model_validate({"mission": "m", "version": 1, "boundaries": {
            "allowed_domains": ["a.localhost"], "allowed_actions": ["goto"]}, "steps": [{"goto": "http://a.localhost/"}]})
        from pydantic.plugin._loader import get_plugins
        print(m.steps[0].args.url, "importlib.metadata" in sys.modules, list(get_plugins()))
        """
    )
    assert out == "http://a.localhost/ False []"


def test_an_installed_plugin_is_found_and_used_as_pydantic_would(tmp_path: Path) -> None:
    dist = tmp_path / "warden_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: warden-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pydantic]\nfake = warden_fake_plugin:plugin\n")
    (tmp_path / "warden_fake_plugin.py").write_text(textwrap.dedent(
        """
        seen = []

        class _Plugin:
            def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind, config, settings):
                seen.append(schema_type_path.name)
                return None, None, None

        plugin = _Plugin()
        """
    ))
    out = _python(
        """
        import warden_fake_plugin
        from missions.model import Mission
        print("Mission" in warden_fake_plugin.seen)
        """,
        pythonpath=tmp_path,
    )
    assert out == "True"


def test_a_zip_on_sys_path_is_left_to_pydantic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "packages.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    monkeypatch.setattr(sys, "path", [*sys.path, str(archive)])
    assert pydantic_plugins._may_register_a_plugin()


def test_a_pydantic_section_is_seen_however_it_is_spaced(tmp_path: Path) -> None:
    dist = tmp_path / "x-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[console_scripts]\nx = x:main\n\n[ pydantic ]\np = x:p\n")
    assert pydantic_plugins._declares_pydantic(str(dist))
    (dist / "entry_points.txt").write_text("[console_scripts]\npydantic = x:main\n")
    assert not pydantic_plugins._declares_pydantic(str(dist))


def test_any_other_use_of_the_loader_is_pydantics_own() -> None:
    """A later pydantic importing another name from its loader, or calling ``get_plugins`` with
    arguments, gets pydantic's own module (the stand-in only answers the call it knows)."""
    out = _python(
        """
        import missions.model  # installs the stand-in, builds the first models
        import sys
        loader = sys.modules["pydantic.plugin._loader"]
        print(getattr(loader, "__warden_standin__", False), loader.get_plugins.__module__)
        from pydantic.plugin._loader import _plugins  # a name only pydantic's own module has
        print(type(_plugins).__name__, getattr(sys.modules["pydantic.plugin._loader"], "__warden_standin__", False))
        """
    )
    first, second = out.splitlines()
    assert first == "True missions.pydantic_plugins"
    assert second.split()[1] == "False"  # pydantic's real loader took its place
