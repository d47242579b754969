//! The etcd client side: one range get reads a prefix, one transaction writes to it
//! (compare-and-bump of `PREFIX/generation`), a watch follows it.
//!
//! The client connects lazily and reconnects by itself: a request made while etcd is down
//! waits for a connection until its timeout, so every request here is bounded by
//! `config.timeout`. The underlying channel lives on the tokio runtime that created the
//! store: create it on the runtime that uses it.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchStream,
};
use pylon_config::{Config, StoreConfig};

use crate::contents::{key_problem, stored, Change, Contents};
use crate::layout::{KeyKind, Layout};

/// How often an idle connection is pinged, so a silently dead etcd is noticed (the watch
/// would otherwise wait forever on a connection nobody answers).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// A request to etcd that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("etcd at {endpoints}: {message}")]
pub struct StoreError {
    /// The endpoints, joined with `, `.
    pub endpoints: String,
    pub message: String,
}

/// Why a write did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Someone wrote since `expected` was read: nothing was changed. (An API answers 412.)
    #[error("the config changed since generation {expected} was read: it is at generation {current} now; nothing was written")]
    Conflict { expected: u64, current: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`EtcdStore::preview`] found a write would not serve.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PreviewError {
    /// Someone wrote since `expected` was read. (An API answers 412.)
    #[error("the config changed since generation {expected} was read: it is at generation {current} now")]
    Conflict { expected: u64, current: u64 },
    /// The config the nodes would build does not validate; each error names its key.
    #[error("{0}")]
    Invalid(pylon_config::ConfigErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a seed did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SeedError {
    /// The prefix already holds keys: seeding only fills an empty prefix.
    #[error("etcd prefix {prefix} is not empty ({keys} key(s), generation {generation}); nothing was written")]
    NotEmpty {
        prefix: String,
        keys: i64,
        generation: u64,
    },
    #[error("cannot encode the config: {0}")]
    Encode(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A prefix of an etcd cluster holding a fleet's routes, upstreams, middlewares and error
/// pages. Cheap to clone (clones share one connection).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    layout: Layout,
    endpoints: String,
    timeout: Duration,
}

impl EtcdStore {
    /// A store for `config` (a `config:` section with `store: etcd`). Does not contact
    /// etcd: the connection is made by the first request.
    pub async fn connect(config: &StoreConfig) -> Result<EtcdStore, StoreError> {
        let endpoints = config.endpoints.join(", ");
        let options = ConnectOptions::new()
            .with_connect_timeout(config.timeout)
            .with_keep_alive(KEEP_ALIVE, config.timeout)
            .with_keep_alive_while_idle(true);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| StoreError {
                endpoints: endpoints.clone(),
                message: e.to_string(),
            })?;
        Ok(EtcdStore {
            client,
            layout: Layout::new(&config.prefix),
            endpoints,
            timeout: config.timeout,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The endpoints, for messages.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn error(&self, message: impl Into<String>) -> StoreError {
        StoreError {
            endpoints: self.endpoints.clone(),
            message: message.into(),
        }
    }

    /// Runs one request within the timeout.
    async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(describe(&e))),
            Err(_) => Err(self.error(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// Reads every key under the prefix in one request.
    pub async fn read(&self) -> Result<Contents, StoreError> {
        let mut kv = self.client.kv_client();
        let range = self.layout.range();
        let response = self
            .bounded(kv.get(range, Some(GetOptions::new().with_prefix())))
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let mut contents = Contents {
            revision,
            ..Contents::default()
        };
        for pair in response.kvs() {
            let key = String::from_utf8_lossy(pair.key()).into_owned();
            let Ok(value) = std::str::from_utf8(pair.value()) else {
                contents
                    .problems
                    .push(key_problem(&key, "the value is not valid UTF-8"));
                continue;
            };
            match self.layout.parse(&key) {
                KeyKind::Generation => match value.trim().parse() {
                    Ok(generation) => contents.generation = generation,
                    Err(_) => contents.problems.push(key_problem(
                        &key,
                        format!("expected the generation, a number, found {value:?}"),
                    )),
                },
                KeyKind::Resource(kind, name) => contents.resources.push(stored(
                    &self.layout,
                    kind,
                    &name,
                    value.to_string(),
                )),
                KeyKind::Unknown => contents.problems.push(key_problem(
                    &key,
                    format!(
                        "unknown key: keys under {} are routes/NAME, upstreams/NAME, middlewares/NAME, error_pages and generation",
                        self.layout.range()
                    ),
                )),
            }
        }
        Ok(contents)
    }

    /// Makes `changes` in one transaction, if the generation is still `expected_generation`
    /// (as read with [`EtcdStore::read`]): the resources change and the generation becomes
    /// `expected_generation + 1`, which is returned; or nothing changes and the answer is
    /// [`WriteError::Conflict`] with the current generation. Every node watching the prefix
    /// applies the result. Later changes to the same key win over earlier ones.
    ///
    /// Nothing here validates the resources: a node refuses a config that does not validate
    /// (and keeps serving the last good one), so check first — e.g. with
    /// [`Contents::with_changes`], [`Contents::assemble`] and the node's dry run.
    pub async fn write(
        &self,
        changes: &[Change],
        expected_generation: u64,
    ) -> Result<u64, WriteError> {
        let generation_key = self.layout.generation();
        let mut ops: BTreeMap<String, TxnOp> = BTreeMap::new();
        for change in changes {
            if change.kind().is_named() && change.name().is_empty() {
                return Err(self
                    .error(format!("a {} needs a name", change.kind().segment()))
                    .into());
            }
            let key = self.layout.key(change.kind(), change.name());
            let op = match change {
                Change::Put { value, .. } => TxnOp::put(key.clone(), value.clone(), None),
                Change::Delete { .. } => TxnOp::delete(key.clone(), None),
            };
            // etcd refuses a transaction that names a key twice.
            ops.insert(key, op);
        }
        let next = expected_generation + 1;
        let mut ops: Vec<TxnOp> = ops.into_values().collect();
        ops.push(TxnOp::put(generation_key.clone(), next.to_string(), None));
        let unchanged = if expected_generation == 0 {
            Compare::version(generation_key.clone(), CompareOp::Equal, 0)
        } else {
            Compare::value(
                generation_key.clone(),
                CompareOp::Equal,
                expected_generation.to_string(),
            )
        };
        let txn = Txn::new()
            .when([unchanged])
            .and_then(ops)
            .or_else([TxnOp::get(generation_key, None)]);
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.txn(txn)).await?;
        if response.succeeded() {
            return Ok(next);
        }
        let current = response
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Get(get) => get
                    .kvs()
                    .first()
                    .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.trim().parse().ok()),
                _ => None,
            })
            .unwrap_or(0);
        Err(WriteError::Conflict {
            expected: expected_generation,
            current,
        })
    }

    /// The config a node with the files `local` would build once `changes` are written on
    /// top of generation `expected_generation` — to check (and dry-run) a write before
    /// making it with [`EtcdStore::write`]. Reads the prefix once.
    pub async fn preview(
        &self,
        local: &pylon_config::Parsed,
        changes: &[Change],
        expected_generation: u64,
    ) -> Result<Config, PreviewError> {
        let contents = self.read().await?;
        if contents.generation != expected_generation {
            return Err(PreviewError::Conflict {
                expected: expected_generation,
                current: contents.generation,
            });
        }
        contents
            .with_changes(&self.layout, changes)
            .assemble(local)
            .map_err(PreviewError::Invalid)
    }

    /// Writes `config`'s routes, upstreams, middlewares and error pages into an empty
    /// prefix, in one transaction; returns the generation (1).
    pub async fn seed(&self, config: &Config) -> Result<u64, SeedError> {
        let changes = Change::all_of(config).map_err(|e| SeedError::Encode(e.to_string()))?;
        let mut kv = self.client.kv_client();
        let existing = self
            .bounded(kv.get(
                self.layout.range(),
                Some(GetOptions::new().with_prefix().with_count_only()),
            ))
            .await?;
        let not_empty = |keys, generation| SeedError::NotEmpty {
            prefix: self.layout.prefix().to_string(),
            keys,
            generation,
        };
        if existing.count() > 0 {
            let generation = self.read().await.map(|c| c.generation).unwrap_or(0);
            return Err(not_empty(existing.count(), generation));
        }
        match self.write(&changes, 0).await {
            Ok(generation) => Ok(generation),
            Err(WriteError::Conflict { current, .. }) => Err(not_empty(1, current)),
            Err(WriteError::Store(e)) => Err(e.into()),
        }
    }

    /// Starts watching the prefix from `revision` on (the one after the last read).
    pub async fn watch(&self, revision: i64) -> Result<WatchStream, StoreError> {
        let mut watch = self.client.watch_client();
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision);
        self.bounded(watch.watch(self.layout.range(), Some(options)))
            .await
    }
}

/// An etcd client error as a user reads it: the gRPC message rather than its debug form,
/// with the causes a transport error only names in its sources ("connection refused").
pub fn describe(e: &etcd_client::Error) -> String {
    let (mut text, mut source): (String, Option<&(dyn std::error::Error + 'static)>) = match e {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            let text = if message.contains("too many operations in txn request") {
                format!(
                    "{message} (etcd's --max-txn-ops bounds the resources one write may change)"
                )
            } else if message.is_empty() {
                format!("{:?}", status.code())
            } else {
                message.to_string()
            };
            (text, std::error::Error::source(status))
        }
        etcd_client::Error::TransportError(t) => (t.to_string(), std::error::Error::source(t)),
        other => (other.to_string(), None),
    };
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
