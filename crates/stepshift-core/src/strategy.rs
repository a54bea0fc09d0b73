//! Traffic-shifting strategies: CodeDeploy's presets and custom step lists, and their
//! expansion into the concrete steps the state machine walks.

use serde::{Deserialize, Serialize};

/// One traffic level of a deployment: shift `weight_percent` of the alias's traffic to
/// the candidate, then watch it for `bake_seconds`. The last step is always 100%.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Share of traffic the candidate receives at this step, 0 < w ≤ 100.
    pub weight_percent: f64,
    /// How long to watch this step before judging it final. The 100% step is watched for
    /// the request's `lock_in_seconds` instead.
    pub bake_seconds: u64,
    /// Whether a human must approve before traffic moves to this step.
    pub approval: bool,
}

/// A named preset, following AWS CodeDeploy's predefined Lambda deployment configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name used in requests, e.g. `canary-10-5m`.
    pub name: &'static str,
    /// The CodeDeploy configuration it mirrors.
    pub codedeploy: &'static str,
    kind: PresetKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PresetKind {
    AllAtOnce,
    /// 10% for this many minutes, then 100%.
    Canary10(u64),
    /// +10% every this many minutes until 100%.
    Linear10(u64),
}

/// Every preset stepshift knows, in the order the documentation lists them.
pub const PRESETS: [Preset; 9] = [
    Preset { name: "all-at-once", codedeploy: "LambdaAllAtOnce", kind: PresetKind::AllAtOnce },
    Preset { name: "canary-10-5m", codedeploy: "LambdaCanary10Percent5Minutes", kind: PresetKind::Canary10(5) },
    Preset { name: "canary-10-10m", codedeploy: "LambdaCanary10Percent10Minutes", kind: PresetKind::Canary10(10) },
    Preset { name: "canary-10-15m", codedeploy: "LambdaCanary10Percent15Minutes", kind: PresetKind::Canary10(15) },
    Preset { name: "canary-10-30m", codedeploy: "LambdaCanary10Percent30Minutes", kind: PresetKind::Canary10(30) },
    Preset {
        name: "linear-10-every-1m",
        codedeploy: "LambdaLinear10PercentEvery1Minute",
        kind: PresetKind::Linear10(1),
    },
    Preset {
        name: "linear-10-every-2m",
        codedeploy: "LambdaLinear10PercentEvery2Minutes",
        kind: PresetKind::Linear10(2),
    },
    Preset {
        name: "linear-10-every-3m",
        codedeploy: "LambdaLinear10PercentEvery3Minutes",
        kind: PresetKind::Linear10(3),
    },
    Preset {
        name: "linear-10-every-10m",
        codedeploy: "LambdaLinear10PercentEvery10Minutes",
        kind: PresetKind::Linear10(10),
    },
];

impl Preset {
    /// The preset called `name`, if any.
    pub fn find(name: &str) -> Option<Preset> {
        PRESETS.iter().copied().find(|p| p.name == name)
    }

    /// The steps this preset walks; the last one is 100% with no bake of its own.
    pub fn steps(&self) -> Vec<Step> {
        let step = |weight_percent: f64, bake_seconds: u64| Step { weight_percent, bake_seconds, approval: false };
        match self.kind {
            PresetKind::AllAtOnce => vec![step(100.0, 0)],
            PresetKind::Canary10(minutes) => vec![step(10.0, minutes * 60), step(100.0, 0)],
            PresetKind::Linear10(minutes) => {
                (1..=10).map(|i| step(f64::from(i * 10), if i < 10 { minutes * 60 } else { 0 })).collect()
            }
        }
    }
}

/// The names of all presets, comma separated, for error messages and help texts.
pub fn preset_names() -> String {
    PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_presets_are_ten_percent_then_all() {
        let steps = Preset::find("canary-10-15m").unwrap().steps();
        assert_eq!(steps.len(), 2);
        assert_eq!((steps[0].weight_percent, steps[0].bake_seconds), (10.0, 900));
        assert_eq!((steps[1].weight_percent, steps[1].bake_seconds), (100.0, 0));
    }

    #[test]
    fn linear_presets_add_ten_percent_per_interval() {
        let steps = Preset::find("linear-10-every-3m").unwrap().steps();
        let weights: Vec<f64> = steps.iter().map(|s| s.weight_percent).collect();
        assert_eq!(weights, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]);
        assert!(steps[..9].iter().all(|s| s.bake_seconds == 180));
        assert_eq!(steps[9].bake_seconds, 0);
    }

    #[test]
    fn all_at_once_is_one_full_step() {
        let steps = Preset::find("all-at-once").unwrap().steps();
        assert_eq!(steps, vec![Step { weight_percent: 100.0, bake_seconds: 0, approval: false }]);
    }

    #[test]
    fn unknown_names_are_not_presets() {
        assert!(Preset::find("canary-10-7m").is_none());
        assert!(preset_names().contains("linear-10-every-10m"));
    }
}
