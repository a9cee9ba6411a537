use std::path::Path;

use super::*;
use crate::inventory::Inventory;

fn inventory() -> Inventory {
    let text = "defaults:\n  interfaces: [eth1]\nhosts:\n  - {name: n1, address: 10.1.0.1, experiment_ip: 10.0.1.2}\n  - {name: n2, address: 10.1.0.2, experiment_ip: 10.0.2.2}\n  - {name: n3, address: 10.1.0.3, experiment_ip: 10.0.3.2}\n";
    Inventory::parse(text, Path::new("inv.yaml")).unwrap()
}

fn validate(yaml: &str) -> Result<Delays, Vec<String>> {
    let inv = inventory();
    let hosts: Vec<&Host> = inv.hosts.iter().collect();
    let spec: DelaySpec = serde_saphyr::from_str(yaml).unwrap();
    let mut problems = Problems::new(Path::new("s.yaml"));
    spec.validate(&hosts, &mut problems)
        .ok_or_else(|| problems.take().iter().map(|p| p.to_string()).collect())
}

fn rules<'a>(d: &'a Delays, host: &str) -> Vec<(&'a str, Option<&'a str>, f64)> {
    d.hosts
        .iter()
        .find(|(h, _)| h == host)
        .map(|(_, r)| {
            r.iter()
                .map(|e| (e.to.as_str(), e.interface.as_deref(), e.link.delay_ms))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn asymmetric_matrix_and_both_ways() {
    let d = validate(
        "pairs:\n  - {from: n1, to: n2, delay_ms: 5, both_ways: true}\n  - {from: n1, to: n3, delay_ms: 20}\n  - {from: n3, to: n1, delay_ms: 30, jitter_ms: 2, distribution: normal, loss_pct: 0.5}\n",
    )
    .unwrap();
    assert_eq!(rules(&d, "n1"), [("n2", None, 5.0), ("n3", None, 20.0)]);
    assert_eq!(rules(&d, "n2"), [("n1", None, 5.0)]);
    assert_eq!(rules(&d, "n3"), [("n1", None, 30.0)]);
    let link = d.hosts[2].1[0].link;
    assert_eq!(link.distribution, Distribution::Normal);
    assert_eq!(link.to_string(), "30 ms ± 2 ms normal, 0.5% loss");
    assert_eq!(d.hosts[2].1[0].dst.to_string(), "10.0.1.2");
}

#[test]
fn interface_delay_reaches_every_peer_and_pairs_override_it() {
    let d = validate(
        "interfaces:\n  - {host: n2, interface: eth1, delay_ms: 6, jitter_ms: 3, distribution: pareto}\npairs:\n  - {from: n2, to: n3, delay_ms: 1}\n",
    )
    .unwrap();
    assert_eq!(
        rules(&d, "n2"),
        [("n1", Some("eth1"), 6.0), ("n3", None, 1.0)]
    );
    assert!(rules(&d, "n1").is_empty());
}

#[test]
fn every_problem_is_located() {
    let errors = validate(
        "interfaces:\n  - {host: n1, interface: eth9, delay_ms: 1}\n  - {host: n2, delay_ms: 1, distribution: normal}\n  - {host: n3, delay_ms: 1, distribution: gauss, jitter_ms: 1}\npairs:\n  - {from: n1, to: n7, delay_ms: 5}\n  - {from: n1, to: n1, delay_ms: 5}\n  - {from: n1, to: n2, delay_ms: -1, loss_pct: 200}\n  - {from: n2, to: n3, delay_ms: 1, both_ways: true}\n  - {from: n3, to: n2, delay_ms: 2}\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "s.yaml:2:27: delays.interfaces[0].interface: n1 has no interface `eth9` in the inventory; it has eth1",
            "s.yaml:3:43: delays.interfaces[1].distribution: a distribution needs jitter_ms > 0 (as with netem)",
            "s.yaml:4:43: delays.interfaces[2].distribution: unknown distribution `gauss`, expected one of uniform, normal, pareto, paretonormal",
            "s.yaml:6:20: delays.pairs[0].to: unknown host `n7`; the experiment has n1, n2, n3",
            "s.yaml:7:20: delays.pairs[1].to: a pair needs two different hosts, not n1 twice",
            "s.yaml:8:34: delays.pairs[2].delay_ms: must be between 0 and 60000 ms, not -1",
            "s.yaml:8:48: delays.pairs[2].loss_pct: must be between 0 and 100, not 200",
            "s.yaml:10:12: delays.pairs[4]: a second delay from n3 to n2 (the first is on line 9)",
        ]
    );
}

#[test]
fn tolerances_default_to_20_pct_and_2_ms_and_are_checked() {
    assert_eq!(validate("{}").unwrap().tolerance, Tolerance::default());
    let d = validate("tolerance_pct: 10\ntolerance_ms: 0.5\n").unwrap();
    assert_eq!(d.tolerance, Tolerance { pct: 10.0, ms: 0.5 });
    let errors = validate("tolerance_pct: -1\ntolerance_ms: .nan\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "s.yaml:1:16: delays.tolerance_pct: must be a number >= 0, not -1",
            "s.yaml:2:15: delays.tolerance_ms: must be a number >= 0, not NaN",
        ]
    );
}

#[test]
fn method_is_auto_unless_named_and_a_typo_is_located() {
    let pair = "pairs:\n  - {from: n1, to: n2, delay_ms: 5}\n";
    assert_eq!(validate(pair).unwrap().method, Method::Auto);
    for m in Method::ALL {
        let d = validate(&format!("method: {}\n{pair}", m.as_str())).unwrap();
        assert_eq!(d.method, m);
    }
    let errors = validate(&format!("{pair}method: tc\n")).unwrap_err();
    assert_eq!(
        errors,
        ["s.yaml:3:9: delays.method: unknown method `tc`, expected one of auto, netem, emulator"]
    );
}

#[test]
fn duplicate_and_mixed_interface_delays_are_refused() {
    let errors = validate(
        "interfaces:\n  - {host: n1, delay_ms: 1}\n  - {host: n1, delay_ms: 2}\n  - {host: n2, delay_ms: 1}\n  - {host: n2, interface: eth1, delay_ms: 1}\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("a second delay for n1 (the first is on line 2)"));
    assert!(errors[1]
        .contains("n2 has a delay for all its interfaces and one for a single interface (line 4)"));
    assert!(validate("{}").unwrap().is_empty());
}

#[test]
fn profiles_cut_at_zero_are_refused_unless_allowed() {
    let seed = "interfaces:\n  - {host: n1, delay_ms: 100, jitter_ms: 100, distribution: normal}\n";
    let errors = validate(seed).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("s.yaml:2:") && errors[0].contains("delays.interfaces[0]"),
        "{errors:?}"
    );
    for part in [
        "below zero for 15.9% of packets",
        "realised mean is 108.33 ms",
        "+8.3%",
    ] {
        assert!(errors[0].contains(part), "{part}: {errors:?}");
    }
    let allowed = seed.replace("normal}", "normal, allow_truncation: true}");
    assert_eq!(validate(&allowed).unwrap().hosts.len(), 1);
    // The seed's 2 +- 1 ms stays accepted; 5 +- 50 ms uniform on a pair does not.
    assert!(validate(
        "interfaces:\n  - {host: n1, delay_ms: 2, jitter_ms: 1, distribution: normal}\n"
    )
    .is_ok());
    let errors =
        validate("pairs:\n  - {from: n1, to: n2, delay_ms: 5, jitter_ms: 50}\n").unwrap_err();
    assert!(
        errors[0].contains("delays.pairs[0]") && errors[0].contains("realised mean is 15.1"),
        "{errors:?}"
    );
}

#[test]
fn compensate_is_off_unless_asked() {
    assert!(!validate("{}").unwrap().compensate);
    assert!(validate("compensate: true\n").unwrap().compensate);
}
