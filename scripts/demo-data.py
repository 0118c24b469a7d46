#!/usr/bin/env python3
"""Loads a small, realistic multi-cloud demo inventory into a running vtag.

    scripts/demo-data.py [--command-url URL] [--query-url URL] [--token JWT] [--summary FILE]
    scripts/demo-data.py --dry-run          # print the observe payload, send nothing

About 60 AWS / Azure / GCP resources whose names follow conventions (web-server-prod-001,
payments-api-stg-01, ...) and whose native tags are as messy as real ones (env / Env /
Environment with PROD / prod / Production, CostCenter / cost_center / costcenter, stray spaces,
missing tags), observed through POST /api/v1/resources/observe, then a handful of virtual tags
applied by hand through POST /api/v1/virtual-tags/apply (single, by cloud id, and bulk).

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
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SEED = 20251117
KEY_PREFIX = "vtag-demo-data-v1"  # Idempotency-Key prefix: bump it if the data set changes

AWS_PROD = "123456789012"
AWS_STG = "210987654321"
GCP_PROJECTS = {"analytics": "acme-analytics", "web": "acme-web-prod", "sandbox": "acme-sandbox"}


# ------------------------------------------------------------------ messy native tags ----
class Tagger:
    """Native tags the way a few hundred engineers write them over the years."""

    ENV_KEYS = ["env", "Env", "Environment", "environment", "ENV", "Environment "]
    ENV_VALUES = {
        "prod": ["PROD", "prod", "Production", "production", "Prod ", " prod", "prd"],
        "stg": ["stg", "STAGING", "Staging", "stage", "staging "],
        "dev": ["dev", "DEV", "Development", "development", "sandbox"],
    }
    COST_KEYS = ["CostCenter", "cost_center", "costcenter", "Cost Center", "cost-center", "COSTCENTER"]
    COST_VALUES = {
        "ENG": ["ENG", "eng", "ENG-001", "eng-001 ", "Engineering", "ENG001"],
        "FIN": ["FIN-200", "fin", "FIN", "Finance", "fin-200"],
        "DATA": ["DATA-310", "data", "Data Eng", "DATA310"],
    }
    TEAM_KEYS = ["Team", "team", "owner_team", "Owner-Team"]
    TEAM_VALUES = {
        "platform": ["PLATFORM", "platform", "Platform", "platform-team", " Platform"],
        "payments": ["Payments", "payments", "PAYMENTS", "payments-team", "pay"],
        "data": ["data", "Data Engineering", "DATA", "data-eng"],
        "web": ["web", "Web", "frontend", "WEB "],
    }

    def __init__(self, rng):
        self.rng = rng

    def pick(self, options):
        return self.rng.choice(options)

    def aws_azure(self, env, cost, team, extra=None):
        tags = {}
        r = self.rng.random
        if r() > 0.12:
            tags[self.pick(self.ENV_KEYS)] = self.pick(self.ENV_VALUES[env])
        if r() > 0.25:
            tags[self.pick(self.COST_KEYS)] = self.pick(self.COST_VALUES[cost])
        if r() > 0.3:
            tags[self.pick(self.TEAM_KEYS)] = self.pick(self.TEAM_VALUES[team])
        if r() > 0.7:
            tags["Owner"] = self.pick(["alice@acme.io", "bob@acme.io", "Carol.Diaz@acme.io ", "ops"])
        if r() > 0.8:
            tags[self.pick(["CreatedBy", "created_by", "terraform"])] = self.pick(["terraform", "Terraform", "true", "console"])
        tags.update(extra or {})
        return tags

    def gcp(self, env, cost, team, extra=None):
        """GCP labels are lowercase by rule, which only moves the mess into the values."""
        tags = {}
        r = self.rng.random
        if r() > 0.12:
            value = self.pick(self.ENV_VALUES[env]).strip().lower().replace(" ", "-")
            tags[self.pick(["env", "environment", "stage"])] = value
        if r() > 0.25:
            value = self.pick(self.COST_VALUES[cost]).strip().lower().replace(" ", "-")
            tags[self.pick(["cost_center", "costcenter", "cost-center"])] = value
        if r() > 0.3:
            value = self.pick(self.TEAM_VALUES[team]).strip().lower().replace(" ", "-")
            tags[self.pick(["team", "owner_team"])] = value
        if r() > 0.8:
            tags["goog-managed-by"] = "terraform"
        tags.update(extra or {})
        return tags


# ------------------------------------------------------------------ inventory ----
def inventory(rng):
    tag = Tagger(rng)
    hexid = lambda n: "".join(rng.choice("0123456789abcdef") for _ in range(n))  # noqa: E731
    out = []

    def add(provider, rid, account, region, rtype, name, tags, metadata):
        out.append({
            "provider": provider,
            "resource_id": rid,
            "account_id": account,
            "region": region,
            "resource_type": rtype,
            "name": name,
            "native_tags": tags,
            "metadata": metadata,
        })

    # ---- AWS (30): web fleet, payments, data, plus the usual buckets and functions
    for i in range(1, 7):
        env, acct, region = ("prod", AWS_PROD, "us-east-1") if i <= 4 else ("stg", AWS_STG, "us-east-1")
        name = f"web-server-{env}-{i:03d}"
        add("aws", f"arn:aws:ec2:{region}:{acct}:instance/i-0{hexid(16)}", acct, region, "ec2:instance", name,
            tag.aws_azure(env, "ENG", "web", {"Name": name}),
            {"instance_type": rng.choice(["m5.large", "m5.xlarge", "c6i.large"]), "state": "running"})
    for env, n in (("prod", 3), ("stg", 1)):
        acct = AWS_PROD if env == "prod" else AWS_STG
        for i in range(1, n + 1):
            name = f"payments-api-{env}-{i:02d}"
            add("aws", f"arn:aws:ec2:eu-west-1:{acct}:instance/i-0{hexid(16)}", acct, "eu-west-1", "ec2:instance",
                name, tag.aws_azure(env, "FIN", "payments", {"Name": name}),
                {"instance_type": "m6i.large", "state": "running"})
    for name, env, engine in (("payments-db-prod", "prod", "postgres"), ("payments-db-stg", "stg", "postgres"),
                              ("orders-db-prod", "prod", "aurora-mysql"), ("auth-db-prod", "prod", "postgres")):
        acct = AWS_PROD if env == "prod" else AWS_STG
        add("aws", f"arn:aws:rds:us-east-1:{acct}:db:{name}", acct, "us-east-1", "rds:db", name,
            tag.aws_azure(env, "FIN" if name.startswith("payments") else "ENG",
                          "payments" if name.startswith("payments") else "platform"),
            {"engine": engine, "instance_class": rng.choice(["db.r6g.large", "db.t4g.medium"]), "multi_az": "true"})
    for bucket, env, team in (("acme-web-assets-prod", "prod", "web"), ("acme-logs-prod-us-east-1", "prod", "platform"),
                              ("acme-payments-exports-prod", "prod", "payments"), ("acme-tf-state", "prod", "platform"),
                              ("acme-web-assets-stg", "stg", "web"), ("acme-athena-results-dev", "dev", "data")):
        add("aws", f"arn:aws:s3:::{bucket}", AWS_PROD if env != "stg" else AWS_STG, "us-east-1", "s3:bucket", bucket,
            tag.aws_azure(env, "ENG", team), {"versioning": rng.choice(["Enabled", "Suspended"])})
    for fn, env in (("invoice-generator-prod", "prod"), ("invoice-generator-stg", "stg"),
                    ("thumbnailer-prod", "prod"), ("slack-alerts-dev", "dev")):
        acct = AWS_STG if env == "stg" else AWS_PROD
        add("aws", f"arn:aws:lambda:eu-west-1:{acct}:function:{fn}", acct, "eu-west-1", "lambda:function", fn,
            tag.aws_azure(env, "FIN" if fn.startswith("invoice") else "ENG",
                          "payments" if fn.startswith("invoice") else "platform"),
            {"runtime": rng.choice(["python3.12", "nodejs20.x"]), "memory_mb": rng.choice(["256", "512", "1024"])})
    for lb, env in (("web-alb-prod", "prod"), ("payments-nlb-prod", "prod")):
        add("aws", f"arn:aws:elasticloadbalancing:us-east-1:{AWS_PROD}:loadbalancer/app/{lb}/{hexid(16)}", AWS_PROD,
            "us-east-1", "elasticloadbalancing:loadbalancer", lb,
            tag.aws_azure(env, "ENG", "web" if lb.startswith("web") else "payments"), {"scheme": "internet-facing"})
    add("aws", f"arn:aws:eks:us-east-1:{AWS_PROD}:cluster/platform-eks-prod", AWS_PROD, "us-east-1", "eks:cluster",
        "platform-eks-prod", tag.aws_azure("prod", "ENG", "platform"), {"version": "1.30"})
    add("aws", f"arn:aws:dynamodb:us-east-1:{AWS_PROD}:table/orders-prod", AWS_PROD, "us-east-1", "dynamodb:table",
        "orders-prod", tag.aws_azure("prod", "ENG", "platform"), {"billing_mode": "PAY_PER_REQUEST"})
    add("aws", f"arn:aws:sqs:eu-west-1:{AWS_PROD}:payments-events-prod", AWS_PROD, "eu-west-1", "sqs:queue",
        "payments-events-prod", tag.aws_azure("prod", "FIN", "payments"), {"fifo": "false"})

    # ---- Azure (16): payments and an internal portal
    sub_prod = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    sub_stg = str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def az(sub, rg, kind, name):
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{kind}/{name}"

    for env, n in (("prod", 3), ("stg", 2)):
        sub = sub_prod if env == "prod" else sub_stg
        for i in range(1, n + 1):
            name = f"payments-api-{env}-{i:02d}"
            add("azure", az(sub, f"rg-payments-{env}", "Microsoft.Compute/virtualMachines", name), sub, "westeurope",
                "Microsoft.Compute/virtualMachines", name, tag.aws_azure(env, "FIN", "payments"),
                {"vm_size": rng.choice(["Standard_D4s_v5", "Standard_D2s_v5"]), "os": "Linux"})
    for env in ("prod", "stg"):
        sub = sub_prod if env == "prod" else sub_stg
        add("azure", az(sub, f"rg-payments-{env}", "Microsoft.Sql/servers", f"sql-payments-{env}/databases/ledger"),
            sub, "westeurope", "Microsoft.Sql/servers/databases", f"ledger-{env}", tag.aws_azure(env, "FIN", "payments"),
            {"sku": "GP_Gen5_4"})
        add("azure", az(sub, f"rg-payments-{env}", "Microsoft.Storage/storageAccounts", f"stpayments{env}01"),
            sub, "westeurope", "Microsoft.Storage/storageAccounts", f"stpayments{env}01",
            tag.aws_azure(env, "FIN", "payments"), {"sku": "Standard_GRS"})
        add("azure", az(sub, f"rg-payments-{env}", "Microsoft.KeyVault/vaults", f"kv-payments-{env}"),
            sub, "westeurope", "Microsoft.KeyVault/vaults", f"kv-payments-{env}", tag.aws_azure(env, "FIN", "payments"),
            {"sku": "standard"})
    for i in range(1, 4):
        name = f"portal-web-prod-{i:02d}"
        add("azure", az(sub_prod, "rg-portal-prod", "Microsoft.Web/sites", name), sub_prod, "northeurope",
            "Microsoft.Web/sites", name, tag.aws_azure("prod", "ENG", "web"), {"plan": "P1v3"})
    add("azure", az(sub_prod, "rg-platform-prod", "Microsoft.ContainerService/managedClusters", "aks-platform-prod"),
        sub_prod, "westeurope", "Microsoft.ContainerService/managedClusters", "aks-platform-prod",
        tag.aws_azure("prod", "ENG", "platform"), {"kubernetes_version": "1.30.3"})
    add("azure", az(sub_stg, "rg-sandbox-dev", "Microsoft.Compute/virtualMachines", "jumpbox-dev-01"), sub_stg,
        "westeurope", "Microsoft.Compute/virtualMachines", "jumpbox-dev-01", {}, {"vm_size": "Standard_B2s"})

    # ---- GCP (15): analytics and the web frontend
    an, web, sb = GCP_PROJECTS["analytics"], GCP_PROJECTS["web"], GCP_PROJECTS["sandbox"]
    for env, n, zone in (("prod", 3, "europe-west1-b"), ("stg", 2, "europe-west1-b")):
        for i in range(1, n + 1):
            name = f"etl-worker-{env}-{i:02d}"
            add("gcp", f"//compute.googleapis.com/projects/{an}/zones/{zone}/instances/{name}", an, zone,
                "compute.googleapis.com/Instance", name, tag.gcp(env, "DATA", "data"),
                {"machine_type": rng.choice(["n2-standard-4", "e2-standard-8"])})
    for name, env in (("warehouse-pg-prod", "prod"), ("warehouse-pg-stg", "stg")):
        add("gcp", f"//sqladmin.googleapis.com/projects/{an}/instances/{name}", an, "europe-west1",
            "sqladmin.googleapis.com/Instance", name, tag.gcp(env, "DATA", "data"), {"tier": "db-custom-4-16384"})
    for bucket, env in (("acme-analytics-raw-prod", "prod"), ("acme-analytics-curated-prod", "prod"),
                        ("acme-analytics-tmp-stg", "stg")):
        add("gcp", f"//storage.googleapis.com/projects/_/buckets/{bucket}", an, "europe-west1",
            "storage.googleapis.com/Bucket", bucket, tag.gcp(env, "DATA", "data"), {"storage_class": "STANDARD"})
    add("gcp", f"//bigquery.googleapis.com/projects/{an}/datasets/finance_reporting", an, "EU",
        "bigquery.googleapis.com/Dataset", "finance_reporting", tag.gcp("prod", "FIN", "data"), {})
    add("gcp", f"//container.googleapis.com/projects/{web}/locations/europe-west1/clusters/gke-web-prod", web,
        "europe-west1", "container.googleapis.com/Cluster", "gke-web-prod", tag.gcp("prod", "ENG", "web"),
        {"node_pools": "2"})
    for i in range(1, 3):
        name = f"web-frontend-prod-{i:03d}"
        add("gcp", f"//compute.googleapis.com/projects/{web}/zones/europe-west1-c/instances/{name}", web,
            "europe-west1-c", "compute.googleapis.com/Instance", name, tag.gcp("prod", "ENG", "web"),
            {"machine_type": "e2-standard-2"})
    add("gcp", f"//compute.googleapis.com/projects/{sb}/zones/us-central1-a/instances/notebook-dev-01", sb,
        "us-central1-a", "compute.googleapis.com/Instance", "notebook-dev-01", {}, {"machine_type": "e2-medium"})
    return out


# ------------------------------------------------------------------ HTTP ----
class ApiError(Exception):
    pass


def call(method, url, token, body=None, headers=None, retries=5):
    """JSON in, JSON out; retries 503 (log briefly unavailable, read model catching up)."""
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
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    ap.add_argument("--dry-run", action="store_true", help="print the observe payload and exit")
    args = ap.parse_args()

    resources = inventory(random.Random(SEED))
    if args.dry_run:
        json.dump({"resources": resources}, sys.stdout, indent=2)
        print()
        return 0
    if not args.token:
        ap.error("an editor token is needed: --token or VTAG_TOKEN")
    cmd = args.command_url.rstrip("/")
    qry = args.query_url.rstrip("/")
    log = lambda msg: print(f"[demo-data] {msg}", file=sys.stderr)  # noqa: E731
    t0 = time.monotonic()

    # 1. the collectors' view
    observed = call("POST", f"{cmd}/api/v1/resources/observe", args.token, {"resources": resources},
                    {"Idempotency-Key": f"{KEY_PREFIX}-observe"})
    results = observed["results"]
    failed = [r for r in results if "problem" in r]
    if failed:
        raise ApiError(f"{len(failed)} observations refused: {json.dumps(failed[:3])}")
    ids = {r["resource_id"]: r["id"] for r in results}
    changed = sum(1 for r in results if r.get("changed"))
    log(f"observed {len(results)} resources ({changed} changed) in {time.monotonic() - t0:.1f} s")

    def by_name(provider, name):
        for r in resources:
            if r["provider"] == provider and r["name"] == name:
                return {"id": ids[r["resource_id"]], "cloud_id": r["resource_id"], "name": name, "provider": provider}
        raise KeyError(f"{provider}/{name} is not in the demo inventory")

    web1 = by_name("aws", "web-server-prod-001")
    pay_db = by_name("aws", "payments-db-prod")
    az_pay = by_name("azure", "payments-api-prod-01")
    jump = by_name("azure", "jumpbox-dev-01")
    etl = by_name("gcp", "etl-worker-stg-02")
    notebook = by_name("gcp", "notebook-dev-01")

    # 2. people fixing what the native tags got wrong
    tokens = [observed["consistency_token"]]
    applies = [
        ("web1-env-1", {"resource_id": web1["id"], "key": "environment", "value": "prod", "source": "manual"}),
        # a correction, so the audit trail shows an old and a new value
        ("web1-env-2", {"resource_id": web1["id"], "key": "environment", "value": "production",
                        "source": "user_confirmed", "confidence": 1.0}),
        ("web1-cc", {"resource_id": web1["id"], "key": "cost-center", "value": "ENG-001", "source": "manual"}),
        ("paydb-cc", {"resource_id": pay_db["id"], "key": "cost-center", "value": "FIN-200",
                      "source": "user_confirmed", "confidence": 0.95}),
        ("azpay-owner", {"resource_id": az_pay["id"], "key": "owner", "value": "payments-oncall@acme.io",
                         "source": "manual"}),
        ("jump-env", {"resource_id": jump["id"], "key": "environment", "value": "development",
                      "source": "user_confirmed", "confidence": 0.9}),
        ("notebook-env", {"resource_id": notebook["id"], "key": "environment", "value": "development",
                          "source": "manual"}),
        # by the cloud's own id instead of vtag's uuid
        ("etl-team", {"provider": "gcp", "cloud_resource_id": etl["cloud_id"], "key": "team", "value": "data-engineering",
                      "source": "user_confirmed", "confidence": 0.85}),
    ]
    for step, body in applies:
        r = call("POST", f"{cmd}/api/v1/virtual-tags/apply", args.token, body, {"Idempotency-Key": f"{KEY_PREFIX}-{step}"})
        tokens.append(r.get("consistency_token"))
    # bulk: every payments resource, whatever its cloud, belongs to the payments team
    payments = [ids[r["resource_id"]] for r in resources
                if r["name"].startswith(("payments-", "ledger-", "stpayments", "kv-payments", "invoice-"))]
    bulk = call("POST", f"{cmd}/api/v1/virtual-tags/apply", args.token,
                {"resource_ids": payments, "key": "team", "value": "payments", "source": "manual"},
                {"Idempotency-Key": f"{KEY_PREFIX}-bulk-team-payments"})
    refused = [r for r in bulk["results"] if "problem" in r]
    if refused:
        raise ApiError(f"bulk apply refused {len(refused)} of {len(payments)}: {json.dumps(refused[:3])}")
    tokens.append(bulk["consistency_token"])
    token = merge_tokens(*tokens)
    log(f"applied {len(applies)} single and 1 bulk ({len(payments)} resources) virtual tags")

    # 3. read our own writes back: proves the projector has folded everything
    back = call("GET", f"{qry}/api/v1/resources/{web1['id']}/virtual-tags", args.token,
                headers={"X-Consistency-Token": token})
    got = {t["key"]: t["value"] for t in back["virtual_tags"]}
    if got.get("environment") != "production":
        raise ApiError(f"read model does not show the applied tags yet: {got}")
    log(f"read model caught up (token {token}) in {time.monotonic() - t0:.1f} s total")

    summary = {
        "tenant": "demo",
        "resources": len(resources),
        "by_provider": {p: sum(1 for r in resources if r["provider"] == p) for p in ("aws", "azure", "gcp")},
        "examples": {"aws_web": web1, "aws_payments_db": pay_db, "azure_payments_api": az_pay, "gcp_etl_worker": etl},
        "payments_bulk": len(payments),
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
    except (ApiError, KeyError) as e:
        print(f"[demo-data] ERROR: {e}", file=sys.stderr)
        sys.exit(1)
