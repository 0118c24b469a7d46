//! Cost allocation end to end: a generated inventory is observed, its generated FOCUS export (two
//! billing periods, three clouds, fees and tax without resources, resources known only from
//! billing) is imported, and allocation by a virtual tag must add up to the file's BilledCost
//! exactly, each value's dollars being those of the resources carrying it. Re-importing changes
//! nothing; a rule change moves exactly the dollars of the resources it retags; a corrected file
//! replaces its period; `as_of` answers as reported before each change; malformed files are
//! refused whole, naming row and column.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;
use vtag_billing::Amount;
use vtag_domain::{CloudResourceId, Provider, ResourceId, TenantId};
use vtag_inventory::{FocusConfig, FocusExport, Generator, GeneratorConfig};
use vtag_service::auth::Role;
use vtag_tagging_config::ConfigDocument;
use vtag_tests::derivation::wait_for_job;
use vtag_tests::harness::{eventually, TestEnv};
use vtag_tests::http::{Api, Reply};

const RESOURCES: usize = 300;
const BILLING_ONLY: usize = 20;
const FROM: &str = "2026-10-25";
const TO: &str = "2026-11-03";

fn amount(v: &Value) -> Amount {
    Amount::parse(v.as_str().unwrap_or_else(|| panic!("an amount, not {v}"))).unwrap().amount
}

fn provider(name: &str) -> Provider {
    Provider::parse(name).unwrap()
}

async fn import(api: &Api, csv: Vec<u8>, source: &str) -> Reply {
    api.upload(&format!("/api/v1/costs/imports?source={source}"), csv, "text/csv").await
}

/// Waits until every import the answer names is in the read model.
async fn projected(read: &Api, answer: &Value) {
    for ledger in answer["ledgers"].as_array().unwrap() {
        let path = ledger["import"].as_str().unwrap().to_owned();
        eventually(Duration::from_secs(60), "the import to be projected", || async {
            (read.get(&path).await.status == 200).then_some(())
        })
        .await;
    }
}

