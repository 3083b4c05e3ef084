"""`tap-gong-flows --test`: one request, and a clear word on what is wrong (issue 6)."""

from __future__ import annotations

import socket

from tests.conftest import run_tap, tap_config
from tests.gong_standin import Fault, make_world
from tests.test_first_hour import run_cli


def test_passes_with_one_request(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=3))
    run = run_tap(tap_config(gong), tmp_path, args=["--test"])
    assert run.code == 0, run.stderr
    assert "Connection test passed" in run.stderr
    assert [(r.path, r.owner) for r in gong.requests] == [("/v2/flows", "owner0001@example.com")]
    assert run.records() == []


def test_without_owners_it_asks_for_users(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=2))
    run = run_tap(tap_config(gong, flow_owner_emails=None), tmp_path, args=["--test"])
    assert run.code == 0, run.stderr
    assert [r.path for r in gong.requests] == ["/v2/users"]


def test_wrong_credentials_fail_at_once_with_status_and_hint(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1), access_key_secret="another-secret")
    run = run_tap(tap_config(gong), tmp_path, args=["--test"])
    assert run.code == 1
    assert "Connection test failed" in run.stderr
    assert "HTTP 401" in run.stderr
    assert gong.requests[0].request_id in run.stderr
    assert len(gong.requests) == 1


def test_a_server_error_is_not_retried(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    gong.add_fault(Fault(status=503, times=-1))
    run = run_tap(tap_config(gong), tmp_path, args=["--test"])
    assert run.code == 1
    assert "HTTP 503" in run.stderr
    assert len(gong.requests) == 1


def test_unreachable_gong_is_named(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    config = tap_config(
        type("Gong", (), {"url": f"http://127.0.0.1:{port}", "world": make_world()})
    )
    run = run_tap(config, tmp_path, args=["--test"])
    assert run.code == 1
    assert "Gong unreachable" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_config_is_reported_without_traceback(gong_factory, tmp_path):
    gong = gong_factory(make_world(owners=1))
    run = run_tap(tap_config(gong, access_key=None), tmp_path, args=["--test"])
    assert run.code == 1
    assert "go together" in run.stderr
    assert "Traceback" not in run.stderr
    assert gong.requests == []


def test_help_describes_this_taps_test_option():
    # Issue 19: --help gave the SDK's "sync a single record for each stream".
    run = run_cli("--help")
    assert run.code == 0
    text = " ".join(run.stdout.split())
    assert "Use --test to check the connection: one request with these credentials" in text
    assert "sync a single record" not in text
