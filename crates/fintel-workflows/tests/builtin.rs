//! The built-in analysis types: each loads, its schemas compile, a hand-written reply for each
//! step validates (and broken copies do not), prompts render completely, and the pinned copy
//! reloads to the same version.

use std::path::Path;

use fintel_workflows::{
    AggregateVars, Kind, Origin, Registry, Step, Workflow, YearVars, AGGREGATE_PLACEHOLDERS,
    YEAR_PLACEHOLDERS,
};
use serde_json::{json, Value};

const EXPECTED: &[(&str, bool)] = &[
    ("fundamental", false),
    ("buffett", false),
    ("taleb", false),
    ("contrarian", false),
    ("multi", false),
    ("financials", false),
    ("changes", false),
    ("excellent", true),
    ("objective", true),
    ("scanner", true),
    ("checklist", true),
];

fn registry() -> Registry {
    Registry::load(&[]).expect("built-ins load")
}

fn sample(name: &str, step: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(format!("{name}.{step}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn steps(workflow: &Workflow) -> Vec<(&'static str, &Step)> {
    let mut steps = vec![("year", workflow.year.as_ref().expect("year step"))];
    if let Some(aggregate) = &workflow.aggregate {
        steps.push(("aggregate", aggregate));
    }
    steps
}

#[test]
fn every_expected_builtin_is_listed_with_the_right_shape() {
    let registry = registry();
    let names: Vec<&str> = registry.list().iter().map(|w| w.name.as_str()).collect();
    let mut expected: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(Registry::builtin_names().len(), EXPECTED.len());
    for (name, multi_year) in EXPECTED {
        let workflow = registry.get(name).unwrap();
        assert_eq!(workflow.origin, Origin::Builtin);
        assert_eq!(workflow.is_multi_year(), *multi_year, "{name}");
        assert!(!workflow.description.is_empty());
        assert_eq!(workflow.version.len(), 64);
        if *multi_year {
            assert_eq!(workflow.min_years, 3, "{name}");
        } else {
            assert_eq!(workflow.min_years, 1, "{name}");
        }
        let expected_kind = match *name {
            "financials" => Kind::Xbrl,
            "changes" => Kind::Changes,
            _ => Kind::Llm,
        };
        assert_eq!(workflow.kind, expected_kind);
    }
}

#[test]
fn versions_are_distinct() {
    let registry = registry();
    let mut versions: Vec<&str> = registry.list().iter().map(|w| w.version.as_str()).collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), EXPECTED.len());
}

#[test]
fn sample_replies_validate_against_every_step_schema() {
    let registry = registry();
    for (name, _) in EXPECTED {
        let workflow = registry.get(name).unwrap();
        for (step_name, step) in steps(workflow) {
            let validator = step.output_validator().unwrap();
            let reply = sample(name, step_name);
            if let Err(error) = validator.validate(&reply) {
                panic!("{name} [{step_name}] sample: {error}");
            }
        }
    }
}

/// Every required property of the top level, removed one at a time, must make the reply
/// invalid; so must an unknown extra property.
#[test]
fn broken_samples_are_rejected() {
    let registry = registry();
    for (name, _) in EXPECTED {
        let workflow = registry.get(name).unwrap();
        for (step_name, step) in steps(workflow) {
            let validator = step.output_validator().unwrap();
            let reply = sample(name, step_name);
            let required = step.schema["required"].as_array().unwrap();
            assert!(!required.is_empty());
            for field in required {
                let mut broken = reply.clone();
                broken
                    .as_object_mut()
                    .unwrap()
                    .remove(field.as_str().unwrap());
                assert!(
                    validator.validate(&broken).is_err(),
                    "{name} [{step_name}] without {field} passed"
                );
            }
            let mut extra = reply.clone();
            extra
                .as_object_mut()
                .unwrap()
                .insert("surprise".to_string(), json!(1));
            assert!(validator.validate(&extra).is_err(), "{name} extra field");
        }
    }
}

