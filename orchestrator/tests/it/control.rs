//! `orch exec` and `orch check` against real sshd processes on a local lab (network namespaces).
//! Needs root. Every test makes its own lab (own name, own network, own state dir) and tears it
//! down when it ends, also when an assertion fails.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{lines_of, text, write, Lab};

#[test]
fn exec_reaches_every_host_with_its_own_address() {
    let lab = Lab::up("ctla", "10.211", 5);
    let out = lab.exec(&["--", "hostname", "-I"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for i in 1..=5 {
        let lines = lines_of(&stdout, &format!("host{i}"));
        assert_eq!(lines.len(), 1, "host{i} output in:\n{stdout}");
        assert_eq!(lines[0].trim(), lab.address(i), "host{i}");
    }
    assert!(text(&out.stderr).contains("5 ok, 0 failed, 0 unreachable"));
}

#[test]
fn arguments_reach_the_host_literally() {
    let lab = Lab::up("ctlb", "10.212", 2);
    let marker = "/tmp/orch-quoting-pwned";
    let args = [
        "two words",
        "it's",
        "\"dq\"",
        "$(touch /tmp/orch-quoting-pwned)",
        "`id`",
        "x; touch /tmp/orch-quoting-pwned",
        "$HOME",
        "*",
    ];
    let mut argv = vec!["--", "printf", "[%s]\\n"];
    argv.extend_from_slice(&args);
    let out = lab.exec(&argv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let expected: Vec<String> = args.iter().map(|a| format!("[{a}]")).collect();
    for host in ["host1", "host2"] {
        assert_eq!(lines_of(&stdout, host), expected, "{host}");
    }
    let newline = lab.exec(&["--", "printf", "<%s>", "line1\nline2"]);
    assert!(
        text(&newline.stdout).contains("| line2>"),
        "{}",
        text(&newline.stdout)
    );
    let check = lab.exec(&["--", "test", "!", "-e", marker]);
    assert!(check.status.success(), "a quoted argument was executed");
}

#[test]
fn failing_command_gives_non_zero_exit_and_per_host_status() {
    let lab = Lab::up("ctlc", "10.213", 3);
    let out = lab.exec(&[
        "--hosts",
        "host2",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 7",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("host2 ! oops"), "{stderr}");
    assert!(stderr.contains("host2 : exit status 7"), "{stderr}");
    assert!(stderr.contains("1 hosts: 0 ok, 1 failed"), "{stderr}");
}

#[test]
fn dead_host_is_reported_unreachable_within_the_connect_timeout() {
    let lab = Lab::up("ctld", "10.214", 5);
    // Warm: master connections are up; host3's goes stale when the host dies.
    let warm = lab.exec(&["--", "true"]);
    assert!(warm.status.success(), "{}", text(&warm.stderr));
    lab.kill_host(3);
    let started = Instant::now();
    let out = lab.exec(&["--", "true"]);
    let elapsed = started.elapsed();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("host3 : unreachable"), "{stderr}");
    assert!(
        stderr.contains("5 hosts: 4 ok, 0 failed, 1 unreachable"),
        "{stderr}"
    );
    // The lab inventory sets connect_timeout_secs: 2.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn check_prints_facts_for_every_host() {
    let lab = Lab::up("ctle", "10.215", 3);
    let out = lab.orch(&["-i", lab.inventory.to_str().unwrap(), "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let kernel = text(&Command::new("uname").arg("-r").output().unwrap().stdout);
    assert!(stdout.starts_with("HOST"), "{stdout}");
    for i in 1..=3 {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("host{i} ")))
            .unwrap_or_else(|| panic!("no row for host{i} in\n{stdout}"));
        assert!(row.contains(" yes "), "{row}");
        assert!(row.contains(" root "), "{row}");
        assert!(row.contains(std::env::consts::ARCH), "{row}");
        assert!(row.contains(kernel.trim()), "{row}");
    }
}

#[test]
fn command_timeout_kills_the_remote_command() {
    let lab = Lab::up("ctlf", "10.216", 2);
    let started = Instant::now();
    let out = lab.exec(&["--timeout", "1", "--", "sleep", "600"]);
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let left = lab.exec(&[
        "--",
        "sh",
        "-c",
        "ps -eo args | grep -c '^sleep 600' || true",
    ]);
    for host in ["host1", "host2"] {
        assert_eq!(lines_of(&text(&left.stdout), host), ["0"], "{host}");
    }
}

#[test]
fn unknown_host_key_fails_with_advice_and_accept_new_learns_it() {
    let lab = Lab::up("ctlg", "10.217", 1);
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    let empty_known = lab.dir.path().join("empty_known_hosts");
    std::fs::write(&empty_known, "").unwrap();
    let control = lab.dir.path().join("ctl");
    let strict = rewrite(&inv, &empty_known, &control, "strict");
    let strict_path = write(lab.dir.path(), "strict.yaml", &strict);
    let out = lab.orch(&["-i", strict_path.to_str().unwrap(), "exec", "--", "true"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("host key"), "{stderr}");
    assert!(stderr.contains("accept-new"), "{stderr}");

    let learn = rewrite(&inv, &empty_known, &control, "accept-new");
    let learn_path = write(lab.dir.path(), "learn.yaml", &learn);
    let out = lab.orch(&["-i", learn_path.to_str().unwrap(), "exec", "--", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let learned = Command::new("ssh-keygen")
        .args(["-F", &lab.address(1), "-f"])
        .arg(&empty_known)
        .output()
        .unwrap();
    assert!(
        learned.status.success(),
        "accept-new did not record the key"
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for s in $(find {} -name master); do ssh -O exit -S $s x 2>/dev/null; done",
            control.display()
        ))
        .status();
}

fn rewrite(inv: &str, known: &Path, control: &Path, policy: &str) -> String {
    inv.lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            if t.starts_with("known_hosts_file:") {
                format!("{indent}known_hosts_file: {}", known.display())
            } else if t.starts_with("control_dir:") {
                format!("{indent}control_dir: {}", control.display())
            } else if t.starts_with("host_key:") {
                format!("{indent}host_key: {policy}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn upload_is_atomic_and_download_returns_the_same_bytes() {
    let lab = Lab::up("ctlh", "10.218", 1);
    let inv = orch::inventory::Inventory::load(&lab.inventory).unwrap();
    let host = inv.host("host1").unwrap().clone();
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let path = "~/up load/it's $(here)";
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let conn = orch::remote::Conn::open(&host).await.unwrap();
        conn.upload(&data[..], data.len() as u64, path, 0o640)
            .await
            .unwrap();
        let mut back = Vec::new();
        let n = conn.download(path, &mut back).await.unwrap();
        assert_eq!(n as usize, data.len());
        assert!(back == data, "downloaded bytes differ");

        // A source that ends early: the host must not get a file under the final name.
        let short = &data[..1000];
        let err = conn
            .upload(short, 2000, "~/partial.bin", 0o644)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1000 of 2000"), "{err}");
        let listing = conn
            .run(&orch::remote::Cmd::script("ls -A ~ ~/'up load'"))
            .await
            .unwrap();
        assert!(
            !listing.stdout.contains("partial.bin"),
            "{}",
            listing.stdout
        );
        assert!(
            !listing.stdout.contains(".orch-upload"),
            "{}",
            listing.stdout
        );

        let missing = conn.download("~/nope", Vec::new()).await.unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    });
}

#[test]
fn sudo_hosts_run_privileged_commands_through_sudo() {
    let lab = Lab::up("ctli", "10.219", 1);
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    let with_sudo = write(
        lab.dir.path(),
        "sudo.yaml",
        &inv.replace("sudo: false", "sudo: true"),
    );
    let out = lab.orch(&[
        "-i",
        with_sudo.to_str().unwrap(),
        "exec",
        "--sudo",
        "--",
        "sh",
        "-c",
        "echo \"$SUDO_COMMAND\"",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("host1 | /usr/bin/sh -c"),
        "{}",
        text(&out.stdout)
    );
    let plain = lab.exec(&["--sudo", "--", "sh", "-c", "echo \"[$SUDO_COMMAND]\""]);
    assert!(
        text(&plain.stdout).contains("host1 | []"),
        "{}",
        text(&plain.stdout)
    );
}