async fn allocation(read: &Api, query: &str) -> Value {
    let r = read.get(&format!("/api/v1/costs/allocation?from={FROM}&to={TO}&{query}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// tag value (or group) → billed cost.
fn by_value(body: &Value) -> BTreeMap<String, Amount> {
    body["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let name = a["tag_value"].as_str().map_or_else(|| format!("({})", a["group"].as_str().unwrap()), str::to_owned);
            (name, amount(&a["billed_cost"]))
        })
        .collect()
}

async fn tag_of(pool: &sqlx::PgPool, key: &str) -> HashMap<Uuid, String> {
    sqlx::query_as::<_, (Uuid, String)>("SELECT resource_id, tag_value FROM virtual_tags WHERE tenant = 'acme' AND tag_key = $1")
        .bind(key)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// What allocation by `key` must say: each resource's billed cost under its value of `key`.
fn expected(billed: &HashMap<Uuid, i128>, tags: &HashMap<Uuid, String>, unallocatable: i128) -> BTreeMap<String, Amount> {
    let mut want: BTreeMap<String, Amount> = BTreeMap::new();
    for (id, cost) in billed {
        let name = tags.get(id).cloned().unwrap_or_else(|| "(untagged)".to_owned());
        *want.entry(name).or_default() += Amount::from_units(*cost);
    }
    want.insert("(unallocatable)".into(), Amount::from_units(unallocatable));
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focus_costs_allocate_by_virtual_tag_to_the_cent() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let pool = env.pool().await;
    let tenant = TenantId::parse("acme").unwrap();

    let generator = Generator::new(GeneratorConfig::new(11)).unwrap();
    let body = json!({"resources": generator.resources(RESOURCES).map(|r| r.observed).collect::<Vec<_>>()});
    assert_eq!(admin.post("/api/v1/resources/observe", &body).await.status, 200);

    let config = FocusConfig { resources: RESOURCES, billing_only: BILLING_ONLY, first_day: FROM.parse().unwrap(), days: 10 };
    let export = FocusExport::new(&generator, config).unwrap();
    let mut csv = Vec::new();
    let totals = export.write_csv(&mut csv).unwrap();
    let billed: HashMap<Uuid, i128> = export
        .billed_by_resource()
        .into_iter()
        .map(|(cloud_id, cost)| {
            let row = export.rows().find(|r| r.resource_id.as_deref() == Some(&cloud_id)).unwrap();
            let p = match row.provider_name.as_str() {
                "AWS" => provider("aws"),
                "Microsoft" => provider("azure"),
                _ => provider("gcp"),
            };
            (ResourceId::derive(&tenant, p, &CloudResourceId::parse(&cloud_id).unwrap()).as_uuid(), cost)
        })
        .collect();
    assert!(billed.len() > RESOURCES, "resources known only from billing are billed too");

    // 1. Import: six ledgers (three clouds × two billing periods), resources known only from billing created.
    let first = import(&admin, csv.clone(), "oct-nov.csv").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let ledgers = first.body["ledgers"].as_array().unwrap();
    assert_eq!(ledgers.len(), 6, "{:?}", first.body);
    assert!(ledgers.iter().all(|l| l["changed"] == true));
    let file_total: Amount = ledgers.iter().map(|l| amount(&l["billed_cost"])).sum();
    assert_eq!(file_total, Amount::from_units(totals.billed), "the answer adds up to the file");
    assert!(first.body["resources"]["recorded"].as_u64().unwrap() >= BILLING_ONLY as u64, "{:?}", first.body["resources"]);
    assert_eq!(first.body["resources"]["monthly_costs_changed"], billed.len() as u64);
    projected(&read, &first.body).await;
    let token = first.body["consistency_token"].as_str().unwrap();
    read.get_consistent("/api/v1/audit-trail?limit=1", token).await;

    // Each resource's monthly cost is its 30-day run rate (the file covers 10 days), to the cent.
    let run_rate = |units: i128| Amount::from_units(units * 30 / 10).to_cents() as i64;
    let recorded: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
        "SELECT id, (monthly_cost * 100)::int8 FROM resources WHERE tenant = 'acme' AND monthly_cost IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(recorded, billed.iter().map(|(id, units)| (*id, run_rate(*units))).collect::<HashMap<_, _>>());

    // 2. Allocation by environment adds up to the file, value by value.
    let env_tags = tag_of(&pool, "environment").await;
    let body = allocation(&read, "tag_key=environment").await;
    let got = by_value(&body);
    assert_eq!(got, expected(&billed, &env_tags, totals.unallocatable_billed));
    assert_eq!(got.values().copied().sum::<Amount>(), Amount::from_units(totals.billed), "allocated + unallocated = the bill");
    let totals_row = &body["totals"][0];
    assert_eq!(amount(&totals_row["billed_cost"]), Amount::from_units(totals.billed));
    assert_eq!(totals_row["currency"], "USD");
    for a in body["allocations"].as_array().unwrap() {
        let days: Amount = a["breakdown"].as_array().unwrap().iter().map(|d| amount(&d["cost"])).sum();
        assert_eq!(days, amount(&a["billed_cost"]), "the daily breakdown adds up");
        assert_eq!(a["breakdown"].as_array().unwrap().len(), 10);
    }
    let production = body["allocations"].as_array().unwrap().iter().find(|a| a["tag_value"] == "production").unwrap();
    let in_production = billed.keys().filter(|id| env_tags.get(id).map(String::as_str) == Some("production")).count();
    assert_eq!(production["resource_count"], in_production as u64);

    // Coverage: the share of cost carrying the key, stage by stage (no rules yet: rules add nothing).
    let coverage = read.get(&format!("/api/v1/costs/coverage?from={FROM}&to={TO}&keys=environment")).await;
    assert_eq!(coverage.status, 200, "{:?}", coverage.body);
    let usd = &coverage.body["currencies"][0];
    assert_eq!(amount(&usd["resource_cost"]) + amount(&usd["unallocatable_cost"]), Amount::from_units(totals.billed));
    let stages = &usd["keys"][0];
    let tagged: Amount = billed.iter().filter(|(id, _)| env_tags.contains_key(id)).map(|(_, c)| Amount::from_units(*c)).sum();
    assert_eq!(amount(&stages["all_sources"]["cost"]), tagged);
    assert_eq!(stages["with_rules"]["cost"], stages["normalized"]["cost"], "no rules yet");
    assert!(amount(&stages["native_clean"]["cost"]) < amount(&stages["normalized"]["cost"]), "normalization adds coverage: {stages}");
    assert!(stages["all_sources"]["cost_share"].as_f64().unwrap() <= 100.0);

    // GraphQL answers the same.
    let gql = read
        .post(
            "/graphql",
            &json!({"query": format!("{{ costAllocation(tagKey: \"environment\", dateRange: {{start: \"{FROM}\", end: \"{TO}\"}}) {{ tagValue group currency totalCost resourceCount breakdown {{ date cost }} }} }}")}),
        )
        .await;
    let entries = gql.body["data"]["costAllocation"].as_array().unwrap_or_else(|| panic!("{:?}", gql.body));
    let gql_total: Amount = entries.iter().map(|e| amount(&e["totalCost"])).sum();
    assert_eq!(gql_total, Amount::from_units(totals.billed));
    assert_eq!(entries.len(), body["allocations"].as_array().unwrap().len());

    // 3. The same file again changes nothing.
    let again = import(&admin, csv.clone(), "oct-nov-again.csv").await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert!(again.body["ledgers"].as_array().unwrap().iter().all(|l| l["changed"] == false));
    assert_eq!(again.body["resources"]["recorded"], 0);
    assert_eq!(again.body["resources"]["monthly_costs_changed"], 0);
    let before_rule = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // 4. A rule retags one account's resources: exactly their dollars move.
    let account = generator.accounts()[0].id().to_owned();
    let mut doc = serde_json::to_value(ConfigDocument::initial()).unwrap();
    let mut rates: Vec<i64> = billed.values().map(|u| run_rate(*u)).collect();
    rates.sort();
    let threshold = rates[rates.len() / 2];
    doc["rules"] = json!([{"id": "sandbox-account", "key": "environment", "priority": 1,
                            "when": {"field": "account", "equals": account}, "set": "sandbox"},
                          {"id": "big-spender", "key": "cost-tier", "priority": 1,
                            "when": {"field": "monthly_cost", "gte": threshold as f64 / 100.0}, "set": "high"}]);
    let published = admin.send(Method::PUT, "/api/v1/tagging-config", Some(&doc), &[]).await;
    assert_eq!(published.status, 202, "{:?}", published.body);
    wait_for_job(&read, published.body["job"].as_str().unwrap()).await;
    let in_account: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM resources WHERE tenant = 'acme' AND account_id = $1")
        .bind(&account)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!in_account.is_empty());
    let moved: Amount = in_account.iter().filter_map(|id| billed.get(id)).map(|c| Amount::from_units(*c)).sum();
    let after = by_value(&allocation(&read, "tag_key=environment").await);
    assert_eq!(after.get("sandbox").copied().unwrap_or_default(), moved + got.get("sandbox").copied().unwrap_or_default() - sandbox_before(&billed, &env_tags, &in_account));
    assert_eq!(after, expected(&billed, &tag_of(&pool, "environment").await, totals.unallocatable_billed));
    assert_eq!(after.values().copied().sum::<Amount>(), Amount::from_units(totals.billed));
    // The monthly-cost rule tagged exactly the resources at or above the threshold.
    let high: Amount = billed.values().filter(|u| run_rate(**u) >= threshold).map(|u| Amount::from_units(*u)).sum();
    let tiers = by_value(&allocation(&read, "tag_key=cost-tier").await);
    assert_eq!(tiers.get("high").copied(), Some(high), "{tiers:?}");

    // As reported before the rule: the original allocation.
    let as_of = allocation(&read, &format!("tag_key=environment&as_of={}", before_rule.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))).await;
    assert_eq!(by_value(&as_of), got);

    // 5. A corrected file for the periods replaces them; as_of before it still sees the original.
    let before_correction = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let text = String::from_utf8(csv.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let (first_amount, rest) = lines[1].split_once(',').unwrap();
    let corrected_amount = Amount::parse(first_amount).unwrap().amount + Amount::from_cents(1234);
    lines[1] = format!("{corrected_amount},{rest}");
    let corrected = import(&admin, (lines.join("\n") + "\n").into_bytes(), "corrected.csv").await;
    assert_eq!(corrected.status, 201, "{:?}", corrected.body);
    let changed: Vec<&Value> = corrected.body["ledgers"].as_array().unwrap().iter().filter(|l| l["changed"] == true).collect();
    assert_eq!(changed.len(), 1, "only the corrected ledger is replaced");
    assert!(changed[0]["replaced_import_id"].is_string());
    projected(&read, &corrected.body).await;
    let now = by_value(&allocation(&read, "tag_key=environment").await);
    assert_eq!(now.values().copied().sum::<Amount>(), Amount::from_units(totals.billed) + Amount::from_cents(1234));
    let then = by_value(&allocation(&read, &format!("tag_key=environment&as_of={}", before_correction.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))).await);
    assert_eq!(then, after);
    let history = read.get("/api/v1/costs/imports?all=true").await;
    assert_eq!(history.body["imports"].as_array().unwrap().len(), 7, "six imports and one correction");

    // 6. Filters: one provider's resources (no pools), and a tag filter.
    let aws = by_value(&allocation(&read, "tag_key=environment&provider=aws").await);
    assert!(!aws.contains_key("(unallocatable)"));
    let prod_only = allocation(&read, "tag_key=environment&tags=environment=production").await;
    assert!(prod_only["allocations"].as_array().unwrap().iter().all(|a| a["tag_value"] == "production"));

    // 7. Split rules share the pools out; every pool is conserved exactly, direct costs stay.
    let invalid = admin
        .send(Method::PUT, "/api/v1/cost-splits", Some(&json!({"splits": [{"id": "x", "key": "environment",
            "pool": {"unallocatable": true}, "method": "fixed", "percentages": {"production": 60, "staging": 30}}]})), &[])
        .await;
    assert_eq!(invalid.status, 422, "{:?}", invalid.body);
    assert_eq!((invalid.body["errors"][0]["field"].as_str(), invalid.body["errors"][0]["rule"].as_str()), (Some("splits[0].percentages"), Some("sum")));
    let before_splits = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let splits = json!({"splits": [
        {"id": "support-and-tax", "key": "environment", "pool": {"unallocatable": true}, "method": "proportional"},
        {"id": "untagged-even", "key": "environment", "pool": {"untagged": true}, "method": "even", "to": ["production", "staging", "development"]},
        {"id": "sandbox-fixed", "key": "environment", "pool": {"tag": {"key": "environment", "value": "sandbox"}}, "method": "fixed",
         "percentages": {"production": "33.33", "staging": "33.33", "development": "33.34"}},
        {"id": "other-key", "key": "team", "pool": {"untagged": true}, "method": "even"}
    ]});
    let put = admin.send(Method::PUT, "/api/v1/cost-splits", Some(&splits), &[]).await;
    assert_eq!(put.status, 201, "{:?}", put.body);
    assert_eq!(put.body["version"], 1);
    eventually(Duration::from_secs(30), "the split rules to be projected", || async {
        (read.get("/api/v1/cost-splits").await.body["version"] == 1).then_some(())
    })
    .await;
    let shared = allocation(&read, "tag_key=environment").await;
    let split_now = by_value(&shared);
    assert_eq!(split_now.values().copied().sum::<Amount>(), now.values().copied().sum::<Amount>(), "splitting conserves the bill");
    for gone in ["(unallocatable)", "(untagged)", "sandbox"] {
        assert!(!split_now.contains_key(gone), "{gone} was shared out: {split_now:?}");
    }
    let applied = shared["splits"].as_array().unwrap();
    assert_eq!(applied.iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(), ["support-and-tax", "untagged-even", "sandbox-fixed"]);
    for s in applied {
        let shares: Amount = s["shares"].as_array().unwrap().iter().map(|x| amount(&x["billed_cost"])).sum();
        assert_eq!(shares, amount(&s["pool_billed_cost"]), "{} conserves its pool exactly", s["id"]);
    }
    let pool_of = |id: &str| amount(&applied.iter().find(|s| s["id"] == id).unwrap()["pool_billed_cost"]);
    assert_eq!(pool_of("support-and-tax"), now["(unallocatable)"]);
    assert_eq!(pool_of("untagged-even"), now["(untagged)"]);
    assert_eq!(pool_of("sandbox-fixed"), now["sandbox"]);
    for entry in shared["allocations"].as_array().unwrap() {
        let value = entry["tag_value"].as_str().unwrap();
        let direct = now.get(value).copied().unwrap_or_default();
        assert_eq!(amount(&entry["billed_cost"]) - amount(&entry["shared_billed_cost"]), direct, "{value}: direct cost unchanged");
    }
    // Fixed shares follow the percentages (to within one 10⁻¹⁰ unit per day of rounding).
    let fixed = applied.iter().find(|s| s["id"] == "sandbox-fixed").unwrap();
    let dev = fixed["shares"].as_array().unwrap().iter().find(|x| x["tag_value"] == "development").unwrap();
    let want = now["sandbox"].units() * 3334 / 10_000;
    assert!((amount(&dev["billed_cost"]).units() - want).abs() <= 10, "{dev:?} vs {want}");
    // As reported before the rules existed: nothing shared.
    let unsplit = allocation(&read, &format!("tag_key=environment&as_of={}", before_splits.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))).await;
    assert_eq!(by_value(&unsplit), now);
    assert_eq!(unsplit["splits"], json!([]));

    queries.stop().await;
    projector.stop().await;
    commands.stop().await;
}