#[test]
fn scores_out_of_range_and_unknown_ratings_are_rejected() {
    let registry = registry();
    let cases: &[(&str, &str, &str, Value)] = &[
        ("fundamental", "year", "/score", json!(11)),
        ("fundamental", "year", "/score", json!(0)),
        ("fundamental", "year", "/score", json!(7.5)),
        ("buffett", "year", "/moat/width", json!("enormous")),
        ("taleb", "year", "/antifragility_score", json!(-1)),
        ("contrarian", "year", "/stance", json!("bullish")),
        ("multi", "year", "/synthesis/overall_score", json!(12)),
        ("multi", "year", "/taleb/tail_risks", json!([])),
        ("financials", "year", "/revenue", json!("391 billion")),
        ("changes", "year", "/whole/cosine", json!("high")),
        ("changes", "year", "/sections/1A/old", json!("missing")),
        ("excellent", "aggregate", "/verdict", json!("superb")),
        ("objective", "aggregate", "/overall_trajectory", json!("up")),
        ("checklist", "aggregate", "/score", json!(101)),
        ("checklist", "aggregate", "/quality", json!([])),
        ("scanner", "aggregate", "/overall_alpha_score", json!(101)),
        (
            "scanner",
            "aggregate",
            "/scores/cross_industry_dna",
            json!(-1),
        ),
        (
            "scanner",
            "aggregate",
            "/scores/strategic_anomaly",
            json!(55.5),
        ),
        ("scanner", "aggregate", "/confidence_level", json!("medium")),
        ("multi", "year", "/verdict", json!("pass")),
        ("multi", "year", "/verdict", json!("STRONG_BUY")),
        ("multi", "year", "/buffett/action_signal", json!("buy")),
        ("buffett", "year", "/action_signal", json!("strong_buy")),
        ("taleb", "year", "/action_signal", json!("avoid")),
        ("contrarian", "year", "/action_signal", json!(null)),
        ("multi", "year", "/conviction", json!(0)),
        ("excellent", "aggregate", "/success_factors", json!([])),
        (
            "objective",
            "aggregate",
            "/evolving_risk_factors/0/trend",
            json!("worse"),
        ),
    ];
    for (name, step_name, pointer, bad) in cases {
        let workflow = registry.get(name).unwrap();
        let step = if *step_name == "year" {
            workflow.year.as_ref().unwrap()
        } else {
            workflow.aggregate.as_ref().unwrap()
        };
        let mut reply = sample(name, step_name);
        *reply.pointer_mut(pointer).unwrap() = bad.clone();
        let error = step
            .output_validator()
            .unwrap()
            .validate(&reply)
            .unwrap_err();
        assert!(
            error.mismatches.iter().any(|m| m.contains(pointer)),
            "{name} {pointer}: {error}"
        );
    }
}

#[test]
fn financials_is_all_nullable() {
    let registry = registry();
    let step = registry.get("financials").unwrap().year.as_ref().unwrap();
    let validator = step.output_validator().unwrap();
    let mut all_null = sample("financials", "year");
    for value in all_null.as_object_mut().unwrap().values_mut() {
        *value = Value::Null;
    }
    validator.validate(&all_null).unwrap();
    assert!(step.prompt.is_empty());
    assert!(step.system.is_none());
}

#[test]
fn year_prompts_render_every_placeholder() {
    let registry = registry();
    let document = "ITEM 1. BUSINESS\nA {literal} brace in the filing.";
    let vars = YearVars {
        ticker: "AAPL",
        company_name: "Apple Inc.",
        year: 2024,
        form: "10-K",
        document,
    };
    for workflow in registry.list() {
        if !workflow.kind.needs_model() {
            continue;
        }
        let step = workflow.year.as_ref().unwrap();
        for placeholder in YEAR_PLACEHOLDERS {
            if *placeholder != "document" {
                assert!(
                    step.prompt.contains(&format!("{{{placeholder}}}")),
                    "{} lacks {{{placeholder}}}",
                    workflow.name
                );
            }
        }
        let rendered = step.render_year(&vars);
        for placeholder in YEAR_PLACEHOLDERS {
            assert!(
                !rendered.contains(&format!("{{{placeholder}}}")),
                "{}",
                workflow.name
            );
        }
        assert!(
            rendered.contains("Apple Inc. (ticker AAPL)"),
            "{}",
            workflow.name
        );
        assert!(rendered.contains("Fiscal year: 2024"));
        assert!(rendered.contains("Form: 10-K"));
        assert!(rendered.contains(document));
        // Fixed instructions come before anything that varies, and the document comes last
        // apart from a fixed closing line.
        let prefix = step.stable_prefix();
        assert!(prefix.len() > 300, "{}: short stable prefix", workflow.name);
        assert!(rendered.starts_with(prefix));
        let after_document = &rendered[rendered.find(document).unwrap() + document.len()..];
        assert!(!after_document.contains("AAPL"));
        assert!(step.system.as_ref().is_some_and(|s| s.len() > 100));
    }
}

