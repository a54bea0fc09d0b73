use serde_json::Value;
use stepshift_core::events;
use stepshift_core::outcomes::OutcomeSource;
use stepshift_core::ports::{AlarmSource, EventSink, ParameterStore};
use stepshift_core::routers::ObservePorts;
use stepshift_core::tasks::{TaskConfig, check, decode};
use stepshift_core::{Clock, TaskError, encode};

/// Decodes the input, judges the step, applies a person's command from the control
/// record ([`stepshift_core::control`]), publishes what happened (`Health Checked`, a
/// pause's start or end, `Release Confirmed`: [`events::after_check`]; best effort),
/// encodes the new progress; or, for `"action": "judge_hooks"`, judges a point's hook
/// runs ([`stepshift_core::hooks::judge_point`]: an abort in the control record stops
/// the tests before traffic) and publishes nothing; or, for `"action": "announce"`
/// ("Announce the start"), publishes `Deployment Started` and returns `null`.
pub async fn handle<P: ObservePorts + AlarmSource + OutcomeSource + ParameterStore + EventSink + Clock>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    if events::is_announce_input(&input) {
        let input: events::AnnounceInput = decode("check-health announce", input)?;
        let started = events::started(&input.plan).event(events::DetailType::DeploymentStarted);
        events::publish(ports, &[started]).await;
        return Ok(Value::Null);
    }
    if stepshift_core::hooks::is_judge_input(&input) {
        let input: stepshift_core::hooks::JudgeInput = decode("check-health judge_hooks", input)?;
        return encode(stepshift_core::hooks::judge_point(ports, input).await?);
    }
    let input: check::CheckInput = decode("check-health", input)?;
    let (plan, traffic, before) = (input.plan.clone(), input.traffic.clone(), input.progress.clone());
    let after = check::check(ports, input).await?;
    events::publish(ports, &events::after_check(&plan, &traffic, &before, &after, ports.now())).await;
    encode(after)
}
