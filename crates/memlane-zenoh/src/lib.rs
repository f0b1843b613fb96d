//! The memlane–Zenoh bridge: forwards named memlane channels (and
//! latest-value slots) to Zenoh key expressions and back, so the same names
//! work across machines.
//!
//! The library holds the engine ([`Bridge`]), its configuration
//! ([`config`]), the wire format ([`wire`]) and the counters ([`stats`]);
//! the `memlane-bridge` binary (also run as `memlane bridge`) is a command
//! line around it. Deployment, wire format and limits: `docs/BRIDGE.md`.
//!
//! ```no_run
//! use memlane_zenoh::config::{BridgeConfig, Direction, Route};
//! use memlane_zenoh::{wire::Kind, Bridge};
//!
//! let mut config = BridgeConfig::default();
//! config.routes.push(Route::parse("imu", Direction::Out, Kind::Channel)?);   // key memlane/imu
//! config.routes.push(Route::parse("cmd=robots/7/cmd", Direction::In, Kind::Channel)?);
//! let mut zenoh = zenoh::Config::default();
//! zenoh.insert_json5("connect/endpoints", r#"["tcp/10.0.0.2:7447"]"#)?;
//! let bridge = Bridge::start(&config, zenoh)?;
//! // ... later
//! println!("{}", bridge.shutdown());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! Features: `bridge` (default) is the bridge itself; without it the crate
//! is its wire format, configuration and counters only. `fuzzing` adds
//! [`fuzzing`], the entry points of the fuzz targets.
#![deny(unsafe_code)]

#[cfg(feature = "bridge")]
mod bridge;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod stats;
pub mod wire;

#[cfg(feature = "bridge")]
pub use bridge::{Bridge, BridgeError};
#[cfg(feature = "bridge")]
pub use zenoh;
