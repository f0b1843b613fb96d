//! What a bridge forwards: routes between local names and Zenoh key
//! expressions, and what to do when a local ring is full.

use std::path::PathBuf;

use crate::wire::Kind;

/// Which way a route forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Local → Zenoh: messages published on this machine are put on the key.
    Out,
    /// Zenoh → local: messages put on the key are published on this machine.
    In,
    /// Both at once (a bridge never re-publishes what it received itself).
    Both,
}

impl Direction {
    /// Forwards local → Zenoh.
    pub fn outbound(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }
    /// Forwards Zenoh → local.
    pub fn inbound(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// What an inbound message does when the local ring is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FullPolicy {
    /// Wait for room: the bridge stops reading Zenoh, which holds the
    /// remote publishers back (lossless end to end while the local
    /// subscribers read; while they read nothing for half Zenoh's lease,
    /// the messages that do not fit are dropped and counted, so that Zenoh
    /// keeps the session).
    #[default]
    Block,
    /// Drop the message and count it (`dropped_full`).
    Drop,
}

/// One forwarding rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The local channel (or latest-value slot) name.
    pub name: String,
    /// The Zenoh key expression; default `<prefix>/<name>`.
    #[serde(default)]
    pub key: Option<String>,
    /// Which way.
    pub direction: Direction,
    /// A channel (default) or a latest-value slot.
    #[serde(default = "default_kind")]
    pub kind: Kind,
    /// What an inbound message of this route does when its local ring is
    /// full; default the bridge's [`BridgeConfig::full`]. Only for
    /// channels forwarded inbound (`in` or `both`): a latest-value slot
    /// never fills, and outbound routes publish nothing locally.
    #[serde(default)]
    pub full: Option<FullPolicy>,
}

fn default_kind() -> Kind {
    Kind::Channel
}

impl Route {
    /// Parses `NAME[=KEYEXPR]` as given to `--out`, `--in` or `--both`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Route`] when the name or key is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use memlane_zenoh::config::{Direction, Route};
    /// let r = Route::parse("imu=robots/7/imu", Direction::Out, memlane_zenoh::wire::Kind::Channel)?;
    /// assert_eq!((r.name.as_str(), r.key.as_deref()), ("imu", Some("robots/7/imu")));
    /// # Ok::<(), memlane_zenoh::config::ConfigError>(())
    /// ```
    pub fn parse(spec: &str, direction: Direction, kind: Kind) -> Result<Route, ConfigError> {
        let (name, key) = match spec.split_once('=') {
            Some((n, k)) => (n, Some(k.to_string())),
            None => (spec, None),
        };
        if name.is_empty() || key.as_deref() == Some("") {
            return Err(ConfigError::Route(format!(
                "{spec:?}: expected NAME or NAME=KEYEXPR (a local name, and a Zenoh key expression)"
            )));
        }
        Ok(Route {
            name: name.to_string(),
            key,
            direction,
            kind,
            full: None,
        })
    }

    /// What an inbound message of this route does when its ring is full:
    /// its own policy, else `default` (the bridge's).
    pub fn full_policy(&self, default: FullPolicy) -> FullPolicy {
        self.full.unwrap_or(default)
    }

    /// The key expression, given `prefix` for routes without one.
    pub fn key_expr(&self, prefix: &str) -> String {
        match &self.key {
            Some(k) => k.clone(),
            None if prefix.is_empty() => self.name.clone(),
            None => format!("{}/{}", prefix.trim_end_matches('/'), self.name),
        }
    }
}

/// A bridge's whole configuration (the Zenoh session's own configuration
/// travels apart, as a `zenoh::Config`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The routes.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Key prefix for routes without a key; default `memlane`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Where the local names live; default `$MEMLANE_DIR`, else `/dev/shm`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// What an inbound message does when the local ring is full (a route
    /// may set its own, [`Route::full`]).
    #[serde(default)]
    pub full: FullPolicy,
    /// Ring capacity for channels the bridge has to create (bytes).
    #[serde(default)]
    pub capacity: Option<u64>,
    /// Largest message for channels and slots the bridge has to create.
    #[serde(default)]
    pub max_message: Option<usize>,
    /// Polls of the bridge's local subscribers before they sleep
    /// (`Subscriber::set_spin`); default 0: sleep at once. Polling spares
    /// the hop from the local publisher its wake-up (on a 2-vCPU VM, 4000
    /// halved the one-way latency while the applications' subscribers
    /// slept), but on a small machine whose applications poll too (memlane's
    /// default) it takes the CPU time they need: poll where the bridge has
    /// a core of its own (docs/benchmarks/bridge.md, "Who polls").
    #[serde(default)]
    pub spin: u32,
    /// Whether channels the bridge has to create order wake-ups with
    /// Linux's `membarrier` (`ChannelBuilder::membarrier`); default
    /// false: fences. The bridge's subscribers sleep at once, so each
    /// message that finds one asleep would pay a membarrier (an
    /// interrupt to every CPU, dear in a virtual machine) where a fence
    /// costs a publisher some nanoseconds per message. Channels that exist
    /// keep what they were created with.
    #[serde(default)]
    pub membarrier: bool,
}

fn default_prefix() -> String {
    "memlane".to_string()
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            routes: Vec::new(),
            prefix: default_prefix(),
            dir: None,
            full: FullPolicy::Block,
            capacity: None,
            max_message: None,
            spin: 0,
            membarrier: false,
        }
    }
}

