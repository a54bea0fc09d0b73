//! What the end-to-end tests in ministack share (`tests/e2e_ministack.rs`,
//! `tests/e2e_events.rs`): the task binaries, built once for this machine, stripped and
//! zipped as `bootstrap`, and a unique name per run. Included by each with
//! `#[path = "e2e_support.rs"] mod e2e_support;`.

#![allow(dead_code)] // each test file uses its own part

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_lambda::primitives::Blob;
use stepshift_testkit::workspace_root;

pub const FUNCTIONS: [(&str, &str); 6] = [
    ("RecordVersionFunctionArn", "record-version"),
    ("ShiftWeightFunctionArn", "shift-weight"),
    ("CheckHealthFunctionArn", "check-health"),
    ("PromoteFunctionArn", "promote"),
    ("RollbackFunctionArn", "rollback"),
    ("TallyFunctionArn", "tally"),
];

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// Builds the six task binaries for this machine (once) and zips each as `bootstrap`.
pub fn bootstrap_zips() -> &'static Vec<(String, Vec<u8>)> {
    static ZIPS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ZIPS.get_or_init(|| {
        let root = workspace_root();
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.current_dir(&root).args(["build", "--bins"]);
        // cargo runs this test with the package's variables set (CARGO_MANIFEST_DIR,
        // CARGO_PKG_NAME, ...), and ring's build script is fingerprinted on them:
        // inherited, they would rebuild ring and everything above it (the TLS stack, the
        // SDK's HTTP client, all six binaries) here, and again at the next build outside.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let package = ["CARGO_PKG_", "CARGO_MANIFEST_"].iter().any(|p| name.starts_with(p))
                || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"]
                    .contains(&name.as_ref());
            if package {
                cargo.env_remove(name.as_ref());
            }
        }
        for (_, name) in FUNCTIONS {
            cargo.args(["-p", name]);
        }
        let status = cargo.status().expect("cargo build");
        assert!(status.success(), "building the task binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        FUNCTIONS
            .iter()
            .map(|(_, name)| {
                // Debug builds with the AWS SDK pass Lambda's 250 MB unzipped limit, which
                // ministack enforces: ship a stripped copy.
                let stripped = std::env::temp_dir().join(format!("stepshift-e2e-{}-{name}", std::process::id()));
                std::fs::copy(target.join("debug").join(name), &stripped).expect("task binary");
                let status = std::process::Command::new("strip").arg(&stripped).status().expect("strip (binutils)");
                assert!(status.success(), "strip failed");
                let binary = std::fs::read(&stripped).expect("stripped binary");
                let _ = std::fs::remove_file(&stripped);
                (name.to_string(), bootstrap_zip(&binary))
            })
            .collect()
    })
}

pub fn bootstrap_zip(binary: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(binary).unwrap();
    zip.finish().unwrap().into_inner()
}

pub fn empty_zip() -> Blob {
    let mut eocd = b"PK\x05\x06".to_vec();
    eocd.extend([0u8; 18]);
    Blob::new(eocd)
}
