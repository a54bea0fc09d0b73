//! Step Functions, from the CLI's side: find the state machine, start executions, read
//! their status and history, answer approval pauses (or abort at one).

use aws_config::SdkConfig;
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use serde_json::Value;
use stepshift_core::{ErrorName, Timestamp};

use crate::error::CliError;
use crate::view::Item;

/// Where the state machine comes from, in order: `--state-machine`, `--stack`, then
/// `STEPSHIFT_STATE_MACHINE_ARN`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Target {
    /// The deployment state machine's ARN.
    #[arg(long, env = "STEPSHIFT_STATE_MACHINE_ARN", value_name = "ARN")]
    pub state_machine: Option<String>,
    /// Read the state machine's ARN from this CloudFormation stack's outputs.
    #[arg(long, value_name = "NAME", conflicts_with = "state_machine")]
    pub stack: Option<String>,
}

/// An execution's status.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionInfo {
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, ...
    pub status: String,
    /// Output, when it succeeded.
    pub output: Option<Value>,
    /// Error, when it failed.
    pub error: Option<String>,
    /// Cause, when it failed.
    pub cause: Option<String>,
    /// The state machine it runs on.
    pub state_machine: String,
    /// Its input (for `retry`).
    pub input: Option<Value>,
}

impl ExecutionInfo {
    /// Whether the execution has ended.
    pub fn ended(&self) -> bool {
        self.status != "RUNNING" && self.status != "PENDING_REDRIVE"
    }
}

/// A Step Functions (and CloudFormation) client pair.
pub struct Sfn {
    sfn: aws_sdk_sfn::Client,
    cloudformation: aws_sdk_cloudformation::Client,
}

/// Any SDK error as a CLI error (exit 3), with the service's words.
pub fn aws_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    what: &str,
    e: SdkError<E, R>,
) -> CliError {
    let detail = match &e {
        SdkError::ServiceError(s) => {
            format!("{}: {}", s.err().code().unwrap_or("error"), s.err().message().unwrap_or(""))
        }
        _ => DisplayErrorContext(&e).to_string(),
    };
    CliError::Aws(format!("{what}: {detail}"))
}

fn timestamp(t: &aws_smithy_types::DateTime) -> Timestamp {
    Timestamp::from_millis(t.to_millis().unwrap_or(0))
}