impl BridgeConfig {
    /// Reads a TOML file (see `docs/BRIDGE.md` for an example).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] or [`ConfigError::Toml`].
    pub fn from_toml_file(path: &std::path::Path) -> Result<BridgeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Toml { message, .. } => ConfigError::Toml {
                path: Some(path.to_path_buf()),
                message,
            },
            ConfigError::Route(_) => ConfigError::Toml {
                path: Some(path.to_path_buf()),
                message: e.to_string(),
            },
            e => e,
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Toml`] naming what is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// let cfg = memlane_zenoh::config::BridgeConfig::from_toml(r#"
    ///     full = "drop"
    ///     [[route]]
    ///     name = "imu"
    ///     direction = "out"
    /// "#)?;
    /// assert_eq!(cfg.routes[0].key_expr(&cfg.prefix), "memlane/imu");
    /// # Ok::<(), memlane_zenoh::config::ConfigError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<BridgeConfig, ConfigError> {
        let cfg: BridgeConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: None,
            message: e.to_string(),
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks what the types alone do not: a route's own `full` policy is
    /// for an inbound channel only. ([`Bridge::start`](crate::Bridge::start)
    /// checks too.)
    ///
    /// # Errors
    ///
    /// [`ConfigError::Route`] naming the route and what to change.
    ///
    /// # Examples
    ///
    /// ```
    /// use memlane_zenoh::config::BridgeConfig;
    /// let err = BridgeConfig::from_toml(r#"
    ///     [[route]]
    ///     name = "imu"
    ///     direction = "out"
    ///     full = "drop"
    /// "#).unwrap_err();
    /// assert!(err.to_string().contains("inbound"), "{err}");
    /// ```
    pub fn check(&self) -> Result<(), ConfigError> {
        for r in &self.routes {
            if r.full.is_none() {
                continue;
            }
            let why = if r.kind == Kind::Latest {
                "a latest-value slot never fills (a new value replaces the old)"
            } else if !r.direction.inbound() {
                "an outbound route publishes nothing on this machine"
            } else {
                continue;
            };
            return Err(ConfigError::Route(format!(
                "{:?}: `full` applies to channels forwarded inbound (direction \"in\" or \"both\"), \
                 and {why}: remove it from this route",
                r.name
            )));
        }
        Ok(())
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A malformed route.
    #[error("bad route {0}")]
    Route(String),
    /// The file could not be read.
    #[error("cannot read the bridge configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid bridge configuration{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Toml {
        /// The file, if one.
        path: Option<PathBuf>,
        /// What the TOML parser said.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_INBOUND: &str = r#"
        full = "block"
        [[route]]
        name = "video"
        direction = "in"
        full = "drop"
        [[route]]
        name = "cmd"
        direction = "both"
    "#;

    #[test]
    fn a_route_may_set_its_own_full_policy() {
        let cfg = BridgeConfig::from_toml(TWO_INBOUND).unwrap();
        let policies: Vec<_> = cfg
            .routes
            .iter()
            .map(|r| (r.name.as_str(), r.full, r.full_policy(cfg.full)))
            .collect();
        assert_eq!(
            policies,
            [
                ("video", Some(FullPolicy::Drop), FullPolicy::Drop),
                ("cmd", None, FullPolicy::Block)
            ]
        );
        // The bridge-wide policy (e.g. `--full drop`) applies to routes
        // without their own.
        assert_eq!(
            cfg.routes[1].full_policy(FullPolicy::Drop),
            FullPolicy::Drop
        );
        assert_eq!(
            cfg.routes[0].full_policy(FullPolicy::Block),
            FullPolicy::Drop
        );
    }

    #[test]
    fn full_on_a_route_that_cannot_fill_is_refused_with_the_reason() {
        for (route, reason) in [
            (
                "name = \"imu\"\ndirection = \"out\"",
                "outbound route publishes nothing",
            ),
            (
                "name = \"pose\"\ndirection = \"in\"\nkind = \"latest\"",
                "latest-value slot never fills",
            ),
        ] {
            let text = format!("[[route]]\n{route}\nfull = \"drop\"\n");
            let err = BridgeConfig::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(reason) && err.contains("remove it"), "{err}");
            // Built in code instead of read from a file: the same check.
            let mut cfg = BridgeConfig::from_toml(&text.replace("full = \"drop\"\n", "")).unwrap();
            assert!(cfg.check().is_ok());
            cfg.routes[0].full = Some(FullPolicy::Drop);
            assert!(cfg.check().unwrap_err().to_string().contains(reason));
        }
        // Unknown policies are the TOML parser's to refuse.
        let err = BridgeConfig::from_toml(
            "[[route]]\nname = \"a\"\ndirection = \"in\"\nfull = \"wait\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("block") && err.contains("drop"), "{err}");
    }

    #[test]
    fn a_file_names_itself_in_a_route_error() {
        let dir =
            std::env::temp_dir().join(format!("memlane-bridge-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bridge.toml");
        std::fs::write(
            &path,
            "[[route]]\nname = \"imu\"\ndirection = \"out\"\nfull = \"drop\"\n",
        )
        .unwrap();
        let res = BridgeConfig::from_toml_file(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        let err = res.unwrap_err().to_string();
        assert!(
            err.contains("bridge.toml") && err.contains("\"imu\""),
            "{err}"
        );
    }
}
