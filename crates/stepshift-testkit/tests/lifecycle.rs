//! An emulator is stopped, and its directory deleted, when it is dropped.

use stepshift_testkit::{Emulator, Kind};

#[test]
fn a_dropped_emulator_is_stopped_and_its_directory_deleted() {
    let emulator = Emulator::start(Kind::Moto);
    let (dir, url) = (emulator.dir.clone(), emulator.url.clone());
    assert!(dir.join("log").exists(), "the emulator's directory holds its log while it runs");
    drop(emulator);
    assert!(!dir.exists(), "{} is still there after the emulator stopped", dir.display());
    let agent = ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_secs(2))).build();
    let agent: ureq::Agent = agent.into();
    assert!(agent.get(format!("{url}/moto-api/config")).call().is_err(), "the emulator still answers at {url}");
}