fn json(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A Step Functions history event as a neutral [`Item`].
pub fn item(e: &HistoryEvent) -> Item {
    let mut item =
        Item { kind: e.r#type().as_str().to_owned(), timestamp: timestamp(e.timestamp()), ..Item::default() };
    if let Some(d) = e.state_entered_event_details() {
        item.name = Some(d.name().to_owned());
        item.input = json(d.input());
    }
    if let Some(d) = e.state_exited_event_details() {
        item.name = Some(d.name().to_owned());
        item.output = json(d.output());
    }
    if let Some(d) = e.task_scheduled_event_details() {
        item.resource = Some(format!("{}:{}", d.resource_type(), d.resource()));
        item.parameters = json(Some(d.parameters()));
    }
    if let Some(d) = e.task_failed_event_details() {
        item.resource = Some(format!("{}:{}", d.resource_type(), d.resource()));
        item.error = d.error().map(str::to_owned);
        item.cause = d.cause().map(str::to_owned);
    }
    if let Some(d) = e.task_timed_out_event_details() {
        item.resource = Some(format!("{}:{}", d.resource_type(), d.resource()));
        item.error = d.error().map(str::to_owned);
        item.cause = d.cause().map(str::to_owned);
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        item.error = d.error().map(str::to_owned);
        item.cause = d.cause().map(str::to_owned);
    }
    if let Some(d) = e.execution_failed_event_details() {
        item.error = d.error().map(str::to_owned);
        item.cause = d.cause().map(str::to_owned);
    }
    if let Some(d) = e.execution_succeeded_event_details() {
        item.output = json(d.output());
    }
    item
}

impl Sfn {
    /// Clients from one configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Sfn { sfn: aws_sdk_sfn::Client::new(config), cloudformation: aws_sdk_cloudformation::Client::new(config) }
    }

    /// On existing clients (tests use mocked ones).
    #[cfg(test)]
    pub fn from_clients(sfn: aws_sdk_sfn::Client, cloudformation: aws_sdk_cloudformation::Client) -> Self {
        Sfn { sfn, cloudformation }
    }

    /// The state machine's ARN, from the flags, the stack or the environment.
    pub async fn state_machine(&self, target: &Target) -> Result<String, CliError> {
        if let Some(arn) = &target.state_machine {
            return Ok(arn.clone());
        }
        let Some(stack) = &target.stack else {
            return Err(CliError::Invalid(
                "which state machine? give --state-machine ARN, --stack NAME (the stepshift stack), or set STEPSHIFT_STATE_MACHINE_ARN".into(),
            ));
        };
        let out = self
            .cloudformation
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| aws_error(&format!("stack {stack}"), e))?;
        out.stacks()
            .iter()
            .flat_map(|s| s.outputs())
            .find(|o| o.output_key() == Some("StateMachineArn"))
            .and_then(|o| o.output_value().map(str::to_owned))
            .ok_or_else(|| {
                CliError::Aws(format!("stack {stack} has no StateMachineArn output; is it the stepshift stack?"))
            })
    }

    /// An execution ARN from an ARN or a name.
    pub async fn execution(&self, execution: &str, target: &Target) -> Result<String, CliError> {
        if execution.starts_with("arn:") {
            return Ok(execution.to_owned());
        }
        let machine = self.state_machine(target).await?;
        Ok(format!("{}:{execution}", machine.replacen(":stateMachine:", ":execution:", 1)))
    }

    /// Starts an execution; returns its ARN.
    pub async fn start(&self, state_machine: &str, name: &str, input: &Value) -> Result<String, CliError> {
        let out = self
            .sfn
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| aws_error("could not start the deployment", e))?;
        Ok(out.execution_arn().to_owned())
    }

    /// An execution's status.
    pub async fn describe(&self, execution: &str) -> Result<ExecutionInfo, CliError> {
        let out =
            self.sfn.describe_execution().execution_arn(execution).send().await.map_err(|e| aws_error(execution, e))?;
        Ok(ExecutionInfo {
            status: out.status().as_str().to_owned(),
            output: json(out.output()),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
            state_machine: out.state_machine_arn().to_owned(),
            input: json(out.input()),
        })
    }

    /// The whole history, oldest first.
    pub async fn history(&self, execution: &str) -> Result<Vec<Item>, CliError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .sfn
                .get_execution_history()
                .execution_arn(execution)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_error(execution, e))?;
            items.extend(out.events().iter().map(item));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// Answers a pause with success.
    pub async fn approve(&self, token: &str, output: &Value) -> Result<(), CliError> {
        self.sfn
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| aws_error("could not approve", e))?;
        Ok(())
    }

    /// Answers a pause with failure.
    pub async fn reject(&self, token: &str, reason: &str) -> Result<(), CliError> {
        self.sfn
            .send_task_failure()
            .task_token(token)
            .error(ErrorName::ApprovalRejected.as_str())
            .cause(reason)
            .send()
            .await
            .map_err(|e| aws_error("could not reject", e))?;
        Ok(())
    }

    /// Aborts a deployment at its approval pause: fails the task with
    /// [`ErrorName::Aborted`], which rolls back (`stepshift abort`).
    pub async fn abort(&self, token: &str, cause: &str) -> Result<(), CliError> {
        self.sfn
            .send_task_failure()
            .task_token(token)
            .error(ErrorName::Aborted.as_str())
            .cause(cause)
            .send()
            .await
            .map_err(|e| aws_error("could not abort", e))?;
        Ok(())
    }

    /// Whether an execution of that ARN exists (so that a new one needs another name).
    pub async fn exists(&self, execution: &str) -> Result<bool, CliError> {
        match self.sfn.describe_execution().execution_arn(execution).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_does_not_exist()) => Ok(false),
            Err(e) => Err(aws_error(execution, e)),
        }
    }

    /// Whether an execution is still running (for stale-lock checks). An execution that
    /// cannot be found counts as not running.
    pub async fn is_running(&self, execution: &str) -> Result<bool, CliError> {
        match self.sfn.describe_execution().execution_arn(execution).send().await {
            Ok(out) => Ok(*out.status() == ExecutionStatus::Running),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_does_not_exist()) => Ok(false),
            Err(e) => Err(aws_error(execution, e)),
        }
    }
}

