"""The schemas ship inside the package, so an installed tap finds them without the repo."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_wheel_carries_every_schema_file(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tap_gong_flows-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for schema in sorted((ROOT / "schemas").glob("*.json")):
            packaged = archive.read(f"tap_gong_flows/schemas/{schema.name}")
            assert packaged == schema.read_bytes()
