//! Runs that can be trusted, on a real lab (real sshd, a real ZooKeeper ensemble, `orch-node
//! ycsb`): a run whose operations all failed exits non-zero and shows the failed count per
//! operation, and the logs of the shipped lab scenario are small without ZooKeeper's data.
//! Needs root, Debian's zookeeper package and the musl target (.ci/run).

use crate::util::{setup, text, workspace, Lab};

/// A read-only workload on an empty store, as when real YCSB's inserts all failed: the load's
/// values (2 MB) are over ZooKeeper's 1 MB request limit, so its insert fails and the load
/// stops, and then every read finds no record (NoNode, `Return=ERROR`). Two runs of the
/// matrix, so the failed first run does not keep the second from running.
#[test]
fn a_run_whose_operations_all_fail_exits_non_zero_with_the_count_per_operation() {
    let lab = Lab::up("yfail", "10.170", 3);
    setup(&lab);
    let scenario = lab.dir.path().join("empty.yaml");
    std::fs::write(
        &scenario,
        "name: empty-store\nzookeeper:\n  leader: host2\nworkload:\n  client: host1\n  \
         workload: workloadc\n  properties:\n    recordcount: 20\n    operationcount: 50\n    \
         fieldcount: 1\n    fieldlength: 2000000\nmatrix:\n  workload.threads: [1, 2]\n",
    )
    .unwrap();
    let results = lab.dir.path().join("results");
    let out = lab.run(&scenario, &results);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "must exit non-zero:\n{stdout}\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for label in ["r01-threads=1-rep1", "r02-threads=2-rep1"] {
        assert!(
            stderr.contains(&format!("error: run {label} failed: load: ")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("run: 50 of 50 operations failed (100.0%: READ 50)"),
        "{stderr}"
    );
    // Already while the runs go on, each phase says what failed.
    assert!(
        stderr.contains("; 50 of 50 operations FAILED\n"),
        "{stderr}"
    );
    // The table: no READ succeeded, all 50 failed, in both runs.
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` row:\n{stdout}"))
            .split_whitespace()
            .skip(name.split_whitespace().count())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("READ ops"), ["0", "0"], "{stdout}");
    assert_eq!(row("READ failed"), ["50", "50"], "{stdout}");

    let latest = results.join("empty-store/latest");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("summary.json")).unwrap()).unwrap();
    for run in summary["runs"].as_array().unwrap() {
        assert_eq!(run["errors"], 50);
        let why = run["failed"].as_str().unwrap_or_default();
        assert!(why.contains("above workload.max_error_pct 0"), "{run}");
    }
    let csv = std::fs::read_to_string(latest.join("summary.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in csv.lines().skip(1) {
        let cells = csv_cells(line);
        assert_eq!(cells[col("READ_failed")], "50", "{csv}");
        assert!(cells[col("failed")].starts_with("load: "), "{csv}");
    }

    // The same runs with every failure tolerated exit 0.
    let tolerant = lab.dir.path().join("tolerant.yaml");
    std::fs::write(
        &tolerant,
        std::fs::read_to_string(&scenario)
            .unwrap()
            .replace(
                "  workload: workloadc\n",
                "  workload: workloadc\n  max_error_pct: 100\n",
            )
            .replace("[1, 2]", "[1]"),
    )
    .unwrap();
    let out = lab.run(&tolerant, &results);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Something already listening on host2's client port: the run refuses to start and names
    // host, port and process.
    let listen = lab.exec(&[
        "--hosts",
        "host2",
        "--",
        "sh",
        "-c",
        "setsid python3 -c 'import socket, time; s = socket.socket(); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 2181)); \
         s.listen(); time.sleep(300)' </dev/null >/dev/null 2>&1 & echo $!",
    ]);
    assert!(listen.status.success(), "{}", text(&listen.stderr));
    // `orch exec` prefixes each line with `host2|`.
    let pid = text(&listen.stdout)
        .split('|')
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(pid.parse::<u32>().is_ok(), "{}", text(&listen.stdout));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let out = lab.run(&tolerant, &results);
    let stopped = lab.exec(&["--hosts", "host2", "--", "kill", &pid]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ZooKeeper, its ports are in use"),
        "{stderr}"
    );
    assert!(
        stderr.contains("host2: port 2181 on 0.0.0.0:2181 (python3, pid "),
        "{stderr}"
    );
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
}

/// One CSV row's cells; a quoted cell may hold commas (the failure reason does).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

/// `orch fetch-logs` after the shipped lab scenario (two runs, five hosts) stays small without
/// ZooKeeper's data; the sizes are printed for docs/setup.md.
#[test]
fn logs_of_the_shipped_lab_scenario_are_small_without_zookeeper_data() {
    let lab = Lab::up("ylogs", "10.171", 5);
    setup(&lab);
    let results = lab.dir.path().join("results");
    let inv = lab.inventory.to_str().unwrap();
    let scenario = workspace("scenarios/zk-leader-placement-lab.yaml");
    let out = lab.run(&scenario, &results);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fetch = |extra: &[&str], name: &str| {
        let tarball = lab.dir.path().join(name);
        let mut args = vec![
            "-i",
            inv,
            "fetch-logs",
            "--results",
            results.to_str().unwrap(),
            "-o",
            tarball.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = lab.orch(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let manifest = orch::logs::read_manifest(&tarball).unwrap();
        // What `orch setup` pushed to each host, by hash.
        for h in &manifest.hosts {
            let node = h.artifacts.get("orch-node").map_or(0, String::len);
            assert_eq!(node, 64, "{}: {:?}", h.name, h.artifacts);
            assert!(
                h.artifacts
                    .keys()
                    .any(|k| k.starts_with("apache-zookeeper-")),
                "{}: {:?}",
                h.name,
                h.artifacts
            );
        }
        let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
        eprintln!(
            "fetch-logs {}: {} files, {bytes} bytes uncompressed, {} bytes compressed",
            extra.join(" "),
            manifest.files.len(),
            std::fs::metadata(&tarball).unwrap().len()
        );
        bytes
    };
    let small = fetch(&[], "logs.tar.gz");
    let all = fetch(&["--include-zk-data"], "all.tar.gz");
    assert!(small < 20_000_000, "{small} bytes without ZooKeeper's data");
    assert!(
        all > small,
        "the data directories hold something: {all} vs {small}"
    );
}
