"""A process that imports the tap once and forks a fresh copy of itself for each test run.

Each run is still a process of its own, with its own arguments, working folder, stdin, stdout,
stderr, signal handlers and exit code, and runs `tap_gong_flows.__main__.main()` exactly as
`python -m tap_gong_flows` does; only the interpreter's start and the import of singer-sdk (about
0.3 s of every run) are paid once. `tests/conftest.py`'s `run_tap` uses it; the tests that need a
real start (signals during the imports, the entry point, Meltano) start the CLI themselves.

Protocol, one JSON object a line: the test sends {"argv", "cwd", "stdout", "stderr"} (paths of
files for the run's output) and "env" (variables the run adds); the zygote answers {"pid"} at
once and {"code"} when the run ends, with the exit code as subprocess gives it (negative: killed
by that signal).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys


def _child(request: dict) -> None:
    """In the forked process: become the CLI run the request describes. Never returns."""
    try:
        os.chdir(request["cwd"])
        os.environ.update(request.get("env") or {})
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        random.seed()  # not the zygote's sequence in every run
        from tap_gong_flows import __main__ as cli

        cli.SIGNALS.__init__()  # type: ignore[misc] - as fresh as at a real start
        cli.SIGNALS.install()
        sys.argv = [cli.__file__, *request["argv"]]
        cli.main()
    except SystemExit as end:  # main() flushed its output before it raised this
        os._exit(0 if end.code is None else end.code if isinstance(end.code, int) else 1)
    finally:
        os._exit(70)  # main() did not end as the CLI does: a bug here or in main


def serve() -> None:
    from tap_gong_flows import __main__, tap  # noqa: F401 - the imports paid once

    for signum in (signal.SIGINT, signal.SIGTERM):  # the zygote itself just ends
        signal.signal(signum, signal.SIG_DFL)
    replies = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request)
        print(json.dumps({"pid": pid}), file=replies, flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"code": code}), file=replies, flush=True)


if __name__ == "__main__":
    serve()