#[test]
fn aggregate_prompts_render_every_placeholder() {
    let registry = registry();
    let yearly =
        json!({"2023": {"revenue": 2}, "2022": {"revenue": 1}, "2024": {"revenue": "{x}"}});
    let vars = AggregateVars {
        ticker: "AAPL",
        company_name: "Apple Inc.",
        years: &[2022, 2023, 2024],
        yearly_results: &yearly,
    };
    for workflow in registry.list() {
        let Some(step) = &workflow.aggregate else {
            continue;
        };
        for placeholder in AGGREGATE_PLACEHOLDERS {
            assert!(step.prompt.contains(&format!("{{{placeholder}}}")));
        }
        let rendered = step.render_aggregate(&vars);
        for placeholder in AGGREGATE_PLACEHOLDERS {
            assert!(!rendered.contains(&format!("{{{placeholder}}}")));
        }
        assert!(rendered.contains("Fiscal years: 2022, 2023, 2024"));
        assert!(rendered.contains("Apple Inc. (ticker AAPL)"));
        let first = rendered.find("\"2022\"").unwrap();
        let second = rendered.find("\"2023\"").unwrap();
        let third = rendered.find("\"2024\"").unwrap();
        assert!(first < second && second < third, "years in order");
        assert!(rendered.contains("\"revenue\": \"{x}\""));
    }
}

#[test]
fn canonical_copies_reload_to_the_same_workflow() {
    for workflow in registry().list() {
        let pinned = Workflow::from_canonical(&workflow.canonical)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", workflow.name, workflow.canonical));
        assert_eq!(pinned.version, workflow.version, "{}", workflow.name);
        assert_eq!(pinned.year, workflow.year);
        assert_eq!(pinned.aggregate, workflow.aggregate);
        assert_eq!(pinned.name, workflow.name);
        assert_eq!(pinned.description, workflow.description);
        assert_eq!(pinned.min_years, workflow.min_years);
        assert_eq!(pinned.kind, workflow.kind);
        assert_eq!(pinned.origin, Origin::Pinned);
        assert_eq!(
            pinned.canonical, workflow.canonical,
            "canonical is a fixed point"
        );
    }
}

#[test]
fn builtin_sources_are_complete_files_that_load_as_custom_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, _) in EXPECTED {
        let source = Registry::builtin_source(name).unwrap();
        assert!(source.contains(&format!("name = \"{name}\"")));
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, source).unwrap();
        if *name == "financials" || *name == "changes" {
            // A custom file may not claim kind = "xbrl" or "changes".
            assert!(Workflow::from_file(&path).is_err());
            continue;
        }
        let copy = Workflow::from_file(&path).unwrap();
        let builtin = registry();
        assert_eq!(copy.version, builtin.get(name).unwrap().version, "{name}");
    }
    assert_eq!(
        Registry::builtin_source("multi_analysis"),
        Registry::builtin_source("multi")
    );
    assert!(Registry::builtin_source("nope").is_none());
}

#[test]
fn property_ordering_follows_the_written_order() {
    let registry = registry();
    let step = registry.get("fundamental").unwrap().year.as_ref().unwrap();
    let order: Vec<&str> = step.schema["propertyOrdering"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(order.first(), Some(&"reporting_currency"));
    assert_eq!(order.last(), Some(&"score"));
    let position = |name: &str| order.iter().position(|n| *n == name).unwrap();
    assert!(position("score_rationale") < position("score"));
    assert_eq!(
        step.schema["properties"]["margins"]["propertyOrdering"][4],
        json!("trend")
    );
}

#[test]
fn multi_has_the_three_lenses_and_a_synthesis_in_one_schema() {
    let registry = registry();
    let multi = registry.get("multi_analysis").unwrap();
    assert_eq!(multi.name, "multi");
    let properties = multi.year.as_ref().unwrap().schema["properties"]
        .as_object()
        .unwrap();
    for section in ["buffett", "taleb", "contrarian", "synthesis"] {
        assert!(properties.contains_key(section), "{section}");
    }
}

/// The signals a backtest reads: `multi`'s verdict is a five-level scale listed best first
/// (the order the screen ranks it by), and every lens, alone or inside `multi`, ends with
/// its required action signal.
#[test]
fn multi_verdict_is_a_scale_and_every_lens_has_an_action_signal() {
    let registry = registry();
    let year = |name: &str| registry.get(name).unwrap().year.clone().unwrap().schema;
    let multi = year("multi");
    assert_eq!(
        multi["properties"]["verdict"]["enum"],
        json!(["strong_buy", "buy", "hold", "sell", "strong_sell"])
    );
    assert_eq!(multi["properties"]["conviction"]["maximum"], json!(10));
    let lenses = [
        ("buffett", year("buffett")),
        ("taleb", year("taleb")),
        ("contrarian", year("contrarian")),
        ("multi.buffett", multi["properties"]["buffett"].clone()),
        ("multi.taleb", multi["properties"]["taleb"].clone()),
        (
            "multi.contrarian",
            multi["properties"]["contrarian"].clone(),
        ),
    ];
    for (lens, schema) in lenses {
        assert_eq!(
            schema["properties"]["action_signal"]["enum"],
            json!(["priority", "investigate", "pass"]),
            "{lens}"
        );
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("action_signal")),
            "{lens}"
        );
        let order = schema["propertyOrdering"].as_array().unwrap();
        assert_eq!(order.last(), Some(&json!("action_signal")), "{lens}");
    }
    // Each level is explained in the prompt, so the model uses them as a scale.
    let prompt = &registry.get("multi").unwrap().year.as_ref().unwrap().prompt;
    for level in [
        "strong_buy (",
        "buy (",
        "hold (",
        "sell (",
        "strong_sell (",
        "priority (",
        "investigate (",
        "pass (",
    ] {
        assert!(prompt.contains(level), "multi prompt lacks {level}");
    }
    for lens in ["buffett", "taleb", "contrarian"] {
        let prompt = &registry.get(lens).unwrap().year.as_ref().unwrap().prompt;
        for level in ["priority (", "investigate (", "pass ("] {
            assert!(prompt.contains(level), "{lens} prompt lacks {level}");
        }
    }
}

