//! `orch-node proc`: detached start, exact stop, status and wait, through the built binary.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{turn, wait_for, NODE};

/// Runs `orch-node proc ARGS` with its output captured.
fn proc(args: &[&str]) -> Output {
    Command::new(NODE)
        .arg("proc")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run orch-node")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts success and returns stdout.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `proc start` of `cmd` under `name`; returns the printed pid.
fn start(dir: &Path, name: &str, cmd: &[&str]) -> i32 {
    let mut args = vec![
        "start",
        "--dir",
        dir.to_str().unwrap(),
        "--name",
        name,
        "--",
    ];
    args.extend_from_slice(cmd);
    ok(proc(&args))
        .trim()
        .parse()
        .expect("start prints the pid")
}

fn stop(dir: &Path, name: &str) -> String {
    ok(proc(&[
        "stop",
        "--dir",
        dir.to_str().unwrap(),
        "--name",
        name,
    ]))
}

/// (state, pgrp, start time) of `pid`, read with the procfs crate.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let s = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some((s.state, s.pgrp, s.starttime))
}

/// Running (not zombie) and still the process that had `start_time`.
fn alive(pid: i32, start_time: u64) -> bool {
    stat(pid).is_some_and(|(st, _, t)| st != 'Z' && t == start_time)
}

/// Running processes of group `pgid` named `name`, as (pid, start time).
fn in_group(pgid: i32, name: &str) -> Vec<(i32, u64)> {
    let all = procfs::process::all_processes().unwrap();
    all.filter_map(|p| p.ok()?.stat().ok())
        .filter(|s| s.pgrp == pgid && s.state != 'Z' && s.comm == name)
        .map(|s| (s.pid, s.starttime))
        .collect()
}

/// SIGKILLs the recorded (pid, start time) pairs still running when dropped, so a failing
/// test leaves nothing behind.
#[derive(Default)]
struct Reaper(Vec<(i32, u64)>);

impl Reaper {
    fn watch(&mut self, pid: i32) {
        if let Some((_, _, t)) = stat(pid) {
            self.0.push((pid, t));
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for &(pid, t) in &self.0 {
            if alive(pid, t) {
                // SAFETY: plain kill of a pid this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// A child started directly by the test, killed by pid when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn start_returns_at_once_and_stop_ends_the_whole_group() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::default();
    // Like ssh: both output pipes are read to EOF, which only comes once no process holds
    // their write ends. A leaky session also hands over the channel as an extra descriptor
    // without close-on-exec (fd 3 here).
    let t0 = Instant::now();
    let mut cmd = Command::new(NODE);
    cmd.args(["proc", "start", "--dir"])
        .arg(dir.path())
        .args([
            "--name",
            "pair",
            "--",
            "sh",
            "-c",
            "sleep 1000 & sleep 1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| match libc::dup2(1, 3) {
            3 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        })
    };
    let child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let out = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("start kept the output pipe open");
    let returned = t0.elapsed();
    let pid: i32 = ok(out).trim().parse().unwrap();
    reaper.watch(pid);
    println!("start returned after {returned:?}");
    assert!(returned < Duration::from_secs(1), "took {returned:?}");

    let sleeps = wait_for(Duration::from_secs(5), || {
        let s = in_group(pid, "sleep");
        (s.len() == 2).then_some(s)
    })
    .expect("both sleeps run in the new process group");
    for &(p, _) in &sleeps {
        reaper.watch(p);
    }
    let rec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pair.pid")).unwrap())
            .unwrap();
    assert_eq!(rec["pid"], pid);
    assert_eq!(rec["pgid"], pid);
    assert_eq!(rec["argv"][2], "sleep 1000 & sleep 1000");
    assert_eq!(rec["start_time"], stat(pid).unwrap().2);

    let said = stop(dir.path(), "pair");
    assert!(said.contains("SIGTERM"), "{said}");
    for (p, t) in sleeps {
        assert!(!alive(p, t), "sleep {p} survived stop");
    }
    assert!(!dir.path().join("pair.pid").exists());
    let stopped: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("pair.pid.stopped")).unwrap(),
    )
    .unwrap();
    assert_eq!(stopped["stopped"]["outcome"], "terminated");
    assert!(dir.path().join("pair.log").exists(), "logs are kept");
    assert!(stop(dir.path(), "pair").contains("already stopped"));
}

#[test]
fn stop_ends_what_an_exited_command_left_behind() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::default();
    let pid = start(dir.path(), "daemon", &["sh", "-c", "sleep 1000 &"]);
    let left = wait_for(Duration::from_secs(5), || {
        let s = in_group(pid, "sleep");
        (s.len() == 1 && !in_group(pid, "sh").iter().any(|&(p, _)| p == pid)).then_some(s)
    })
    .expect("sh exits, its sleep stays");
    reaper.watch(left[0].0);
    let said = stop(dir.path(), "daemon");
    assert!(said.contains("1 process"), "{said}");
    assert!(
        !alive(left[0].0, left[0].1),
        "the orphaned sleep survived stop"
    );
}

