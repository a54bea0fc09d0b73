//! Consistency between statemachine/deployment.asl.json, template.yaml and the code.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use stepshift_core::{ErrorName, State, TaskError};
use stepshift_local::asl::model::placeholders;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn asl_text() -> String {
    std::fs::read_to_string(root().join("statemachine/deployment.asl.json")).unwrap()
}

fn asl() -> Value {
    serde_json::from_str(&asl_text()).unwrap()
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

#[test]
fn the_state_machine_has_exactly_the_states_the_code_names() {
    let asl = asl();
    let in_asl: BTreeSet<&str> = asl["States"].as_object().unwrap().keys().map(String::as_str).collect();
    let in_code: BTreeSet<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
    let missing: Vec<_> = in_code.difference(&in_asl).collect();
    assert!(missing.is_empty(), "stepshift_core::State names states the ASL lacks: {missing:?}");
    let unknown: Vec<_> = in_asl.difference(&in_code).collect();
    assert!(unknown.is_empty(), "the ASL has states stepshift_core::State lacks: {unknown:?}");
    assert_eq!(asl["StartAt"], State::BeginDeployment.as_str());
}

/// Every error name the definition mentions: in `ErrorEquals`, and as the `Error` a
/// state writes (a Pass state's `Result`, a Fail state's `Error`).
fn error_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(list) = map.get("ErrorEquals").and_then(Value::as_array) {
                out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            if let Some(name) = map.get("Error").and_then(Value::as_str) {
                out.insert(name.to_owned());
            }
            map.values().for_each(|v| error_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| error_names(v, out)),
        _ => {}
    }
}

#[test]
fn the_state_machine_mentions_exactly_the_error_names_the_code_says_it_does() {
    let mut names = BTreeSet::new();
    error_names(&asl(), &mut names);
    for name in &names {
        let known = ErrorName::from_name(name);
        assert!(known.is_some(), "the state machine mentions `{name}`, which stepshift_core::ErrorName lacks");
        let platform = ["States.", "Lambda.", "Sandbox."].iter().any(|p| name.starts_with(p));
        let emitted = TaskError::NAMES.iter().any(|n| n == name.as_str())
            || known == Some(ErrorName::ApprovalTimedOut)
            || platform;
        assert!(emitted, "the state machine matches `{name}`, which no task emits");
    }
    let claimed: BTreeSet<String> = ErrorName::IN_STATE_MACHINE.iter().map(ToString::to_string).collect();
    let unused: Vec<_> = claimed.difference(&names).collect();
    assert!(unused.is_empty(), "ErrorName::IN_STATE_MACHINE claims names the ASL does not mention: {unused:?}");
    assert_eq!(names, claimed);
    for transient in [ErrorName::Throttled, ErrorName::Conflict, ErrorName::AwsUnavailable] {
        assert!(ErrorName::TRANSIENT.contains(&transient), "`{transient}` is retried");
    }
}

/// The standard `Retry` block, as data: transient errors (throttling, a busy resource,
/// an AWS API or Lambda's service failing) `transient_attempts` times from 2 s,
/// doubling, capped at `max_delay_seconds`; an interrupted invocation (its process died,
/// or it ran out of time) twice, from 5 s. Full jitter on both.
fn retry(transient_attempts: u64, max_delay_seconds: u64) -> Value {
    let names = |list: &[ErrorName]| list.iter().map(|e| e.as_str()).collect::<Vec<_>>();
    json!([
        {
            "ErrorEquals": names(ErrorName::TRANSIENT),
            "IntervalSeconds": 2,
            "BackoffRate": 2,
            "MaxAttempts": transient_attempts,
            "MaxDelaySeconds": max_delay_seconds,
            "JitterStrategy": "FULL"
        },
        {
            "ErrorEquals": names(ErrorName::INTERRUPTED),
            "IntervalSeconds": 5,
            "BackoffRate": 2,
            "MaxAttempts": 2,
            "JitterStrategy": "FULL"
        }
    ])
}

/// A `Catch` list: `(error, ResultPath, Next)` per catcher, in order.
fn catch(routes: &[(ErrorName, &str, State)]) -> Value {
    routes
        .iter()
        .map(|(error, path, next)| json!({"ErrorEquals": [error.as_str()], "ResultPath": path, "Next": next.as_str()}))
        .collect()
}

