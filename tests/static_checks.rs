//! Consistency between statemachine/deployment.asl.json, template.yaml and the code.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use stepshift_core::TaskError;
use stepshift_local::asl::model::placeholders;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn asl_text() -> String {
    std::fs::read_to_string(root().join("statemachine/deployment.asl.json")).unwrap()
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn resources() -> Vec<(String, Yaml)> {
    let t = template();
    t["Resources"].as_hash().unwrap().iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone())).collect()
}

#[test]
fn every_placeholder_has_a_substitution_and_every_substitution_a_placeholder() {
    let wanted = placeholders(&asl_text());
    let (_, machine) =
        resources().into_iter().find(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::StateMachine")).unwrap();
    assert_eq!(machine["Properties"]["DefinitionUri"].as_str(), Some("statemachine/deployment.asl.json"));
    let given: BTreeSet<String> = machine["Properties"]["DefinitionSubstitutions"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(wanted, given);
    let local: BTreeSet<String> = stepshift_local::runner::substitutions().into_keys().collect();
    assert_eq!(wanted, local, "the local runner substitutes the same names");
}

fn error_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(list) = map.get("ErrorEquals").and_then(Value::as_array) {
                out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            map.values().for_each(|v| error_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| error_names(v, out)),
        _ => {}
    }
}

#[test]
fn every_error_name_the_state_machine_matches_is_one_that_is_emitted() {
    let asl: Value = serde_json::from_str(&asl_text()).unwrap();
    let mut names = BTreeSet::new();
    error_names(&asl, &mut names);
    for name in &names {
        let emitted = TaskError::NAMES.contains(&name.as_str())
            || ["States.", "Lambda.", "Sandbox."].iter().any(|p| name.starts_with(p));
        assert!(emitted, "the state machine matches `{name}`, which no task emits");
    }
    for transient in ["Throttled", "Conflict", "AwsUnavailable"] {
        assert!(names.contains(transient), "`{transient}` is retried");
    }
}

#[test]
fn the_template_builds_the_five_functions_for_arm64() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    let binaries: BTreeSet<String> = resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(_, r)| {
            assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"));
            r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned()
        })
        .collect();
    let crates: BTreeSet<String> =
        ["shift-weight", "check-health", "promote", "rollback", "record-version"].map(String::from).into();
    assert_eq!(binaries, crates);
    for name in &crates {
        assert!(root().join("crates").join(name).join("src/main.rs").exists(), "{name} has a binary");
    }
}

fn actions(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                if k.as_str() == Some("Action") {
                    match v {
                        Yaml::String(s) => out.push(s.clone()),
                        Yaml::Array(a) => out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_owned))),
                        _ => {}
                    }
                }
                actions(v, out);
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| actions(v, out)),
        _ => {}
    }
}

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let mut all = Vec::new();
    actions(&template(), &mut all);
    assert!(all.len() > 10, "{all:?}");
    for a in &all {
        assert!(!a.contains('*'), "wildcard action {a}");
    }
    let check_health: Vec<String> = {
        let (_, r) = resources().into_iter().find(|(n, _)| n == "CheckHealthFunction").unwrap();
        let mut v = Vec::new();
        actions(&r, &mut v);
        v
    };
    assert_eq!(check_health, ["cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"]);
}

#[test]
fn the_stack_outputs_what_the_cli_reads() {
    let t = template();
    // `!Ref X` loads as the plain string "X": the tag is dropped, the name kept.
    assert_eq!(
        t["Outputs"]["StateMachineArn"]["Value"].as_str(),
        Some("DeploymentStateMachine"),
        "stepshift deploy --stack reads this output"
    );
    assert_eq!(t["Outputs"]["ApprovalEventBusName"]["Value"].as_str(), Some("ApprovalEventBus"));
    let (_, machine) = resources().into_iter().find(|(n, _)| n == "DeploymentStateMachine").unwrap();
    assert_eq!(machine["Properties"]["Type"].as_str(), Some("STANDARD"));
}