#[test]
fn a_reused_pid_is_left_alone() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let bystander = ChildGuard(
        Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let pid = bystander.0.id() as i32;
    let (_, _, real_start) = stat(pid).unwrap();
    let fake = serde_json::json!({
        "name": "old",
        "pid": pid,
        "pgid": pid,
        "start_time": real_start.saturating_sub(500),
        "argv": ["sleep", "1000"],
        "log": dir.path().join("old.log"),
        "started_unix_ns": 0,
        "token": "0123456789abcdef0123456789abcdef",
    });
    std::fs::write(dir.path().join("old.pid"), fake.to_string()).unwrap();

    let said = stop(dir.path(), "old");
    assert!(said.contains("left alone"), "{said}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid, real_start), "an unrelated process was killed");
    let stopped: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("old.pid.stopped")).unwrap())
            .unwrap();
    assert_eq!(stopped["stopped"]["outcome"], "pid-reused");
}

#[test]
fn a_missing_command_fails_synchronously() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = proc(&[
        "start",
        "--dir",
        dir.path().to_str().unwrap(),
        "--name",
        "ghost",
        "--",
        "/nonexistent/no-such-program",
        "arg",
    ]);
    assert!(!out.status.success());
    assert!(t0.elapsed() < Duration::from_secs(1));
    let err = text(&out.stderr);
    println!("{err}");
    assert!(err.contains("cannot execute"), "{err}");
    assert!(err.contains("/nonexistent/no-such-program"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(!dir.path().join("ghost.pid").exists());
}

#[test]
fn a_running_name_is_not_started_twice() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::default();
    reaper.watch(start(dir.path(), "once", &["sleep", "1000"]));
    let again = proc(&[
        "start",
        "--dir",
        dir.path().to_str().unwrap(),
        "--name",
        "once",
        "--",
        "sleep",
        "1000",
    ]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already running"));
    stop(dir.path(), "once");
    reaper.watch(start(dir.path(), "once", &["sleep", "1000"]));
    stop(dir.path(), "once");
}

#[test]
fn stop_all_goes_newest_first() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::default();
    let order = dir.path().join("order");
    for name in ["a", "b", "c"] {
        let script = format!(
            "trap 'echo {name} >> {}; exit 0' TERM; while :; do sleep 0.05; done",
            order.display()
        );
        reaper.watch(start(dir.path(), name, &["sh", "-c", &script]));
    }
    let said = ok(proc(&["stop-all", "--dir", dir.path().to_str().unwrap()]));
    let names: Vec<&str> = said.lines().map(|l| &l[..1]).collect();
    assert_eq!(names, ["c", "b", "a"], "{said}");
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "c\nb\na\n");
    for name in ["a", "b", "c"] {
        assert!(dir.path().join(format!("{name}.pid.stopped")).exists());
    }
}

#[test]
fn status_json_wait_env_and_log() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut reaper = Reaper::default();
    reaper.watch(start(dir.path(), "long", &["sleep", "1000"]));
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = proc(&[
        "start",
        "--dir",
        d,
        "--name",
        "quick",
        "--cwd",
        work.to_str().unwrap(),
        "--env",
        "GREETING=hello there",
        "--",
        "sh",
        "-c",
        "echo \"$GREETING from $(pwd)\"; echo oops >&2; exit 3",
    ]);
    ok(out);

    let waited = ok(proc(&[
        "wait",
        "--dir",
        d,
        "--name",
        "quick",
        "--timeout",
        "5",
    ]));
    assert!(waited.contains("exited"), "{waited}");
    let log = std::fs::read_to_string(dir.path().join("quick.log")).unwrap();
    assert!(
        log.contains(&format!("hello there from {}", work.display())),
        "{log}"
    );
    assert!(log.contains("oops"), "{log}");

    let timed_out = proc(&["wait", "--dir", d, "--name", "long", "--timeout", "1"]);
    assert!(!timed_out.status.success());
    assert!(text(&timed_out.stderr).contains("still running"));

    let rows: Value = serde_json::from_str(&ok(proc(&["status", "--dir", d, "--json"]))).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "long");
    assert_eq!(rows[0]["alive"], true);
    assert_eq!(rows[0]["processes"], 1);
    assert!(rows[0]["uptime_s"].as_f64().unwrap() >= 1.0);
    assert_eq!(rows[0]["argv"], serde_json::json!(["sleep", "1000"]));
    assert_eq!(rows[1]["name"], "quick");
    assert_eq!(rows[1]["alive"], false);
    assert!(rows[1]["uptime_s"].is_null());

    let table = ok(proc(&["status", "--dir", d]));
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("sleep 1000"), "{table}");

    ok(proc(&["stop-all", "--dir", d]));
    let waited = ok(proc(&["wait", "--dir", d, "--name", "long"]));
    assert!(waited.contains("SIGTERM"), "{waited}");
    let rows: Value = serde_json::from_str(&ok(proc(&["status", "--dir", d, "--json"]))).unwrap();
    assert_eq!(rows, serde_json::json!([]));
}
