//! The data layout and status codes of YCSB's ZooKeeper binding (`site.ycsb.db.zookeeper
//! .ZKClient`), so data loaded by either driver can be read by the other: each record is a
//! persistent znode `/<key>` under the connect string's chroot holding a flat JSON object of
//! its fields.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use super::properties::Properties;

/// YCSB's `Status` values this binding can return; the name is what `Return=` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    NotFound,
}

impl Status {
    /// The name in `Return=<NAME>` lines.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Error => "ERROR",
            Status::NotFound => "NOT_FOUND",
        }
    }
}

/// The binding's `zookeeper.*` properties.
#[derive(Clone, Debug)]
pub struct ZkConfig {
    /// `host:port[,host:port...][/chroot]`.
    pub connect_string: String,
    session_timeout: Duration,
    table: String,
}

const KNOWN: [&str; 3] = [
    "zookeeper.connectString",
    "zookeeper.sessionTimeout",
    "zookeeper.watchFlag",
];

impl ZkConfig {
    /// Reads the binding's properties with its defaults; an unknown `zookeeper.*` property is an
    /// error, since it is most likely a typo that would otherwise be silently ignored.
    pub fn new(p: &Properties, table: &str) -> Result<Self> {
        if let Some(unknown) = p
            .names()
            .find(|n| n.starts_with("zookeeper.") && !KNOWN.contains(n))
        {
            bail!(
                "unknown ZooKeeper property {unknown} (the binding knows {})",
                KNOWN.join(", ")
            );
        }
        let mut connect_string = p.string("zookeeper.connectString", "127.0.0.1:2181");
        if connect_string.is_empty() {
            connect_string = "127.0.0.1:2181".into();
        }
        let timeout_ms: u64 = p.number("zookeeper.sessionTimeout", 30_000)?;
        if p.flag("zookeeper.watchFlag", false) {
            // The client crate removes a watch from the server when its handle is dropped, an
            // extra request per read that the Java binding never sends.
            bail!("zookeeper.watchFlag=true is not supported by orch-node ycsb");
        }
        Ok(Self {
            connect_string,
            session_timeout: Duration::from_millis(timeout_ms),
            table: table.to_string(),
        })
    }

    /// The servers and the chroot (`None` for `/` or none).
    fn split(&self) -> (&str, Option<&str>) {
        match self.connect_string.find('/') {
            Some(i) if self.connect_string[i..].len() > 1 => {
                (&self.connect_string[..i], Some(&self.connect_string[i..]))
            }
            Some(i) => (&self.connect_string[..i], None),
            None => (&self.connect_string, None),
        }
    }

    async fn connect_to(&self, servers: &str) -> Result<Client> {
        Client::connector()
            .with_session_timeout(self.session_timeout)
            .connect(servers)
            .await
            .with_context(|| format!("cannot open a ZooKeeper session with {servers}"))
    }

    /// Creates the chroot znode (and its parents) if missing, as the seed's `create /benchmark`
    /// did by hand before `ycsb load`.
    pub async fn create_chroot(&self) -> Result<()> {
        let (servers, Some(chroot)) = self.split() else {
            return Ok(());
        };
        let client = self.connect_to(servers).await?;
        client
            .mkdir(
                chroot,
                &CreateMode::Persistent.with_acls(Acls::anyone_all()),
            )
            .await
            .with_context(|| format!("cannot create the chroot znode {chroot} on {servers}"))
    }

    /// Fails clearly when the chroot is missing, instead of every operation failing.
    pub async fn check_chroot(&self) -> Result<()> {
        let (servers, Some(chroot)) = self.split() else {
            return Ok(());
        };
        let client = self.connect_to(servers).await?;
        let stat = client
            .check_stat(chroot)
            .await
            .with_context(|| format!("cannot check the chroot znode {chroot} on {servers}"))?;
        if stat.is_none() {
            bail!("the chroot znode {chroot} does not exist on {servers}: run `orch-node ycsb load` first");
        }
        Ok(())
    }
}

/// One client thread's ZooKeeper session (YCSB opens one per thread too).
pub struct Db {
    client: Client,
    config: ZkConfig,
}

impl Db {
    /// Opens the session (YCSB's `DB.init`), with the chroot of the connect string.
    pub async fn connect(config: &ZkConfig) -> Result<Self> {
        Ok(Self {
            client: config.connect_to(&config.connect_string).await?,
            config: config.clone(),
        })
    }