#[test]
fn schemas_stay_small_enough_to_fill() {
    // A reply's size is bounded by its schema: every array has maxItems.
    fn arrays_bounded(schema: &Value, path: &str) {
        if schema["type"] == "array" {
            assert!(schema.get("maxItems").is_some(), "{path} has no maxItems");
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, child) in properties {
                arrays_bounded(child, &format!("{path}/{name}"));
            }
        }
        if let Some(items) = schema.get("items") {
            arrays_bounded(items, &format!("{path}/items"));
        }
    }
    for workflow in registry().list() {
        for (step_name, step) in steps(workflow) {
            arrays_bounded(&step.schema, &format!("{}[{step_name}]", workflow.name));
        }
    }
}

#[test]
fn step_versions_separate_the_year_step_from_the_aggregate() {
    let registry = registry();
    let excellent = registry.get("excellent").unwrap();
    let year = excellent.year.as_ref().unwrap();
    let aggregate = excellent.aggregate.as_ref().unwrap();
    assert_ne!(year.version(), aggregate.version());
    assert_ne!(year.version(), excellent.version);
    let mut edited = aggregate.clone();
    edited.prompt.push_str("\nBe strict.");
    assert_ne!(edited.version(), aggregate.version());
    assert_eq!(year.version(), year.clone().version());
}

/// The fields of EON's analysis types (SPEC.md section 13) are all in the built-in schemas, so
/// a user of EON finds every field they screened or backtested on.
#[test]
fn eon_fields_are_in_the_builtin_schemas() {
    let registry = registry();
    let required = |name: &str, step: &str| -> Vec<String> {
        let workflow = registry.get(name).unwrap();
        let step = if step == "year" {
            workflow.year.as_ref().unwrap()
        } else {
            workflow.aggregate.as_ref().unwrap()
        };
        step.schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let expect = |name: &str, step: &str, fields: &[&str]| {
        let have = required(name, step);
        for field in fields {
            assert!(have.iter().any(|h| h == field), "{name} lacks {field}");
        }
    };
    expect(
        "scanner",
        "aggregate",
        &[
            "scores",
            "overall_alpha_score",
            "key_insights",
            "investment_thesis",
            "risk_factors",
            "catalyst_timeline",
            "confidence_level",
        ],
    );
    let scanner = registry.get("scanner").unwrap();
    assert_eq!(scanner.min_years, 3);
    let scores = &scanner.aggregate.as_ref().unwrap().schema["properties"]["scores"];
    for signal in [
        "strategic_anomaly",
        "asymmetric_resources",
        "contrarian_positioning",
        "cross_industry_dna",
        "early_infrastructure",
        "intellectual_capital",
    ] {
        let score = &scores["properties"][signal];
        assert_eq!(score["type"], "integer", "{signal}");
        assert_eq!(score["minimum"], 0, "{signal}");
        assert_eq!(score["maximum"], 100, "{signal}");
    }
    assert_eq!(
        scanner.aggregate.as_ref().unwrap().schema["properties"]["confidence_level"]["enum"],
        json!(["HIGH", "MEDIUM", "LOW"])
    );
    expect(
        "excellent",
        "aggregate",
        &[
            "success_factors",
            "unique_attributes",
            "business_evolution",
            "value_creation",
            "future_outlook",
        ],
    );
    expect(
        "objective",
        "aggregate",
        &[
            "strategic_shifts",
            "distinguishing_characteristics",
            "evolving_risk_factors",
        ],
    );
    expect("multi", "year", &["verdict", "conviction"]);
    expect("contrarian", "year", &["variant_perception"]);
    // The quality/value checklist that `scanner` was keeps its content under its new name.
    expect(
        "checklist",
        "aggregate",
        &["quality", "growth", "value", "score", "verdict"],
    );
}
