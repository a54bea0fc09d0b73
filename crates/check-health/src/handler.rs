use serde_json::Value;
use stepshift_core::outcomes::OutcomeSource;
use stepshift_core::ports::{AlarmSource, ParameterStore};
use stepshift_core::routers::ObservePorts;
use stepshift_core::tasks::{TaskConfig, check, decode};
use stepshift_core::{Clock, TaskError, encode};

/// Decodes the input, judges the step, applies a person's command from the control
/// record ([`stepshift_core::control`]), encodes the new progress; or, for
/// `"action": "judge_hooks"`, judges a point's hook runs ([`stepshift_core::hooks::judge`]).
pub async fn handle<P: ObservePorts + AlarmSource + OutcomeSource + ParameterStore + Clock>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    if stepshift_core::hooks::is_judge_input(&input) {
        let input: stepshift_core::hooks::JudgeInput = decode("check-health judge_hooks", input)?;
        return encode(stepshift_core::hooks::judge(input)?);
    }
    let input: check::CheckInput = decode("check-health", input)?;
    encode(check::check(ports, input).await?)
}
