//! Delays with `orch-node delay`, for hosts whose kernel has no netem: the rule file it reads,
//! the scripts that start and stop it on a host, and the check of what it installed (its
//! `--show` read-back of the kernel's nftables table).

use serde_json::{json, Value};

use super::spec::Egress;
use crate::remote::quote;

/// The emulator's nftables table.
pub const TABLE: &str = "orch_delay";
/// First NFQUEUE number; rule i uses `QUEUE + i`.
pub const QUEUE: u16 = 4200;

/// Where the emulator's files live on a host: `<orch_dir>/delay/`.
pub struct Paths {
    pub dir: String,
    pub rules: String,
    pub log: String,
    /// `PID STARTTIME` of the running emulator, so the next start can stop a leftover.
    pub pid: String,
}

impl Paths {
    pub fn new(orch_dir: &str) -> Paths {
        let dir = format!("{}/delay", orch_dir.trim_end_matches('/'));
        Paths {
            rules: format!("{dir}/rules.json"),
            log: format!("{dir}/emulator.log"),
            pid: format!("{dir}/emulator.pid"),
            dir,
        }
    }
}

/// The rule file for a host (JSON, which the emulator reads as YAML).
pub fn rule_file(rules: &[&Egress]) -> String {
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "dst": r.dst,
                "interface": r.interface,
                "delay_ms": r.link.delay_ms,
                "jitter_ms": r.link.jitter_ms,
                "distribution": r.link.distribution.as_str(),
                "loss_pct": r.link.loss_pct,
            })
        })
        .map(|mut v| {
            if v["interface"].is_null() {
                v.as_object_mut().expect("an object").remove("interface");
            }
            v
        })
        .collect();
    let file = json!({ "table": TABLE, "queue": QUEUE, "stats_secs": 10, "rules": rules });
    format!("{file:#}\n")
}

/// Shell function `stop PID STARTTIME`: SIGTERM (the emulator deletes its table and releases
/// held packets), SIGKILL after 3 s (the kernel deletes the table anyway); nothing if the pid
/// is gone or now belongs to another process.
const STOP_FN: &str = r#"stop() {
  alive() { [ -r /proc/$1/stat ] && [ "$(cut -d' ' -f22 /proc/$1/stat)" = "$2" ] && [ "$(cut -d' ' -f3 /proc/$1/stat)" != Z ]; }
  if alive "$1" "$2"; then
    kill -TERM "$1" || true
    i=0
    while alive "$1" "$2" && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
    if alive "$1" "$2"; then kill -KILL "$1" || true; fi
  fi
}"#;

/// Stops an emulator an interrupted run left (recorded in its pid file), starts a new one
/// detached from the SSH session (own session, output to its log), waits up to 5 s for it to
/// report ready and prints `PID STARTTIME` (field 22 of `/proc/PID/stat`, so a later stop
/// never hits a recycled pid), also kept in the pid file. Fails with the log's tail if the
/// emulator exits first. Under sudo, the log and pid file are given to the invoking user, so the
/// user's orch directory holds only the user's files.
pub fn start_script(binary: &str, paths: &Paths) -> String {
    format!(
        r#"set -e
{STOP_FN}
bin={bin}
rules={rules}
log={log}
pidfile={pidfile}
mkdir -p {dir}
if [ -r "$pidfile" ]; then stop $(cat "$pidfile"); rm -f "$pidfile"; fi
setsid nohup "$bin" delay --rules "$rules" </dev/null >"$log" 2>&1 &
pid=$!
i=0
while ! grep -q '"event":"ready"' "$log"; do
  if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 50 ]; then
    echo "the emulator did not start:" >&2; tail -n 20 "$log" >&2; kill -9 "$pid" 2>/dev/null || true; exit 1
  fi
  sleep 0.1; i=$((i+1))
done
echo "$pid $(cut -d' ' -f22 /proc/$pid/stat)" | tee "$pidfile"
if [ -n "${{SUDO_UID:-}}" ]; then chown "$SUDO_UID:${{SUDO_GID:-$SUDO_UID}}" "$log" "$pidfile"; fi"#,
        bin = quote::path(binary),
        rules = quote::path(&paths.rules),
        log = quote::path(&paths.log),
        pidfile = quote::path(&paths.pid),
        dir = quote::path(&paths.dir),
    )
}

