//! The after ÷ before table of `bench compare --baseline=PATH`: each anygrpc pair of this
//! binary against the same pair of the earlier binary, run right before it in the same round.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{JUDGED, Options, RoundRatios, Run, Side, figures_of, median, median_cells, runs_of};

/// How much worse than before a row's judged figure may be before the table flags it.
const TOLERANCE: f64 = 0.05;

/// Whether a judged after ÷ before figure is more than [`TOLERANCE`] worse: for latency a
/// larger p50 is worse; for throughput a smaller rate-or-CPU figure is.
fn worse(latency: bool, judged: f64) -> bool {
    if latency {
        judged > 1.0 + TOLERANCE
    } else {
        judged < 1.0 - TOLERANCE
    }
}

/// Appends the after ÷ before table.
pub(super) fn write(
    out: &mut String,
    options: &Options,
    pairs: &[(Side, Side)],
    results: &BTreeMap<(usize, usize), Vec<Run>>,
) {
    let label = options.baseline.as_ref().map_or("", |b| b.label.as_str());
    let _ = writeln!(
        out,
        "\nAfter ÷ before: this binary's pair over the same pair of the baseline (`@{label}`), which ran right before it in the same round; the median over the rounds. rate and p50/p99: after over before (rate > 1 and p50 < 1 are better); CPU: before's CPU per 1,000 over after's, for the side under test (> 1 is cheaper now). A row is `worse` when its judged figure (p50 for latency, the better of rate and CPU for throughput) is more than {:.0} % worse than before.\n",
        TOLERANCE * 100.0
    );
    let _ = writeln!(
        out,
        "| scenario | executor | side | rate | p50 | p99 | CPU before÷after | verdict | by round |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|---|---|");
    for (si, scenario) in options.scenarios.iter().enumerate() {
        let latency = scenario.is_latency();
        for rt in &options.runtimes {
            for side in JUDGED {
                let after = runs_of(results, pairs, si, &side.pair(&Side::Anygrpc(rt.clone())));
                let before = runs_of(results, pairs, si, &side.pair(&Side::Baseline(rt.clone())));
                let (Some(after), Some(before)) = (after, before) else {
                    continue;
                };
                let rounds: Vec<RoundRatios> = after
                    .iter()
                    .zip(before)
                    .map(|(a, b)| RoundRatios::of(side, a, b, None))
                    .collect();
                let m = |f: fn(&RoundRatios) -> f64| median(rounds.iter().map(f).collect());
                let judged = RoundRatios::judged(latency);
                let verdict = if worse(latency, m(judged)) {
                    "worse"
                } else {
                    "ok"
                };
                let _ = writeln!(
                    out,
                    "| {} | {rt} | {} | {} | {verdict} | {} |",
                    scenario.name,
                    side.label(),
                    median_cells(&rounds),
                    figures_of(&rounds, judged),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_worse_only_past_the_tolerance_in_the_direction_that_hurts() {
        assert!(!worse(true, 1.04), "p50 4 % slower is within");
        assert!(worse(true, 1.06), "p50 6 % slower is worse");
        assert!(!worse(true, 0.5), "a faster p50 is never worse");
        assert!(!worse(false, 0.96), "throughput 4 % lower is within");
        assert!(worse(false, 0.94), "throughput 6 % lower is worse");
        assert!(!worse(false, 2.0), "more throughput is never worse");
    }

    #[test]
    fn each_pair_is_judged_against_the_baselines_same_pair() {
        let options = Options {
            scenarios: vec![crate::bench::find("unary-latency").unwrap()],
            runtimes: vec!["smol".into()],
            baseline: Some(super::super::Baseline {
                exe: "/old/bench".into(),
                label: "abc1234".into(),
            }),
            ..Options::default()
        };
        let pairs = super::super::pairs(&options);
        // The baseline's pair runs right before the same pair of this binary.
        let both = pairs
            .iter()
            .position(|p| *p == JUDGED[0].pair(&Side::Anygrpc("smol".into())))
            .unwrap();
        assert_eq!(
            pairs[both - 1],
            JUDGED[0].pair(&Side::Baseline("smol".into()))
        );
        assert_eq!(pairs.len(), 1 + 6 + 1, "tonic, three sides twice, floor");
        let mut results = BTreeMap::new();
        let fake = super::super::tests::run;
        // Both sides: p50 10 % slower now. Server side: 2 % slower. Client side: faster.
        results.insert((0, both - 1), vec![fake(100.0, 100.0, 1.0, 1.0)]);
        results.insert((0, both), vec![fake(90.0, 110.0, 1.0, 1.0)]);
        results.insert((0, both + 1), vec![fake(100.0, 100.0, 1.0, 1.0)]);
        results.insert((0, both + 2), vec![fake(98.0, 102.0, 1.0, 1.0)]);
        results.insert((0, both + 3), vec![fake(100.0, 100.0, 1.0, 1.0)]);
        results.insert((0, both + 4), vec![fake(120.0, 80.0, 1.0, 1.0)]);
        let mut out = String::new();
        write(&mut out, &options, &pairs, &results);
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| unary")).collect();
        assert_eq!(rows.len(), 3, "{out}");
        assert!(rows[0].contains("| both | 0.90 | 1.10 |") && rows[0].contains("| worse |"));
        assert!(
            rows[1].contains("| server |") && rows[1].contains("| ok |"),
            "{}",
            rows[1]
        );
        assert!(rows[2].contains("| client | 1.20 | 0.80 |") && rows[2].contains("| ok |"));
        assert!(out.contains("`@abc1234`"), "{out}");
    }
}
