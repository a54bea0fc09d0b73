//! Starts AWS API emulators for tests: ministack and moto, installed by `make setup`
//! into the project's `.venv`.
//!
//! Each emulator listens on a free 127.0.0.1 port, has its own TMPDIR, and runs under a
//! small shell guard that stops it by its PID as soon as the test process's end of a
//! pipe closes. So the emulator dies with the tests, even when they are killed, and
//! the guard then deletes its directory (ministack keeps a copy of every function's code
//! there, 130 MB a run), unless `STEPSHIFT_KEEP_EMULATOR_DIR` is set.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ministack: Lambda (runs real provided.al2023 binaries), SSM, CloudWatch, Step Functions.
    Ministack,
    /// moto server with its LocalStack-derived Step Functions interpreter.
    Moto,
}

/// A running emulator.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// Its working directory (TMPDIR) and log file.
    pub dir: PathBuf,
    child: Child,
    guard: Option<ChildStdin>,
}

/// The project's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The project's Python venv: `STEPSHIFT_VENV`, or `.venv` in the workspace.
pub fn venv() -> PathBuf {
    std::env::var_os("STEPSHIFT_VENV").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv"))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Emulator {
    /// Starts `kind` and waits until it answers.
    pub fn start(kind: Kind) -> Emulator {
        let name = match kind {
            Kind::Ministack => "ministack",
            Kind::Moto => "moto_server",
        };
        let bin = venv().join("bin").join(name);
        assert!(
            bin.exists(),
            "{} is missing: run `make setup` first (it installs the emulators into .venv)",
            bin.display()
        );
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("stepshift-{name}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("emulator directory");
        let log = std::fs::File::create(dir.join("log")).expect("emulator log");
        let mut cmd = Command::new("sh");
        // The guard: run the emulator in the background, then block reading stdin; when
        // the test process's end of the pipe closes, stop the emulator by its PID and
        // delete its directory. The shared emulators live in statics, which Rust never
        // drops, so this is the one place that sees every emulator end.
        cmd.arg("-c")
            .arg(
                r#""$@" & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid"
                   [ -n "$STEPSHIFT_KEEP_EMULATOR_DIR" ] || rm -rf "$TMPDIR""#,
            )
            .arg("guard")
            .arg(&bin)
            .env("TMPDIR", &dir)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        match kind {
            Kind::Ministack => {
                cmd.env("BIND_HOST", "127.0.0.1")
                    .env("GATEWAY_PORT", port.to_string())
                    .env("IOT_MTLS_ENABLED", "0")
                    .env("SFTP_ENABLED", "0")
                    .env("SERVICES", "lambda,ssm,monitoring,states,events,sqs,logs,iam,sts,route53")
                    .env("LOG_LEVEL", "WARNING");
            }
            Kind::Moto => {
                cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]).env("MOTO_PORT", port.to_string());
            }
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        let guard = child.stdin.take();
        let url = format!("http://127.0.0.1:{port}");
        let emulator = Emulator { url, port, dir, child, guard };
        let ready = match kind {
            Kind::Ministack => "/_ministack/ready",
            Kind::Moto => "/moto-api/config",
        };
        emulator.wait_ready(ready, Duration::from_secs(30));
        emulator
    }

    /// moto, with its Step Functions interpreter switched on (and Lambda without
    /// Docker). The switch must come before anything is created: it swaps backends.
    pub fn moto() -> Emulator {
        let emulator = Emulator::start(Kind::Moto);
        let config = r#"{"lambda":{"use_docker":false},"stepfunctions":{"execute_state_machine":true}}"#;
        let (status, body) = emulator.post_json("/moto-api/config", config).expect("moto config");
        assert!((200..300).contains(&status), "moto refused its config: {body}");
        emulator
    }

    /// One moto for the whole test process, started on first use.
    pub fn shared_moto() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(Emulator::moto)
    }

    /// An AWS SDK configuration loader pointed at this emulator: us-east-1, dummy
    /// credentials, and hyper with rustls on ring, the TLS stack the Lambdas use (so no
    /// test build compiles a second one, aws-lc).
    pub fn sdk_config_loader(&self) -> aws_config::ConfigLoader {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let client =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(client)
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "emulator"))
    }

    /// The AWS SDK configuration of [`Emulator::sdk_config_loader`], loaded.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_loader().load().await
    }

    /// The environment variables that point the AWS SDK (and the AWS CLI) at this
    /// emulator with dummy credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// One ministack for the whole test process, started on first use.
    pub fn shared_ministack() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(|| Emulator::start(Kind::Ministack))
    }

    fn wait_ready(&self, path: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.get(path).is_ok_and(|(status, _)| (200..300).contains(&status)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "emulator at {} not ready after {limit:?}; log: {}",
                self.url,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The emulator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// GET `path`: status and body.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        let agent = agent();
        let mut res = agent.get(format!("{}{path}", self.url)).call().map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        Ok((status, res.body_mut().read_to_string().unwrap_or_default()))
    }

    /// POST a JSON body to `path`: status and body.
    pub fn post_json(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        let agent = agent();
        let mut res = agent
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        Ok((status, res.body_mut().read_to_string().unwrap_or_default()))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.write_all(b"stop\n");
        }
        let _ = self.child.wait();
    }
}
