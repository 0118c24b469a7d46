#!/usr/bin/env python3
"""Loads a realistic multi-cloud demo inventory into a running vtag.

    scripts/demo-data.py [--command-url URL] [--query-url URL] [--token JWT] [--summary FILE]
    scripts/demo-data.py --dry-run          # print the observe payloads, send nothing

About 500 AWS / Azure / GCP resources from the synthetic inventory generator (vtag-generate, crate
inventory/, fixed seed): names that follow conventions (web-server-prod-001, payments-api-stg-007,
...), a dozen accounts / subscriptions / projects that each mostly belong to one team, and native
tags as messy as real ones (env / Env / Environment with PROD / prod / Production, CostCenter /
cost_center / costcenter, stray spaces, missing and wrong tags). They are observed through
POST /api/v1/resources/observe, then a handful of virtual tags are applied by hand through
POST /api/v1/virtual-tags/apply (single, by cloud id, and bulk), with the generator's ground truth
as the values people would set. Then a month of FOCUS billing for the same estate is imported
(POST /api/v1/costs/imports) and a split rule shares fees and tax across teams.

vtag-generate is looked up in $VTAG_BIN_DIR (set by scripts/run-services.sh), then in
target/release and target/debug of this repository (cargo build --release -p vtag-inventory).

The token must be an editor token of the tenant to load into (scripts/run-services.sh mints one
for tenant "demo"). Every request carries a fixed Idempotency-Key and the inventory is generated
from a fixed seed, so running this twice records nothing new. On success a JSON summary (ids of
a few resources worth looking at, the last consistency token) goes to stdout and to --summary.

Environment defaults: VTAG_COMMAND_URL (http://127.0.0.1:18080), VTAG_QUERY_URL
(http://127.0.0.1:18082), VTAG_TOKEN. Only the Python standard library is used.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# A seed whose resource 0 is the AWS instance web-server-prod-001 and whose first 500 resources
# include every example below in its natural form (payments database on AWS, payments API on
# Azure, ETL workers on GCP, untagged machines). The generator's output for a seed is pinned by
# its tests, so this stays true until the generator deliberately changes.
SEED = 725025
COUNT = 500
KEY_PREFIX = "vtag-demo-data-v3"  # Idempotency-Key prefix: bump it if the data set changes

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ inventory ----
def generator_binary():
    dirs = [os.environ.get("VTAG_BIN_DIR"), os.path.join(REPO_ROOT, "target", "release"),
            os.path.join(REPO_ROOT, "target", "debug")]
    for d in filter(None, dirs):
        path = os.path.join(d, "vtag-generate")
        if os.access(path, os.X_OK):
            return path
    raise ApiError(f"vtag-generate not found in {', '.join(filter(None, dirs))}; "
                   "build it: cargo build --release -p vtag-inventory")


def inventory():
    """(observe request bodies, every resource, its truth) from the generator: batches exactly as
    posted, and each resource next to its ground truth (same order)."""
    with tempfile.TemporaryDirectory(prefix="vtag-demo-") as tmp:
        truth_file = os.path.join(tmp, "truth.jsonl")
        out = subprocess.run([generator_binary(), "--seed", str(SEED), "--count", str(COUNT),
                              "--format", "observe-batches", "--truth", truth_file],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        with open(truth_file) as f:
            truths = [json.loads(line)["truth"] for line in f]
    batches = [json.loads(line) for line in out.splitlines()]
    resources = [r for b in batches for r in b["resources"]]
    if len(resources) != len(truths):
        raise ApiError(f"vtag-generate wrote {len(resources)} resources but {len(truths)} truths")
    return batches, resources, truths


# ------------------------------------------------------------------ HTTP ----
class ApiError(Exception):
    pass


def call(method, url, token, body=None, headers=None, retries=5, missing_ok=False):
    """JSON in, JSON out; retries 503 (log briefly unavailable, read model catching up); with
    missing_ok, a 404 is None (not there yet)."""
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    for attempt in range(retries):
        req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            if e.code == 404 and missing_ok:
                return None
            if e.code == 503 and attempt + 1 < retries:
                time.sleep(1 + attempt)
                continue
            raise ApiError(f"{method} {url} -> {e.code}: {text}") from None
        except urllib.error.URLError as e:
            if attempt + 1 < retries:
                time.sleep(1 + attempt)
                continue
            raise ApiError(f"{method} {url}: {e.reason}") from None
    raise ApiError(f"{method} {url}: gave up")


def merge_tokens(*tokens):
    """Consistency tokens are 'partition:offset' lists; the merge keeps the highest offset."""
    pos = {}
    for t in tokens:
        for pair in filter(None, (t or "").split(",")):
            p, off = pair.split(":")
            pos[int(p)] = max(pos.get(int(p), -1), int(off))
    return ",".join(f"{p}:{o}" for p, o in sorted(pos.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--command-url", default=os.environ.get("VTAG_COMMAND_URL", "http://127.0.0.1:18080"))
    ap.add_argument("--query-url", default=os.environ.get("VTAG_QUERY_URL", "http://127.0.0.1:18082"))
    ap.add_argument("--token", default=os.environ.get("VTAG_TOKEN"), help="editor token (default $VTAG_TOKEN)")
    ap.add_argument("--admin-token", default=os.environ.get("VTAG_ADMIN_TOKEN"),
                    help="admin token to publish the starter rules (default $VTAG_ADMIN_TOKEN; without it, no rules)")
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    ap.add_argument("--dry-run", action="store_true", help="print the observe payloads and exit")
    args = ap.parse_args()

    batches, resources, truths = inventory()
    if args.dry_run:
        for body in batches:
            json.dump(body, sys.stdout, indent=2)
            print()
        return 0
    if not args.token:
        ap.error("an editor token is needed: --token or VTAG_TOKEN")
    cmd = args.command_url.rstrip("/")
    qry = args.query_url.rstrip("/")
    log = lambda msg: print(f"[demo-data] {msg}", file=sys.stderr)  # noqa: E731
    t0 = time.monotonic()

    # 1. the collectors' view
    tokens, results = [], []
    for n, body in enumerate(batches):
        observed = call("POST", f"{cmd}/api/v1/resources/observe", args.token, body,
                        {"Idempotency-Key": f"{KEY_PREFIX}-observe-{n}"})
        results += observed["results"]
        tokens.append(observed["consistency_token"])
    failed = [r for r in results if "problem" in r]
    if failed:
        raise ApiError(f"{len(failed)} observations refused: {json.dumps(failed[:3])}")
    ids = {r["resource_id"]: r["id"] for r in results}
    changed = sum(1 for r in results if r.get("changed"))
    log(f"observed {len(results)} resources ({changed} changed) in {time.monotonic() - t0:.1f} s")

    def example(what, *preferences):
        """The first resource matching the first preference that any resource matches."""
        for matches in preferences:
            for r, truth in zip(resources, truths):
                if matches(r, truth):
                    return {"id": ids[r["resource_id"]], "cloud_id": r["resource_id"], "name": r["name"],
                            "provider": r["provider"], "truth": truth}
        raise KeyError(f"{what} is not in the demo inventory")

    def kind(provider, *types):
        return lambda r, t: r["provider"] == provider and (not types or r["resource_type"] in types)

    def where(base, **truth):
        return lambda r, t: base(r, t) and all(t.get(k.replace("_", "-")) == v for k, v in truth.items())

    web1 = example("an AWS web server", lambda r, t: r["provider"] == "aws" and r["name"] == "web-server-prod-001",
                   where(kind("aws", "ec2"), application="web", environment="production"), kind("aws", "ec2"))
    pay_db = example("an AWS payments database", where(kind("aws", "rds"), team="payments", environment="production"),
                     kind("aws", "rds"))
    az_pay = example("an Azure payments API", where(kind("azure", "vm"), application="payments", environment="production"),
                     where(kind("azure"), team="payments"), kind("azure"))
    untagged = lambda base: lambda r, t: base(r, t) and not r["native_tags"]  # noqa: E731
    jump = example("an untagged Azure VM", untagged(kind("azure", "vm")), untagged(kind("azure")), kind("azure"))
    etl = example("a GCP ETL worker", where(kind("gcp", "compute-instance"), application="etl"),
                  kind("gcp", "compute-instance"))
    notebook = example("an untagged GCP instance", untagged(kind("gcp", "compute-instance")), untagged(kind("gcp")),
                       kind("gcp"))

    # 2. the FinOps team's starter rules: the seed's three, an account → owner table, the application
    #    from the name, and defaults; publishing re-derives every resource (a job we wait for)
    if args.admin_token:
        doc = call("GET", f"{qry}/api/v1/tagging-config", args.admin_token)
        doc.pop("version", None)
        owners = {}
        for r, t in zip(resources, truths):
            if t.get("owner"):
                owners.setdefault(r["account_id"], t["owner"])
        doc["rules"] = [
            {"id": "prod-by-name", "key": "environment", "priority": 10,
             "description": "Names containing prod are production (seed example)",
             "when": {"field": "name", "contains": "prod"}, "set": "production"},
            {"id": "stg-by-name", "key": "environment", "priority": 20,
             "when": {"field": "name", "regex": "(^|[-_])stg([-_0-9]|$)"}, "set": "staging"},
            {"id": "owner-by-account", "key": "owner", "priority": 10,
             "description": "Each account belongs to one owner", "lookup": {"field": "account", "table": owners}},
            {"id": "databases-are-sensitive", "key": "data-classification", "priority": 10,
             "description": "Databases hold sensitive data (seed example: type rds)",
             "when": {"field": "resource_type", "in": ["rds", "sql-database", "cloud-sql"]}, "set": "sensitive"},
            {"id": "app-from-name", "key": "application", "priority": 50,
             "set_from_name": {"regex": "^(?P<app>[a-z]+)-", "group": "app"}},
        ]
        doc["defaults"] = {"cost-center": "unallocated"}
        published = call("PUT", f"{cmd}/api/v1/tagging-config", args.admin_token, doc,
                         {"Idempotency-Key": f"{KEY_PREFIX}-rules"})
        job = published.get("job")
        for _ in range(600):
            progress = call("GET", f"{qry}{job}", args.admin_token, retries=1, missing_ok=True) if job else {"done": True}
            if progress and progress.get("done"):
                break
            time.sleep(0.2)
        else:
            raise ApiError(f"the starter rules' re-derivation did not finish: {progress}")
        log(f"published starter rules (version {published.get('version')}), re-derived {progress.get('changed', 0)} resources")

        # the seed's Appendix C compliance policies (docs/compliance.md): the evaluator judges the
        # estate under them and records violations on the compliance-events topic
        policies = {"format_version": 1, "policies": [
            {"policy_id": "prod-tagging-standard", "policy_name": "Production Environment Tagging Standard",
             "description": "All production resources must have comprehensive tagging",
             "policy_type": "conditional_requirement", "enabled": True,
             "rules": {"if_condition": {"field": "tags.environment", "operator": "equals", "value": "production"},
                       "then_require": [
                           {"tag_key": "cost-center", "validation": {"type": "regex", "pattern": "^[A-Z]{3}-[0-9]{3}$",
                                                                      "message": "Cost center must be format: ABC-123"}},
                           {"tag_key": "owner", "validation": {"type": "email", "message": "Owner must be valid email address"}},
                           {"tag_key": "backup", "validation": {"type": "enum", "allowed_values": ["daily", "hourly", "weekly"],
                                                                 "message": "Backup must be daily, hourly, or weekly"}},
                           {"tag_key": "data-classification",
                            "validation": {"type": "enum", "allowed_values": ["public", "internal", "confidential", "restricted"],
                                           "message": "Invalid data classification"}}],
                       "severity": "critical", "grace_period_hours": 24, "auto_remediate": False}},
            {"policy_id": "high-cost-governance", "policy_name": "High Cost Resource Governance",
             "description": "Resources exceeding $500/month require detailed justification",
             "policy_type": "cost_threshold", "enabled": True,
             "rules": {"cost_threshold": {"amount": 500, "currency": "USD", "period": "monthly"},
                       "required_tags": ["business-unit", "project-justification", "approval-id", "review-date"],
                       "validation": {
                           "approval-id": {"type": "regex", "pattern": "^JIRA-[0-9]{4,}$",
                                           "message": "Approval ID must reference JIRA ticket"},
                           "review-date": {"type": "date", "format": "YYYY-MM-DD", "must_be_future": False,
                                           "max_age_days": 90, "message": "Review date must be within last 90 days"}},
                       "severity": "high", "escalation": {"to": "finance-team@company.com", "after_hours": 48}}},
        ]}
        put = call("PUT", f"{cmd}/api/v1/policies", args.admin_token, policies, {"Idempotency-Key": f"{KEY_PREFIX}-policies"})
        log(f"published the seed's compliance policies (version {put.get('version')})")

    # 3. people fixing what the native tags got wrong (with the values the generator knows are right)
    applies = [
        ("web1-env-1", {"resource_id": web1["id"], "key": "environment", "value": "prod", "source": "manual"}),
        # a correction, so the audit trail shows an old and a new value
        ("web1-env-2", {"resource_id": web1["id"], "key": "environment", "value": "production",
                        "source": "user_confirmed", "confidence": 1.0}),
        ("web1-cc", {"resource_id": web1["id"], "key": "cost-center", "value": web1["truth"]["cost-center"],
                     "source": "manual"}),
        ("paydb-cc", {"resource_id": pay_db["id"], "key": "cost-center", "value": pay_db["truth"]["cost-center"],
                      "source": "user_confirmed", "confidence": 0.95}),
        ("azpay-owner", {"resource_id": az_pay["id"], "key": "owner", "value": az_pay["truth"]["owner"],
                         "source": "manual"}),
        ("jump-env", {"resource_id": jump["id"], "key": "environment", "value": jump["truth"]["environment"],
                      "source": "user_confirmed", "confidence": 0.9}),
        ("notebook-env", {"resource_id": notebook["id"], "key": "environment",
                          "value": notebook["truth"]["environment"], "source": "manual"}),
        # by the cloud's own id instead of vtag's uuid
        ("etl-team", {"provider": "gcp", "cloud_resource_id": etl["cloud_id"], "key": "team",
                      "value": etl["truth"]["team"], "source": "user_confirmed", "confidence": 0.85}),
    ]
    for step, body in applies:
        r = call("POST", f"{cmd}/api/v1/virtual-tags/apply", args.token, body, {"Idempotency-Key": f"{KEY_PREFIX}-{step}"})
        tokens.append(r.get("consistency_token"))
    # bulk: every resource of the payments team, whatever its cloud
    payments = [ids[r["resource_id"]] for r, t in zip(resources, truths) if t.get("team") == "payments"]
    bulk = call("POST", f"{cmd}/api/v1/virtual-tags/apply", args.token,
                {"resource_ids": payments, "key": "team", "value": "payments", "source": "manual"},
                {"Idempotency-Key": f"{KEY_PREFIX}-bulk-team-payments"})
    refused = [r for r in bulk["results"] if "problem" in r]
    if refused:
        raise ApiError(f"bulk apply refused {len(refused)} of {len(payments)}: {json.dumps(refused[:3])}")
    tokens.append(bulk["consistency_token"])
    token = merge_tokens(*tokens)
    log(f"applied {len(applies)} single and 1 bulk ({len(payments)} resources) virtual tags")

    # 4. read our own writes back: proves the projector has folded everything
    back = call("GET", f"{qry}/api/v1/resources/{web1['id']}/virtual-tags", args.token,
                headers={"X-Consistency-Token": token})
    got = {t["key"]: t["value"] for t in back["virtual_tags"]}
    if got.get("environment") != "production":
        raise ApiError(f"read model does not show the applied tags yet: {got}")
    log(f"read model caught up (token {token}) in {time.monotonic() - t0:.1f} s total")

    # 5. a month of FOCUS billing for the same estate (plus a few resources known only from billing),
    #    and a split rule that shares support fees and tax across teams in proportion to their cost
    focus = subprocess.run([generator_binary(), "--seed", str(SEED), "--count", str(COUNT), "--format", "focus",
                            "--days", "30", "--first-day", "2026-10-01", "--billing-only", "10"],
                           check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    req = urllib.request.Request(f"{cmd}/api/v1/costs/imports?source=demo-focus-2026-10.csv", data=focus, method="POST",
                                 headers={"Authorization": f"Bearer {args.token}", "Content-Type": "text/csv"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        imported = json.loads(resp.read())
    tokens.append(imported.get("consistency_token"))
    token = merge_tokens(*tokens)
    log(f"imported {imported['rows']} FOCUS rows into {len(imported['ledgers'])} ledgers")
    if args.admin_token:
        call("PUT", f"{cmd}/api/v1/cost-splits", args.admin_token, {"splits": [
            {"id": "support-and-tax", "description": "fees without a resource, shared by each team's own cost",
             "key": "team", "pool": {"unallocatable": True}, "method": "proportional"}]},
             {"Idempotency-Key": f"{KEY_PREFIX}-splits"})
    for ledger in imported["ledgers"]:
        for _ in range(60):
            if call("GET", f"{qry}{ledger['import']}", args.token, missing_ok=True) is not None:
                break
            time.sleep(0.5)

    examples = {"aws_web": web1, "aws_payments_db": pay_db, "azure_payments_api": az_pay, "gcp_etl_worker": etl}
    summary = {
        "tenant": "demo",
        "seed": SEED,
        "resources": len(resources),
        "by_provider": {p: sum(1 for r in resources if r["provider"] == p) for p in ("aws", "azure", "gcp")},
        "examples": {k: {f: v[f] for f in ("id", "cloud_id", "name", "provider")} for k, v in examples.items()},
        "payments_bulk": len(payments),
        "focus_rows": imported["rows"],
        "billing_period": "2026-10-01/2026-10-31",
        "consistency_token": token,
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    text = json.dumps(summary, indent=2)
    if args.summary:
        tmp = f"{args.summary}.tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.summary)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ApiError, KeyError, subprocess.CalledProcessError) as e:
        print(f"[demo-data] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