/// Resources of the retagged account that were sandbox already (their dollars do not move).
fn sandbox_before(billed: &HashMap<Uuid, i128>, tags: &HashMap<Uuid, String>, account: &[Uuid]) -> Amount {
    account.iter().filter(|id| tags.get(id).map(String::as_str) == Some("sandbox")).filter_map(|id| billed.get(id)).map(|c| Amount::from_units(*c)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_billing_files_are_refused_whole() {
    let env = TestEnv::new().await;
    let commands = env.start_command_api().await;
    let projector = env.start_projector();
    let queries = env.start_query_api().await;
    let admin = Api::new(commands.url(""), Some(env.token("acme", "fin@acme.test", Role::Admin)));
    let read = Api::new(queries.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));
    let viewer = Api::new(commands.url(""), Some(env.token("acme", "viewer@acme.test", Role::Viewer)));

    let generator = Generator::new(GeneratorConfig::new(5)).unwrap();
    let export = FocusExport::new(&generator, FocusConfig { resources: 50, billing_only: 0, first_day: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(), days: 3 }).unwrap();
    let mut csv = Vec::new();
    export.write_csv(&mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();

    // A bad number on the last row: everything before it was fine, and nothing is imported.
    let mut bad_number: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let last = bad_number.len() - 1;
    let mut cells: Vec<String> = bad_number[last].split(',').map(str::to_owned).collect();
    cells[column("EffectiveCost")] = "12.5x".to_owned();
    bad_number[last] = cells.join(",");
    let r = import(&admin, (bad_number.join("\n") + "\n").into_bytes(), "bad.csv").await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["row"], last as u64);
    assert_eq!(r.body["column"], "EffectiveCost");
    assert_eq!(r.body["errors"][0]["field"], "EffectiveCost");
    assert_eq!(r.body["errors"][0]["rule"], "number");

    // A missing required column.
    let without: String = text.replacen("BilledCost,", "", 1).lines().next().unwrap().to_owned() + "\n";
    let r = import(&admin, without.into_bytes(), "no-billed.csv").await;
    assert_eq!((r.status.as_u16(), r.body["column"].as_str()), (422, Some("BilledCost")), "{:?}", r.body);
    assert_eq!(r.body["errors"][0]["rule"], "required_column");

    // Bad JSON in Tags.
    let tags = column("Tags");
    let target = lines.iter().position(|l| l.contains("{\"\"")).expect("a row with tags");
    let broken = text.lines().enumerate().map(|(i, l)| if i == target { l.replacen("{\"\"", "{\"\"oops", 1).replacen("\"\":", "\"\" ", 1) } else { l.to_owned() }).collect::<Vec<_>>().join("\n");
    let r = import(&admin, broken.into_bytes(), "bad-tags.csv").await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!((r.body["row"].as_u64(), r.body["column"].as_str()), (Some(target as u64), Some("Tags")), "{:?} (Tags is column {tags})", r.body);

    // Nothing of any of them was recorded: no import, no resource.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let imports = read.get("/api/v1/costs/imports?all=true").await;
    assert_eq!(imports.body["imports"], json!([]), "{:?}", imports.body);
    let pool = env.pool().await;
    let resources: i64 = sqlx::query_scalar("SELECT count(*) FROM resources WHERE tenant = 'acme'").fetch_one(&pool).await.unwrap();
    assert_eq!(resources, 0);

    // Viewers cannot import.
    assert_eq!(import(&viewer, text.clone().into_bytes(), "x.csv").await.status, 403);

    queries.stop().await;
    projector.stop().await;
    commands.stop().await;
}
