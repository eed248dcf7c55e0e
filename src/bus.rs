//! Messages between gateway instances that share a Redis server (PRODUCT §8): what one instance
//! learns that every other must act on at once — the store changed (a revocation, a credential
//! added or updated: reload now instead of at the next revision poll), an address or account
//! was blocked or unblocked (brute-force lockouts), an upstream credential is cooling down.
//!
//! [`Bus::publish`] sends an [`Event`] on one Redis pub/sub channel (`<prefix>events`) from a
//! task of its own, so the caller never waits for Redis; the `bus.subscribe` job holds a
//! subscription and hands every message from another instance to the listeners registered with
//! [`Bus::listen`] (at composition, before the jobs start). Pub/sub delivers at most once, and
//! not at all to an instance that is disconnected, so every listener also has a fallback that
//! does not depend on a message arriving: the store revision poll (1 s), the lockouts' set of
//! active blocks read every second, cooldowns ending on their own. Each (re)subscription tells
//! the listeners [`Event::Resync`], so what was missed while disconnected is caught up at once.
//!
//! Without Redis the bus is off: publishing does nothing and no job runs.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;

use crate::jobs::Job;
use crate::redis_conn::RedisConn;

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The store changed (its revision moved): reload what is cached from it.
    Changed,
    /// A lockout `scope` (`addr`, `user`) blocked `bucket` until `until_ms` (0: the block was
    /// lifted).
    Blocked {
        /// Which lockout table.
        scope: String,
        /// The bucket, as the table writes it (an address or network, a username).
        bucket: String,
        /// When the block ends (ms since the epoch); 0 when it was lifted.
        until_ms: u64,
    },
    /// An upstream credential cools down until `until_ms` for `reason` (the pool's code).
    Cooldown {
        /// The credential's id.
        credential: String,
        /// When the cooldown ends (ms since the epoch).
        until_ms: u64,
        /// Why (the pool's reason code).
        reason: u8,
    },
    /// Not sent between instances: the subscription was (re)established and messages may have
    /// been missed — listeners catch up from the shared state.
    Resync,
}

impl Event {
    /// The message text (after the sender's id).
    fn encode(&self) -> Option<String> {
        match self {
            Event::Changed => Some("changed".to_owned()),
            Event::Blocked {
                scope,
                bucket,
                until_ms,
            } => Some(format!("blocked {scope} {until_ms} {bucket}")),
            Event::Cooldown {
                credential,
                until_ms,
                reason,
            } => Some(format!("cooldown {until_ms} {reason} {credential}")),
            Event::Resync => None,
        }
    }

    /// Reads a message text; `None` for anything malformed or unknown (a newer instance's
    /// message is ignored, not misread).
    fn decode(text: &str) -> Option<Event> {
        let (kind, rest) = text.split_once(' ').unwrap_or((text, ""));
        match kind {
            "changed" if rest.is_empty() => Some(Event::Changed),
            "blocked" => {
                let mut parts = rest.splitn(3, ' ');
                let scope = parts.next()?.to_owned();
                let until_ms = parts.next()?.parse().ok()?;
                let bucket = parts.next()?.to_owned();
                (!scope.is_empty() && !bucket.is_empty()).then_some(Event::Blocked {
                    scope,
                    bucket,
                    until_ms,
                })
            }
            "cooldown" => {
                let mut parts = rest.splitn(3, ' ');
                let until_ms = parts.next()?.parse().ok()?;
                let reason = parts.next()?.parse().ok()?;
                let credential = parts.next()?.to_owned();
                (!credential.is_empty()).then_some(Event::Cooldown {
                    credential,
                    until_ms,
                    reason,
                })
            }
            _ => None,
        }
    }
}

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// The instances' message bus (cheap to clone); off without Redis.
#[derive(Clone)]
pub struct Bus(Arc<Inner>);

struct Inner {
    redis: Option<RedisConn>,
    channel: String,
    /// This instance's id: its own messages come back from Redis and are skipped.
    origin: String,
    listeners: RwLock<Vec<Listener>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("channel", &self.0.channel)
            .field("on", &self.0.redis.is_some())
            .finish_non_exhaustive()
    }
}

/// How often the subscription is pinged: a connection that died silently is noticed (and
/// reopened, with a resync) within this time.
const PING_EVERY: Duration = Duration::from_secs(5);

impl Bus {
    /// The bus over `redis`'s server, or an idle bus without one.
    pub fn new(redis: Option<RedisConn>) -> std::io::Result<Self> {
        let id = crate::secret::random_bytes::<8>()?;
        Ok(Self(Arc::new(Inner {
            channel: redis.as_ref().map_or_else(String::new, |r| r.key("events")),
            redis,
            origin: crate::store::hex(&id),
            listeners: RwLock::new(Vec::new()),
        })))
    }