/// Parses the `PID STARTTIME` line of [`start_script`].
pub fn parse_started(stdout: &str) -> Option<(u32, u64)> {
    let mut words = stdout.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// Stops the emulator started as `pid` at `start_time`, removes its pid file and prints its
/// last statistics line.
pub fn stop_script(pid: u32, start_time: u64, paths: &Paths) -> String {
    format!(
        r#"{STOP_FN}
stop {pid} {start_time}
rm -f {pidfile}
grep '"event":"exit"' {log} 2>/dev/null | tail -n 1
true"#,
        pidfile = quote::path(&paths.pid),
        log = quote::path(&paths.log),
    )
}

/// The read-back command: the emulator's `--show` of its table.
pub fn show_command(binary: &str, paths: &Paths) -> Vec<String> {
    vec![
        binary.to_string(),
        "delay".into(),
        "--show".into(),
        "--rules".into(),
        paths.rules.clone(),
    ]
}

/// Compares the `--show` read-back with `rules`: an owned table whose rules queue each
/// destination (with bypass) to its queue. Returns every difference.
pub fn verify(rules: &[&Egress], show: &str) -> Result<(), Vec<String>> {
    let v: Value = serde_json::from_str(show)
        .map_err(|e| vec![format!("unreadable `orch-node delay --show`: {e}")])?;
    let tables = v["installed"].as_array().cloned().unwrap_or_default();
    if tables.is_empty() {
        return Err(vec![format!("no nftables table {TABLE} is installed")]);
    }
    let mut wrong = Vec::new();
    for t in &tables {
        if t["owner"] != true {
            wrong.push(format!(
                "table {} {TABLE} lacks the owner flag",
                t["family"].as_str().unwrap_or("?")
            ));
        }
    }
    let installed: Vec<&Value> = tables
        .iter()
        .flat_map(|t| t["rules"].as_array().into_iter().flatten())
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        let queue = QUEUE + i as u16;
        let found = installed.iter().any(|r| {
            r["dst"] == rule.dst.to_string()
                && r["interface"].as_str() == rule.interface.as_deref()
                && r["queue"] == queue
                && r["bypass"] == true
        });
        if !found {
            wrong.push(format!(
                "{} ({}): no rule queueing it to {queue} with bypass",
                rule.to, rule.dst
            ));
        }
    }
    if installed.len() != rules.len() {
        wrong.push(format!(
            "{} rules installed, {} expected",
            installed.len(),
            rules.len()
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong)
    }
}

/// Whether a `--show` read-back lists no table (after a stop).
pub fn is_gone(show: &str) -> bool {
    serde_json::from_str::<Value>(show)
        .ok()
        .and_then(|v| v["installed"].as_array().map(Vec::is_empty))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::spec::{Distribution, Link};

    fn egress(to: &str, dst: &str, iface: Option<&str>, delay: f64) -> Egress {
        Egress {
            to: to.into(),
            dst: dst.parse().unwrap(),
            interface: iface.map(String::from),
            link: Link {
                delay_ms: delay,
                jitter_ms: 0.0,
                distribution: Distribution::Uniform,
                loss_pct: 0.0,
            },
        }
    }

    #[test]
    fn rule_file_names_every_field_the_emulator_reads() {
        let r = [egress("host2", "10.0.2.2", Some("eth0"), 5.0)];
        let text = rule_file(&r.iter().collect::<Vec<_>>());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["table"], TABLE);
        assert_eq!(v["rules"][0]["dst"], "10.0.2.2");
        assert_eq!(v["rules"][0]["interface"], "eth0");
        assert_eq!(v["rules"][0]["distribution"], "uniform");
        let r = [egress("host2", "10.0.2.2", None, 5.0)];
        let v: Value = serde_json::from_str(&rule_file(&r.iter().collect::<Vec<_>>())).unwrap();
        assert!(v["rules"][0].get("interface").is_none());
    }

    #[test]
    fn scripts_quote_paths_and_parse() {
        let p = Paths::new("~/my orch/");
        assert_eq!(p.rules, "~/my orch/delay/rules.json");
        let s = start_script("/opt/x y/orch-node", &p);
        assert!(s.contains("bin='/opt/x y/orch-node'"), "{s}");
        assert!(
            s.contains(r#"rules="$HOME"/'my orch/delay/rules.json'"#),
            "{s}"
        );
        assert_eq!(parse_started("123 456\n"), Some((123, 456)));
        assert_eq!(parse_started("oops"), None);
        let stop = stop_script(123, 456, &p);
        assert!(stop.contains("stop 123 456"), "{stop}");
    }

    #[test]
    fn scripts_are_valid_sh() {
        let p = Paths::new("/tmp/x");
        for script in [start_script("/bin/orch-node", &p), stop_script(1, 2, &p)] {
            let ok = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .status()
                .unwrap();
            assert!(ok.success(), "{script}");
        }
    }

    const SHOWN: &str = r#"{"installed":[{"family":"ip","owner":true,"rules":[
        {"bypass":true,"dst":"10.0.2.2","interface":null,"packets":5,"queue":4200},
        {"bypass":true,"dst":"10.0.3.2","interface":null,"packets":0,"queue":4201}],"table":"orch_delay"}],"table":"orch_delay"}"#;

    #[test]
    fn read_back_matches_and_names_differences() {
        let r = [
            egress("host2", "10.0.2.2", None, 5.0),
            egress("host3", "10.0.3.2", None, 20.0),
        ];
        let r: Vec<&Egress> = r.iter().collect();
        verify(&r, SHOWN).unwrap();
        let wrong = verify(&r[1..], SHOWN).unwrap_err();
        assert!(
            wrong[0].contains("host3 (10.0.3.2): no rule queueing it to 4200"),
            "{wrong:?}"
        );
        assert!(wrong[1].contains("2 rules installed, 1 expected"));
        let none = r#"{"installed":[],"table":"orch_delay"}"#;
        assert!(verify(&r, none).unwrap_err()[0].contains("no nftables table"));
        assert!(is_gone(none) && !is_gone(SHOWN) && !is_gone("garbage"));
    }
}
