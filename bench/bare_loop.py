"""The yardstick for the tap's CPU: the same pages with nothing but requests and json.

Reads the tap's own config file, fetches every owner's pages one after the other with one
requests.Session, and writes each record, with the two fields the tap adds, as a JSON line.

    python -m bench.bare_loop --config config.json > records.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_loop")
    parser.add_argument("--config", type=Path, required=True)
    config = json.loads(parser.parse_args(argv).config.read_text())
    url = config["api_url"].rstrip("/") + "/v2/flows"
    owners = sorted({e.strip().lower() for e in config["flow_owner_emails"]})
    session = requests.Session()
    session.auth = (config["access_key"], config["access_key_secret"])
    write = sys.stdout.write
    for owner in owners:
        params = {"flowOwnerEmail": owner}
        while True:
            response = session.get(url, params=params, timeout=60)
            response.raise_for_status()
            body = response.json()
            for record in body["flows"]:
                record["flow_owner_email"] = owner
                record["workspace_id"] = None
                write(json.dumps(record) + "\n")
            cursor = body["records"].get("cursor")
            if not cursor:
                break
            params = {"flowOwnerEmail": owner, "cursor": cursor}
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