    /// True when instances are connected through Redis.
    pub fn is_on(&self) -> bool {
        self.0.redis.is_some()
    }

    /// Calls `listener` with every event another instance publishes (and [`Event::Resync`]).
    /// Register at composition, before the jobs start.
    pub fn listen(&self, listener: impl Fn(&Event) + Send + Sync + 'static) {
        if let Ok(mut l) = self.0.listeners.write() {
            l.push(Arc::new(listener));
        }
    }

    /// Tells every other instance `event`, from a task of its own (the caller never waits; a
    /// failure is logged — every listener has a fallback that does not need the message).
    pub fn publish(&self, event: Event) {
        let (Some(redis), Some(text)) = (&self.0.redis, event.encode()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let redis = redis.clone();
        let channel = self.0.channel.clone();
        let message = format!("{} {text}", self.0.origin);
        runtime.spawn(async move {
            let sent = redis
                .run(move |mut c| {
                    let (channel, message) = (channel.clone(), message.clone());
                    async move {
                        redis::cmd("PUBLISH")
                            .arg(channel)
                            .arg(message)
                            .query_async::<i64>(&mut c)
                            .await
                    }
                })
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not tell the other instances (they catch up within a second)");
            }
        });
    }

    /// Hands a message text received on the channel to the listeners (skipping this instance's
    /// own messages and anything unreadable).
    pub fn deliver(&self, message: &str) {
        let Some((origin, text)) = message.split_once(' ') else {
            return;
        };
        if origin == self.0.origin {
            return;
        }
        match Event::decode(text) {
            Some(event) => self.dispatch(&event),
            None => tracing::debug!(message, "ignored an unreadable instance message"),
        }
    }

    fn dispatch(&self, event: &Event) {
        let listeners = match self.0.listeners.read() {
            Ok(l) => l.clone(),
            Err(_) => return,
        };
        for l in listeners {
            l(event);
        }
    }

    /// `bus.subscribe` (with Redis): holds the subscription — a run lasts until the connection
    /// breaks or stops answering pings; the scheduler starts the next one within a second.
    pub fn jobs(&self) -> Vec<Job> {
        if self.0.redis.is_none() {
            return Vec::new();
        }
        let bus = self.clone();
        vec![Job::new(
            "bus.subscribe",
            Duration::from_secs(1),
            move |_| {
                let bus = bus.clone();
                async move { bus.subscribe_once().await }
            },
        )]
    }

    /// One subscription: subscribe, resync, deliver until the connection fails.
    async fn subscribe_once(&self) {
        let Some(redis) = &self.0.redis else { return };
        let timeout = redis.timeout();
        let opened = tokio::time::timeout(timeout, async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(&self.0.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match opened {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "instance messages: cannot subscribe yet");
                return;
            }
            Err(_) => return,
        };
        tracing::debug!(channel = %self.0.channel, "instance messages: subscribed");
        self.dispatch(&Event::Resync);
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    match message.get_payload::<String>() {
                        Ok(text) => self.deliver(&text),
                        Err(e) => tracing::debug!(error = %e, "ignored a non-text instance message"),
                    }
                }
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(timeout, sink.ping::<String>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        tracing::warn!("instance messages: the subscription broke; reconnecting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_written() {
        for e in [
            Event::Changed,
            Event::Blocked {
                scope: "addr".into(),
                bucket: "2001:db8::".into(),
                until_ms: 1_700_000_000_123,
            },
            Event::Blocked {
                scope: "user".into(),
                bucket: "ada lovelace".into(),
                until_ms: 0,
            },
            Event::Cooldown {
                credential: "openai key 2".into(),
                until_ms: 42,
                reason: 3,
            },
        ] {
            let text = e.encode().unwrap();
            assert_eq!(Event::decode(&text), Some(e), "{text}");
        }
        assert_eq!(Event::Resync.encode(), None, "never sent");
    }

    #[test]
    fn unreadable_messages_are_ignored() {
        for bad in [
            "",
            "changed now",
            "blocked addr",
            "blocked addr soon 1.2.3.4",
            "blocked addr 5 ",
            "cooldown 5 x id",
            "cooldown 5 1 ",
            "renamed a b",
        ] {
            assert_eq!(Event::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn listeners_hear_other_instances_only() {
        let bus = Bus::new(None).unwrap();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = heard.clone();
        bus.listen(move |e| h.lock().unwrap().push(e.clone()));
        bus.deliver(&format!("{} changed", bus.0.origin));
        bus.deliver("0123456789abcdef changed");
        bus.deliver("0123456789abcdef nonsense");
        bus.deliver("garbage");
        assert_eq!(*heard.lock().unwrap(), vec![Event::Changed]);
    }
}