/// An execution name from the targets and a time: `orders-42-20261124T200000`, at most
/// 80 characters of letters, digits, '-' and '_'.
pub fn execution_name(targets: &stepshift_core::request::Targets, now: Timestamp) -> String {
    let stamp: String = now.to_rfc3339().chars().filter(|c| c.is_ascii_digit() || *c == 'T').take(15).collect();
    let head = match &stepshift_core::routers::identities(targets)[..] {
        [one] => format!("{}-{}", one.short, one.candidate),
        many => format!("release-{}-targets", many.len()),
    };
    let mut name: String =
        head.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    name.truncate(80 - stamp.len() - 1);
    format!("{name}-{stamp}")
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
    use aws_sdk_cloudformation::types::{Output, Stack, StackStatus};
    use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    fn sfn(sfn_rules: &[&Rule], cfn_rules: &[&Rule]) -> Sfn {
        Sfn::from_clients(
            mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn_rules.iter().copied()),
            mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, cfn_rules.iter().copied()),
        )
    }

    #[tokio::test]
    async fn reject_sends_the_error_name_and_the_reason() {
        let rule = mock!(aws_sdk_sfn::Client::send_task_failure)
            .match_requests(|r| {
                r.task_token() == Some("tok")
                    && r.error() == Some("ApprovalRejected")
                    && r.cause() == Some("budget spent")
            })
            .then_output(|| SendTaskFailureOutput::builder().build());
        sfn(&[&rule], &[]).reject("tok", "budget spent").await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn approve_sends_the_output() {
        let rule = mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(|r| r.task_token() == Some("tok") && r.output() == Some(r#"{"approved_by":"ops"}"#))
            .then_output(|| SendTaskSuccessOutput::builder().build());
        sfn(&[&rule], &[]).approve("tok", &serde_json::json!({"approved_by": "ops"})).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_state_machine_comes_from_the_stack_outputs() {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("stepshift"))
            .then_output(|| {
                let output = Output::builder()
                    .output_key("StateMachineArn")
                    .output_value("arn:aws:states:us-east-1:1:stateMachine:sm")
                    .build();
                let stack = Stack::builder()
                    .stack_name("stepshift")
                    .stack_status(StackStatus::CreateComplete)
                    .creation_time(aws_smithy_types::DateTime::from_secs(0))
                    .outputs(output)
                    .build();

                DescribeStacksOutput::builder().stacks(stack).build()
            });
        let target = Target { state_machine: None, stack: Some("stepshift".into()) };
        let arn = sfn(&[], &[&rule]).state_machine(&target).await.unwrap();
        assert_eq!(arn, "arn:aws:states:us-east-1:1:stateMachine:sm");
        let execution = sfn(&[], &[&rule]).execution("run-1", &target).await.unwrap();
        assert_eq!(execution, "arn:aws:states:us-east-1:1:execution:sm:run-1");
    }

    #[tokio::test]
    async fn no_state_machine_is_an_invalid_argument() {
        let e = sfn(&[], &[]).state_machine(&Target::default()).await.unwrap_err();
        assert!(matches!(e, CliError::Invalid(_)), "{e}");
    }

    #[test]
    fn execution_names_are_readable_and_valid() {
        let t = |f: &str, v: &str| stepshift_core::request::Target {
            function: f.into(),
            alias: "live".into(),
            version: v.into(),
        };
        let now = Timestamp::parse_rfc3339("2026-11-24T20:00:05Z").unwrap();
        let aliases = |a: Vec<stepshift_core::request::Target>| stepshift_core::request::Targets {
            aliases: a,
            ..Default::default()
        };
        assert_eq!(execution_name(&aliases(vec![t("orders-api", "42")]), now), "orders-api-42-20261124T200005");
        assert_eq!(execution_name(&aliases(vec![t("a", "1"), t("b", "2")]), now), "release-2-targets-20261124T200005");
        let long = execution_name(&aliases(vec![t(&"f".repeat(64), "1234567890")]), now);
        assert!(long.len() <= 80, "{}", long.len());
    }
}
