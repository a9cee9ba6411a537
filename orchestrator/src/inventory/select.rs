//! Choosing hosts on the command line: `all`, host names and `role:<role>` items.

use super::{Host, Inventory, ParseRoleError, Role};

/// Why a host selection matches nothing sensible; it lists what would have been valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No host has this name.
    #[error("unknown host `{name}`; the inventory has {}", .known.join(", "))]
    UnknownHost {
        name: String,
        /// Every host name of the inventory, in file order.
        known: Vec<String>,
    },
    /// `role:<role>` names no role.
    #[error(transparent)]
    UnknownRole(#[from] ParseRoleError),
    /// A valid role that no host has, which would otherwise select nothing silently.
    #[error("no host has role `{}`", .0.as_str())]
    RoleUnused(Role),
    /// An empty string or an empty item between commas (the whole selection is kept).
    #[error("empty item in host selection `{0}`")]
    EmptyItem(String),
}

impl Inventory {
    /// Resolves a selection: `None` or `"all"` is every host, otherwise a comma-separated list
    /// of host names and `role:<role>` items. The union comes back in inventory order, each
    /// host once, so commands run in a predictable order.
    pub fn select(&self, spec: Option<&str>) -> Result<Vec<&Host>, SelectError> {
        let spec = spec.map(str::trim).unwrap_or("all");
        if spec == "all" {
            return Ok(self.hosts.iter().collect());
        }
        let mut chosen = vec![false; self.hosts.len()];
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(SelectError::EmptyItem(spec.to_string()));
            }
            if let Some(role) = item.strip_prefix("role:") {
                let role: Role = role.trim().parse()?;
                let mut found = false;
                for (chosen, host) in chosen.iter_mut().zip(&self.hosts) {
                    if host.has_role(role) {
                        *chosen = true;
                        found = true;
                    }
                }
                if !found {
                    return Err(SelectError::RoleUnused(role));
                }
            } else {
                let index = self.hosts.iter().position(|h| h.name == item);
                let index = index.ok_or_else(|| SelectError::UnknownHost {
                    name: item.to_string(),
                    known: self.hosts.iter().map(|h| h.name.clone()).collect(),
                })?;
                chosen[index] = true;
            }
        }
        Ok(self
            .hosts
            .iter()
            .zip(chosen)
            .filter_map(|(host, chosen)| chosen.then_some(host))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory() -> Inventory {
        let text = "hosts:
  - {name: a, address: 10.0.0.1, experiment_ip: 10.0.1.1, roles: [zookeeper, client], zk_id: 1}
  - {name: b, address: 10.0.0.2, experiment_ip: 10.0.1.2, roles: [replica]}
  - {name: c, address: 10.0.0.3, experiment_ip: 10.0.1.3, roles: [zookeeper, replica], zk_id: 3}
";
        Inventory::parse(text, Path::new("test.yaml")).unwrap()
    }

    fn names<'a>(inv: &'a Inventory, spec: Option<&str>) -> Vec<&'a str> {
        let hosts = inv.select(spec).unwrap();
        hosts.into_iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn all_is_every_host() {
        let inv = inventory();
        assert_eq!(names(&inv, None), ["a", "b", "c"]);
        assert_eq!(names(&inv, Some("all")), ["a", "b", "c"]);
        assert_eq!(names(&inv, Some(" all ")), ["a", "b", "c"]);
    }

    #[test]
    fn items_are_united_in_inventory_order_without_duplicates() {
        let inv = inventory();
        assert_eq!(names(&inv, Some("c,a")), ["a", "c"]);
        assert_eq!(names(&inv, Some("role:replica")), ["b", "c"]);
        assert_eq!(names(&inv, Some("c, role:zookeeper ,a")), ["a", "c"]);
        assert_eq!(
            names(&inv, Some("role:client,role:replica")),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn mistakes_say_what_would_be_valid() {
        let inv = inventory();
        let err = |spec| inv.select(Some(spec)).unwrap_err().to_string();
        assert_eq!(err("a,x"), "unknown host `x`; the inventory has a, b, c");
        assert_eq!(
            err("role:leader"),
            "unknown role `leader`, expected one of zookeeper, client, replica, traffic"
        );
        assert_eq!(err("role:traffic"), "no host has role `traffic`");
        assert_eq!(err("a,,b"), "empty item in host selection `a,,b`");
        assert_eq!(err(""), "empty item in host selection ``");
        assert_eq!(err("a,"), "empty item in host selection `a,`");
    }
}
