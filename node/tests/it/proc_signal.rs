//! `orch-node proc signal` (the faults' kill and pause) and `proc stop` of a paused process,
//! through the built binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{procs, turn, wait_for, NODE};

fn proc(dir: &Path, args: &[&str]) -> Output {
    Command::new(NODE)
        .arg("proc")
        .args(&args[..1])
        .arg("--dir")
        .arg(dir)
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .expect("run orch-node")
}

fn ok(out: Output) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The state letter of /proc/PID/stat (`S` sleeping, `T` stopped), `None` once it is gone.
fn state(pid: i32) -> Option<char> {
    procs::stat(pid as u32)
        .map(|(state, _)| state)
        .filter(|&c| c != 'Z')
}

fn start(dir: &Path, name: &str) -> i32 {
    let out = ok(proc(dir, &["start", "--name", name, "--", "sleep", "1000"]));
    out.trim().parse().unwrap()
}

#[test]
fn stop_and_cont_pause_the_process_and_stop_ends_a_paused_one() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let pid = start(dir.path(), "s");
    let said = ok(proc(
        dir.path(),
        &["signal", "--name", "s", "--signal", "STOP"],
    ));
    assert!(
        said.contains("SIGSTOP to pid") && said.contains(" ns"),
        "{said}"
    );
    let t = |want: char| {
        wait_for(Duration::from_secs(5), || {
            (state(pid) == Some(want)).then_some(())
        })
    };
    assert!(t('T').is_some(), "not stopped: {:?}", state(pid));
    ok(proc(
        dir.path(),
        &["signal", "--name", "s", "--signal", "CONT"],
    ));
    assert!(t('S').is_some(), "not continued: {:?}", state(pid));
    // Paused again, then stopped: SIGTERM must reach it without waiting for SIGKILL.
    ok(proc(
        dir.path(),
        &["signal", "--name", "s", "--signal", "STOP"],
    ));
    assert!(t('T').is_some());
    let said = ok(proc(dir.path(), &["stop", "--name", "s", "--grace", "30"]));
    assert!(said.contains("with SIGTERM"), "{said}");
    assert_eq!(state(pid), None);
}

#[test]
fn kill_leaves_the_record_so_the_name_can_start_again() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let pid = start(dir.path(), "k");
    ok(proc(
        dir.path(),
        &["signal", "--name", "k", "--signal", "KILL"],
    ));
    assert!(wait_for(Duration::from_secs(5), || state(pid)
        .is_none()
        .then_some(()))
    .is_some());
    assert!(dir.path().join("k.pid").exists());
    let again = proc(dir.path(), &["signal", "--name", "k", "--signal", "KILL"]);
    assert!(!again.status.success(), "signalled a dead process");
    let restarted = start(dir.path(), "k");
    assert_ne!(restarted, pid);
    ok(proc(dir.path(), &["stop", "--name", "k"]));
    assert_eq!(state(restarted), None);
}

#[test]
fn unknown_signals_and_names_are_refused() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let out = proc(dir.path(), &["signal", "--name", "x", "--signal", "HUP"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("use one of KILL"));
    let out = proc(dir.path(), &["signal", "--name", "x", "--signal", "KILL"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing named x runs"));
}
