//! `AppState`: the one cheap-to-clone handle every handler gets — configuration, backends and
//! routing, the clock. Built once at startup from a validated [`Config`].

use std::sync::Arc;
use std::time::Instant;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::upstream::routing::ModelRouter;
use crate::upstream::{Backends, UpstreamError};

/// Shared, immutable-after-start state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    router: ModelRouter,
    clock: SharedClock,
    started: Instant,
}

impl AppState {
    /// Builds the state from a validated configuration, using the system clock.
    pub fn new(config: Config) -> Result<Self, UpstreamError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// Builds the state with an explicit clock (tests pass a `ManualClock`).
    pub fn with_clock(config: Config, clock: SharedClock) -> Result<Self, UpstreamError> {
        let backends = Backends::from_config(&config)?;
        let router = ModelRouter::new(backends, &config.routing);
        Ok(Self(Arc::new(Inner {
            config,
            router,
            clock,
            started: Instant::now(),
        })))
    }

    /// The configuration the process started with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Model routing and the backends behind it.
    pub fn router(&self) -> &ModelRouter {
        &self.0.router
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.0.clock
    }

    /// Seconds since the state was built.
    pub fn uptime_secs(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }
}
