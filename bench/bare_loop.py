"""The yardstick for the tap's CPU: the same answers with nothing but requests and json.

Reads the tap's own config file, fetches every owner's pages one after the other with one
requests.Session, and writes each record, with the two fields the tap adds, as a JSON line.
With --instances it asks POST /v2/flows/prospects for the config's crm_prospect_ids_file
instead, 100 sorted ids a call, and writes each instance and its change row (a first pass: every
instance is new), the records the tap's flow_instances and flow_instance_changes emit.

    python -m bench.bare_loop --config config.json > records.jsonl
    python -m bench.bare_loop --instances --config config.json > records.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import typing as t
from pathlib import Path

import requests

IDS_PER_CALL = 100  # the tap's first batch size (tap_gong_flows/id_batches.py)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_loop")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--instances", action="store_true", help="the prospects endpoint")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    session = requests.Session()
    session.auth = (config["access_key"], config["access_key_secret"])
    if args.instances:
        instances(config, session)
    else:
        flows(config, session)
    return 0


def flows(config: dict[str, t.Any], session: requests.Session) -> None:
    url = config["api_url"].rstrip("/") + "/v2/flows"
    owners = sorted({e.strip().lower() for e in config["flow_owner_emails"]})
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


def instances(config: dict[str, t.Any], session: requests.Session) -> None:
    url = config["api_url"].rstrip("/") + "/v2/flows/prospects"
    text = Path(config["crm_prospect_ids_file"]).read_text(encoding="utf-8")
    ids = sorted({line.strip() for line in text.splitlines() if line.strip()})
    seen_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write = sys.stdout.write
    for start in range(0, len(ids), IDS_PER_CALL):
        batch = {"crmProspectsIds": ids[start : start + IDS_PER_CALL]}
        response = session.post(url, json=batch, timeout=60)
        response.raise_for_status()
        for record in response.json()["prospectsAssigned"]:
            write(json.dumps(record) + "\n")
            change = {
                "flowInstanceId": record["flowInstanceId"],
                "crmProspectId": record.get("crmProspectId"),
                "flowId": record.get("flowId"),
                "previous_status": None,
                "status": record["flowInstanceStatus"],
                "seen_at": seen_at,
            }
            write(json.dumps(change) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
