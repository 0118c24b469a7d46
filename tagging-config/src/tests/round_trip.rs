use serde_json::json;

use super::*;

#[test]
fn yaml_round_trips() {
    let doc = ConfigDocument::from_yaml(EXAMPLE).unwrap();
    let text = doc.to_yaml();
    let again = ConfigDocument::from_yaml(&text).unwrap();
    assert_eq!(again, doc, "{text}");
    assert_eq!(again.to_yaml(), text, "export is stable");
    for initial in [ConfigDocument::initial(), with_rules(json!([]))] {
        assert_eq!(ConfigDocument::from_yaml(&initial.to_yaml()).unwrap(), initial);
    }
}

#[test]
fn json_round_trips() {
    let doc = ConfigDocument::from_yaml(EXAMPLE).unwrap();
    assert_eq!(ConfigDocument::from_json(&doc.to_json()).unwrap(), doc);
}

#[test]
fn awkward_values_survive_export() {
    let d = with_rules(json!([
        {"id": "r", "key": "owner", "priority": 4_000_000_000_u32, "enabled": false,
         "description": "  indented\nline two: with 'quotes', \"doubles\", # and a tab\t\n\n",
         "when": {"any": [
             {"field": "native.aws:cloudformation:stack-name", "in": ["true", "null", "0012", "- x", "", " padded ", "ünïcode ✓", "a: b"]},
             {"field": "monthly_cost", "lt": 0.1},
             {"field": "name", "regex": "^\\d+[a-z]{2}$", "ignore_case": true}
         ]},
         "lookup": {"field": "account", "table": {"012345678901": "Team: Ops", "~": "x", "yes": "no"}},
         "effective_from": "2026-01-01T00:00:00.5Z", "effective_to": "2027-01-01T00:00:00+02:00"}
    ]));
    let text = d.to_yaml();
    assert_eq!(ConfigDocument::from_yaml(&text).unwrap(), d, "{text}");
    d.compile(1).unwrap();
}

#[test]
fn the_example_reads_as_written() {
    let doc = ConfigDocument::from_yaml(EXAMPLE).unwrap();
    assert_eq!(doc.format_version, 1);
    let env = &doc.schema.keys[0];
    assert_eq!(env.value_aliases["PRD"], "production");
    assert!(env.lowercase_values());
    let r = &doc.rules[0];
    assert_eq!(r.effective_from.map(|t| t.to_rfc3339()), Some("2026-01-01T00:00:00+00:00".to_owned()));
    assert_eq!((r.effective_to, r.enabled, r.description.as_deref()), (None, true, Some("Names containing prod are production")));
    assert_eq!(doc.rules[1].lookup.as_ref().unwrap().table["1234567890"], "DevOps");
    // format_version defaults to 1; a rule's JSON form is its YAML form.
    let d = ConfigDocument::from_json(br#"{"schema": {"keys": []}}"#).unwrap();
    assert_eq!(d.format_version, 1);
    let rule = crate::RuleDoc::from_json(&serde_json::to_vec(&doc.rules[2]).unwrap()).unwrap();
    assert_eq!(rule, doc.rules[2]);
}



#[test]
fn any_text_survives_export() {
    let mut samples: Vec<String> = Vec::new();
    let chars = (0u32..0x80).chain([0x85, 0xa0, 0x2028, 0xfeff, 0x1f600]).filter_map(char::from_u32);
    for c in chars {
        samples.extend([format!("{c}"), format!("a{c}b"), format!("{c} a"), format!("a {c}")]);
    }
    let lookalikes = [
        "- x", "? x", ": x", "x: y", "x #y", "&a", "*a", "!x", "|", ">", "%x", "@x", "`x", "[x", "{x", "'x", "\"x", ", x", "...",
        "---", "0x1F", "-0x1F", "0o17", "1e3", ".5", "+1", "-1", "1.", ".inf", ".nan", "inf", "NaN", "NULL", "Null", "~", "", " ",
        "y", "no", "on", "1_000", "12:30", "2026-01-01", "<<", "18446744073709551616",
    ];
    samples.extend(lookalikes.iter().map(|s| (*s).to_owned()));
    for s in samples {
        let d = with_rules(json!([{"id": "r", "key": "owner", "priority": 4, "description": s,
            "when": {"field": "name", "equals": s}, "lookup": {"field": "account", "table": {s.clone(): "v"}}}]));
        let text = d.to_yaml();
        assert_eq!(ConfigDocument::from_yaml(&text).ok().as_ref(), Some(&d), "{s:?} exported as\n{text}");
    }
}
