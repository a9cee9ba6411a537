//! An SSH connection that could not be made, as a message that says what to do.

use crate::inventory::SshTarget;
use crate::remote::RemoteError;

/// Turns an ssh connection failure into a message that says what to do.
pub(super) fn reason(host: &str, target: &SshTarget, e: openssh::Error) -> RemoteError {
    let text = error_chain(&e);
    let hint = if text.contains("Host key verification failed")
        || text.contains("HOST IDENTIFICATION HAS CHANGED")
    {
        format!(
            "the host key of {} is unknown or has changed; check it and add it to {} (e.g. ssh-keyscan), or set `host_key: accept-new` for this host in the inventory",
            target.destination,
            target
                .known_hosts_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "~/.ssh/known_hosts".into())
        )
    } else if text.contains("Permission denied") {
        "authentication failed: check `user` and `identity_file` in the inventory, or your ssh-agent".to_string()
    } else {
        String::new()
    };
    RemoteError::Unreachable {
        host: host.to_string(),
        reason: if hint.is_empty() {
            text
        } else {
            format!("{text} ({hint})")
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ").trim().replace('\n', " ")
}