    /// getData; the JSON is parsed as the binding does. Every read fetches the whole znode, so
    /// `readallfields` makes no difference on the wire (nor does it in the binding).
    pub async fn read(&self, key: &str) -> Status {
        let path = format!("/{key}");
        match self.get(&path).await {
            Ok(data) if data.is_empty() => Status::NotFound,
            Ok(data) => match decode(&data) {
                Ok(_) => Status::Ok,
                Err(e) => self.error("reading", &path, e),
            },
            Err(e) => self.error("reading", &path, e),
        }
    }

    /// create; an existing znode counts as OK, as in the binding.
    pub async fn insert(&self, key: &str, values: &[(String, String)]) -> Status {
        let path = format!("/{key}");
        let mut fields = Map::new();
        merge(&mut fields, values);
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        match self.client.create(&path, &encode(&fields), &options).await {
            Ok(_) | Err(ZkError::NodeExists) => Status::Ok,
            Err(e) => self.error("inserting", &path, e),
        }
    }

    /// getData, merge the new fields, setData with version -1 (the binding's update).
    pub async fn update(&self, key: &str, values: &[(String, String)]) -> Status {
        let path = format!("/{key}");
        let data = match self.get(&path).await {
            Ok(data) if data.is_empty() => return Status::NotFound,
            Ok(data) => data,
            Err(e) => return self.error("updating", &path, e),
        };
        let mut fields = match decode(&data) {
            Ok(fields) => fields,
            Err(e) => return self.error("updating", &path, e),
        };
        merge(&mut fields, values);
        match self.client.set_data(&path, &encode(&fields), None).await {
            Ok(_) => Status::Ok,
            Err(e) => self.error("updating", &path, e),
        }
    }

    /// Closes the session and waits (up to 2 s) until it is closed, as `ZooKeeper.close` does.
    pub async fn cleanup(self) {
        let mut state = self.client.state_watcher();
        drop(self.client);
        let closed = async { while !state.changed().await.is_terminated() {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, ZkError> {
        let (data, _) = self.client.get_data(path).await?;
        Ok(data)
    }

    fn error(&self, doing: &str, path: &str, e: impl std::fmt::Display) -> Status {
        eprintln!(
            "Error when {doing} a path:{path},tableName:{}: {e}",
            self.config.table
        );
        Status::Error
    }
}

fn decode(data: &[u8]) -> serde_json::Result<Map<String, Value>> {
    serde_json::from_slice(data)
}

fn encode(fields: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(fields).expect("a map of strings always serializes")
}

fn merge(fields: &mut Map<String, Value>, values: &[(String, String)]) {
    for (name, value) in values {
        fields.insert(name.clone(), Value::String(value.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<ZkConfig> {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        ZkConfig::new(&p, "usertable")
    }

    #[test]
    fn binding_defaults_and_chroot() {
        let c = config(&[]).unwrap();
        assert_eq!(c.connect_string, "127.0.0.1:2181");
        assert_eq!(c.session_timeout, Duration::from_secs(30));
        assert_eq!(c.split(), ("127.0.0.1:2181", None));
        let c = config(&[
            (
                "zookeeper.connectString",
                "10.0.3.1:2181,10.0.3.2:2181/benchmark",
            ),
            ("zookeeper.sessionTimeout", "5000"),
            ("zookeeper.watchFlag", "false"),
        ])
        .unwrap();
        assert_eq!(
            c.split(),
            ("10.0.3.1:2181,10.0.3.2:2181", Some("/benchmark"))
        );
        assert_eq!(c.session_timeout, Duration::from_secs(5));
        let c = config(&[("zookeeper.connectString", "h:1/")]).unwrap();
        assert_eq!(c.split(), ("h:1", None));
    }

    #[test]
    fn unknown_zookeeper_properties_are_rejected() {
        let err = config(&[("zookeeper.sessiontimeout", "5000")]).unwrap_err();
        assert!(
            err.to_string().contains("zookeeper.sessiontimeout"),
            "{err}"
        );
        assert!(config(&[("zookeeper.sessionTimeout", "soon")]).is_err());
        let err = config(&[("zookeeper.watchFlag", "true")]).unwrap_err();
        assert!(
            err.to_string().contains("zookeeper.watchFlag=true"),
            "{err}"
        );
    }

    #[test]
    fn update_merges_fields_into_the_json_object() {
        let mut fields = decode(br#"{"field0":"a","field1":"b"}"#).unwrap();
        merge(&mut fields, &[("field1".into(), "c\"\\".into())]);
        let text = String::from_utf8(encode(&fields)).unwrap();
        assert_eq!(text, r#"{"field0":"a","field1":"c\"\\"}"#);
        assert_eq!(Status::NotFound.name(), "NOT_FOUND");
    }
}