/// Every Task state's `Retry` (`null`: none) and `Catch`, as docs/design-notes.md
/// ("Retries and catches") documents them.
fn task_policy() -> Vec<(State, Value, Value)> {
    use ErrorName::{StatesAll, StatesTimeout};
    let standard = retry(6, 60);
    let to_roll_back = catch(&[(StatesAll, "$.failure", State::RollBack)]);
    let mut policy = vec![
        // Before anything moved: a failure is a rejection.
        (State::BeginDeployment, standard.clone(), catch(&[(StatesAll, "$", State::RecordRejection)])),
        (State::RecordRejection, standard.clone(), catch(&[(StatesAll, "$", State::DeploymentRejected)])),
        // A person answers, or the timeout does: nothing to retry.
        (
            State::AwaitApproval,
            Value::Null,
            catch(&[(StatesTimeout, "$.failure", State::ApprovalTimedOut), (StatesAll, "$.failure", State::RollBack)]),
        ),
        // Giving up leaves traffic split: more attempts, longer waits.
        (State::RollBack, retry(10, 120), catch(&[(StatesAll, "$.rollback", State::RecordRollback)])),
        (State::RecordRollback, standard.clone(), catch(&[(StatesAll, "$.outcome", State::RolledBackWithFastPath)])),
        // The fast path only ever adds rollbacks: when it cannot start, the deployment
        // goes on without it, and stopping it never changes how a deployment ends (the
        // EventBridge rule on the execution's status change removes the filters too).
        (State::StartFastPath, standard.clone(), catch(&[(StatesAll, "$.fast_path_failure", State::ChooseNextStep)])),
        (
            State::StopFastPathReleased,
            standard.clone(),
            catch(&[(StatesAll, "$.fast_path_stopped", State::DeploymentSucceeded)]),
        ),
        (
            State::StopFastPathRolledBack,
            standard.clone(),
            catch(&[(StatesAll, "$.fast_path_stopped", State::DeploymentRolledBack)]),
        ),
    ];
    // Once traffic may have moved, every other task rolls back.
    for state in [
        State::ShiftTraffic,
        State::ShiftThenSync,
        State::CheckSync,
        State::CheckHealth,
        State::Promote,
        State::RecordPromotion,
        State::ConfirmRelease,
    ] {
        policy.push((state, standard.clone(), to_roll_back.clone()));
    }
    policy
}

#[test]
fn every_task_retries_and_catches_as_documented() {
    let asl = asl();
    let states = asl["States"].as_object().unwrap();
    let tasks: BTreeSet<&str> =
        states.iter().filter(|(_, s)| s["Type"] == "Task").map(|(name, _)| name.as_str()).collect();
    let policy = task_policy();
    let documented: BTreeSet<&str> = policy.iter().map(|(state, ..)| state.as_str()).collect();
    assert_eq!(tasks, documented, "every Task state has a documented Retry and Catch");
    for (state, retry, catch) in &policy {
        let s = &states[state.as_str()];
        let (got_retry, got_catch) = (s.get("Retry").unwrap_or(&Value::Null), s.get("Catch").unwrap_or(&Value::Null));
        assert!(got_retry == retry, "\"{state}\": Retry is\n{got_retry:#}\nwhere the policy says\n{retry:#}");
        assert!(got_catch == catch, "\"{state}\": Catch is\n{got_catch:#}\nwhere the policy says\n{catch:#}");
    }
    let standard = policy.iter().filter(|(_, r, _)| *r == retry(6, 60)).count();
    assert_eq!((standard, tasks.len()), (13, 15), "the standard Retry in 13 of the 15 Task states");
    // The approval's own timeout, and only it, becomes ApprovalTimedOut.
    let timed_out = &states[State::ApprovalTimedOut.as_str()];
    assert_eq!(timed_out["Type"], "Pass");
    assert_eq!(timed_out["Result"]["Error"], ErrorName::ApprovalTimedOut.as_str());
    assert_eq!(timed_out["ResultPath"], "$.failure");
    assert_eq!(timed_out["Next"], State::RollBack.as_str());
}

/// The crate `make build-<LogicalId>` builds for `sam build`, from the Makefile's
/// `build-<LogicalId>: CRATE := <crate>` lines.
fn sam_build_crate(makefile: &str, logical_id: &str) -> Option<String> {
    let prefix = format!("build-{logical_id}: CRATE := ");
    makefile.lines().find_map(|l| l.strip_prefix(&prefix)).map(|c| c.trim().to_owned())
}

#[test]
fn the_template_builds_the_six_functions_for_arm64_one_crate_at_a_time() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let crates: BTreeSet<String> = resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| {
            // `sam build` runs `make build-<LogicalId>`: SAM's rust-cargolambda builder
            // compiled every binary from the workspace root, where Cargo unifies features
            // and every function linked every SDK.
            assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("makefile"), "{id}");
            sam_build_crate(&makefile, id).unwrap_or_else(|| panic!("the Makefile has no build-{id} target"))
        })
        .collect();
    let expected: BTreeSet<String> =
        ["shift-weight", "check-health", "promote", "rollback", "record-version", "tally"].map(String::from).into();
    assert_eq!(crates, expected);
    for name in &crates {
        assert!(root().join("crates").join(name).join("src/main.rs").exists(), "{name} has a binary");
    }
    // The recipe builds that one crate, as `make build` does, into SAM's artifacts.
    let recipe = makefile.split("$(SAM_BUILDS): ").nth(1).expect("the build-<LogicalId> rule");
    let recipe: Vec<&str> = recipe.lines().skip(1).take_while(|l| l.starts_with('\t')).collect();
    assert!(recipe.iter().any(|l| l.contains("cargo lambda build --release --arm64 -p $(CRATE)")), "{recipe:?}");
    assert!(recipe.iter().any(|l| l.contains("$(ARTIFACTS_DIR)/bootstrap")), "{recipe:?}");
    // And in the source tree, so that target/ is shared rather than copied.
    let samconfig = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    assert!(samconfig.contains("[default.build.parameters]\nbuild_in_source = true"), "{samconfig}");
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

/// Every IAM statement of the template, with the function it belongs to.
fn statements() -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    for (name, r) in resources() {
        for policy in r["Properties"]["Policies"].as_vec().into_iter().flatten() {
            for s in policy["Statement"].as_vec().into_iter().flatten() {
                // `!If [Condition, statement, !Ref AWS::NoValue]` loads as a 3-item list.
                let s = if let Some(v) = s.as_vec() { v[1].clone() } else { s.clone() };
                out.push((name.clone(), s));
            }
        }
    }
    out
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn tally_publishes_only_its_namespace_and_subscribes_only_target_log_groups() {
    let tally: Vec<Yaml> = statements().into_iter().filter(|(n, _)| n == "TallyFunction").map(|(_, s)| s).collect();
    let by_action = |action: &str| {
        tally.iter().find(|s| strings(&s["Action"]).iter().any(|a| a == action)).unwrap_or_else(|| panic!("{action}"))
    };
    let put = by_action("cloudwatch:PutMetricData");
    assert_eq!(
        put["Condition"]["StringEquals"]["cloudwatch:namespace"].as_str(),
        Some(stepshift_core::outcomes::NAMESPACE),
        "PutMetricData only into the outcomes namespace"
    );
    for action in ["logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter", "logs:DescribeSubscriptionFilters"] {
        for r in strings(&by_action(action)["Resource"]) {
            assert!(r.contains(":log-group:/aws/lambda/${TargetFunctionPattern}"), "{action} on {r}");
        }
    }
    // Every ending removes the filters, also an execution stopped from outside.
    let (_, rule) = resources().into_iter().find(|(n, _)| n == "FastPathCleanupRule").unwrap();
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(strings(&pattern["detail-type"]), ["Step Functions Execution Status Change"]);
    assert_eq!(strings(&pattern["detail"]["status"]), ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"]);
    let (_, f) = resources().into_iter().find(|(n, _)| n == "TallyFunction").unwrap();
    assert_eq!(
        f["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"].as_i64(),
        Some(0),
        "a retried batch counts twice"
    );
}

#[test]
fn no_role_may_delete_a_whole_function() {
    let deleting: Vec<(String, Yaml)> = statements()
        .into_iter()
        .filter(|(_, s)| strings(&s["Action"]).iter().any(|a| a == "lambda:DeleteFunction"))
        .collect();
    assert_eq!(deleting.len(), 1, "only record-version prunes");
    let (name, s) = &deleting[0];
    assert_eq!(name, "RecordVersionFunction");
    assert_eq!(strings(&s["Action"]), ["lambda:DeleteFunction"], "DeleteFunction stands alone, on its own resources");
    let resources = strings(&s["Resource"]);
    assert!(!resources.is_empty());
    for r in resources {
        // A qualified ARN (function:NAME:VERSION): IAM's `*` needs the second colon, which
        // an unqualified function ARN does not have.
        assert!(r.ends_with(":function:${TargetFunctionPattern}:*"), "unqualified DeleteFunction resource {r}");
    }
}

#[test]
fn with_require_managed_tag_every_function_permission_needs_the_tag() {
    let t = template();
    assert_eq!(t["Conditions"]["ScopeByTag"][0].as_str(), Some("RequireManagedTag"), "{:?}", t["Conditions"]);
    let on_functions: Vec<(String, Yaml)> = statements()
        .into_iter()
        .filter(|(_, s)| strings(&s["Resource"]).iter().any(|r| r.contains(":function:${TargetFunctionPattern}")))
        .collect();
    assert!(on_functions.len() >= 5, "{on_functions:?}");
    for (name, s) in on_functions {
        let c = s["Condition"].as_vec().unwrap_or_else(|| panic!("{name}: {:?} has no tag condition", s["Sid"]));
        assert_eq!(c[0].as_str(), Some("ScopeByTag"), "{name}");
        assert_eq!(c[1]["StringEquals"]["aws:ResourceTag/stepshift:managed"].as_str(), Some("true"), "{name}");
        assert_eq!(c[2].as_str(), Some("AWS::NoValue"), "{name}: no condition when the parameter is false");
    }
}
