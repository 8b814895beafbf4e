//! `kinesisStream`: delivery to Kinesis Data Streams with `PutRecords`.
//!
//! A batch becomes entries (one per record, or KPL aggregates), entries become requests
//! within the API limits (500 entries, 5 MiB with partition keys), and each request's
//! failed entries (per-entry `ErrorCode`) are retried alone, with backoff, until every
//! entry is acknowledged. See [`super::retry`] for the failure policy.
//!
//! With `aggregation: KPL`, user records are grouped by the shard Kinesis will route them
//! to (MD5 of the partition key in the shard map from `ListShards`), and each aggregate
//! is sent with an explicit hash key inside its shard's range, so that every user record
//! of an aggregate belongs to the shard the aggregate is stored in (the KCL drops the whole
//! aggregate otherwise). When the response puts an aggregate in another shard than
//! predicted (a reshard happened), the shard map is reloaded and the aggregate's user
//! records are sent again, regrouped (and after `MAX_REGROUPS` reloads, as plain
//! records): duplicates, never loss. Every user record of an aggregate that failed is sent
//! again whatever else the same response holds. Without `ListShards`
//! permission, aggregates hold records of one partition key only, which is always safe.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use super::pool::BufPool;
use super::retry::{classify, classify_rpc, classify_sdk, Backoff, Failure, Reporter};
use super::rpc::Rpc;
use crate::aggregate::kpl::{self, Aggregator};
use crate::aggregate::shards::{hash_keys, ShardMap};
use crate::config::{
    Aggregation, FlowConfig, KINESIS_MAX_BYTES_PER_CALL, KINESIS_MAX_RECORDS_PER_CALL,
    KINESIS_MAX_RECORD_BYTES,
};
use crate::event::Batch;
use crate::json::write_valid_str;
use crate::metrics::FlowStats;

/// The shard map is reloaded at least this often (resharding is also detected from the
/// shard IDs in `PutRecords` responses).
pub const SHARD_MAP_MAX_AGE: Duration = Duration::from_secs(60);
/// After a failed `ListShards`, wait this long before trying again.
const SHARD_MAP_RETRY: Duration = Duration::from_secs(5);
/// How many times one delivery re-sends aggregates that landed in an unexpected shard,
/// regrouped. A reshard needs one; more means the shard IDs never match the map (an
/// emulator, a stream being resharded over and over): the records are then sent as plain
/// records, each under its own partition key, which no consumer can drop.
const MAX_REGROUPS: u32 = 3;
/// Room kept in an aggregate for the partition key it is sent with: 256 characters of up
/// to 4 UTF-8 bytes each.
const MAX_KEY_BYTES: usize = 1024;
/// Without `aggregatedRecordSizeBytes`, an aggregate holds at most about a lane's share of
/// the records being aggregated (see [`lane_share`]), but never less than this.
const MIN_SHARED_AGGREGATE: usize = 32 * 1024;

/// Delivers batches to one Kinesis data stream.
#[derive(Debug)]
pub struct KinesisSink {
    /// Describes the stream and lists its shards.
    client: aws_sdk_kinesis::Client,
    /// Sends `PutRecords`.
    rpc: Rpc,
    /// Stream name, or ARN when it starts with `arn:`.
    stream: String,
    kpl: bool,
    /// `aggregatedRecordSizeBytes`.
    aggregate_size: Option<usize>,
    /// The stream's record limit (data plus partition key), from the preflight.
    max_record: AtomicUsize,
    stats: Arc<FlowStats>,
    initial_backoff: Duration,
    max_backoff: Duration,
    reporter: Reporter,
    shards: Mutex<ShardCache>,
    /// Serialises `ListShards` calls of concurrent deliveries.
    refresh: tokio::sync::Mutex<()>,
    /// The flow's reused buffers: batch data, request bodies and aggregates.
    pool: Arc<BufPool>,
}

#[derive(Debug, Default)]
struct ShardCache {
    map: Option<Arc<ShardMap>>,
    /// When the map must be reloaded; `None`: never loaded.
    expires: Option<Instant>,
    /// Bumped at each load, so that waiters do not reload twice.
    generation: u64,
    warned: bool,
}

/// Which user records of the batch an entry carries.
#[derive(Debug, Clone)]
enum Users {
    One(u32),
    Many(Vec<u32>),
}

impl Users {
    fn len(&self) -> u64 {
        match self {
            Users::One(_) => 1,
            Users::Many(v) => v.len() as u64,
        }
    }
    fn extend_into(&self, out: &mut Vec<u32>) {
        match self {
            Users::One(i) => out.push(*i),
            Users::Many(v) => out.extend_from_slice(v),
        }
    }
}

/// One `PutRecords` entry.
#[derive(Debug)]
struct Entry {
    /// `None`: the bytes of the single user record (possibly truncated to `len`).
    data: Option<Vec<u8>>,
    /// Bytes of the record sent for a plain entry (truncation).
    len: usize,
    key: Key,
    ehk: Option<String>,
    users: Users,
    /// Bytes of the user records (for `bytes_sent`).
    user_bytes: u64,
    /// The shard an aggregate must land in.
    shard: Option<String>,
}

impl Entry {
    fn bytes<'a>(&'a self, batch: &'a Batch) -> &'a [u8] {
        match (&self.data, &self.users) {
            (Some(d), _) => d,
            (None, Users::One(i)) => &batch.record(*i as usize)[..self.len],
            (None, Users::Many(_)) => unreachable!("aggregates own their bytes"),
        }
    }
    /// What the entry weighs against the request limit.
    fn size(&self) -> usize {
        self.data.as_ref().map_or(self.len, Vec::len) + self.key.len()
    }
}

/// An entry's partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// RANDOM: 64 random bits, sent as 16 hex digits (no string is made per record).
    Random(u64),
    /// The record's own key, or an aggregate's.
    Text(String),
}

impl Key {
    fn len(&self) -> usize {
        match self {
            Key::Random(_) => 16,
            Key::Text(k) => k.len(),
        }
    }

    /// Appends the key as a JSON string.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Key::Random(bits) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push(b'"');
                out.extend((0..16).rev().map(|i| HEX[(bits >> (i * 4)) as usize & 0xf]));
                out.push(b'"');
            }
            Key::Text(k) => write_valid_str(out, k),
        }
    }
}

/// What happened to one entry.
enum Outcome {
    /// Stored; `misplaced`: an aggregate stored in another shard than the one its user
    /// records hash to.
    Ok {
        misplaced: bool,
    },
    Failed(Failure),
}

impl KinesisSink {
    /// A sink for `stream` of `flow` using `client`. Makes no network call.
    pub(crate) fn new(
        client: aws_sdk_kinesis::Client,
        rpc: Rpc,
        region: &str,
        stream: &str,
        flow: &FlowConfig,
        stats: Arc<FlowStats>,
        pool: Arc<BufPool>,
    ) -> Self {
        KinesisSink {
            client,
            rpc,
            stream: stream.to_string(),
            kpl: flow.aggregation == Aggregation::Kpl,
            aggregate_size: flow.aggregated_record_size_bytes,
            max_record: AtomicUsize::new(KINESIS_MAX_RECORD_BYTES),
            stats,
            initial_backoff: flow.retry_initial_backoff,
            max_backoff: flow.retry_max_backoff,
            reporter: Reporter::new(format!(
                "flow {}: Kinesis stream '{stream}' in {region}",
                flow.index
            )),
            shards: Mutex::new(ShardCache::default()),
            refresh: tokio::sync::Mutex::new(()),
            pool,
        }
    }

    /// Its reused buffers.
    pub(crate) fn pool(&self) -> Arc<BufPool> {
        Arc::clone(&self.pool)
    }

    fn is_arn(&self) -> bool {
        self.stream.starts_with("arn:")
    }

    /// Describes the stream once: logs an ERROR naming stream, region and cause when it is
    /// missing or not accessible; learns its maximum record size (and shard map for KPL).
    pub async fn preflight(&self) -> Option<usize> {
        let req = self.client.describe_stream_summary();
        let req = if self.is_arn() {
            req.stream_arn(&self.stream)
        } else {
            req.stream_name(&self.stream)
        };
        match req.send().await {
            Ok(out) => {
                let summary = out.stream_description_summary();
                let max = summary
                    .and_then(|s| s.max_record_size_in_kib())
                    .filter(|k| *k > 0)
                    .map(|k| k as usize * 1024);
                if let Some(m) = max {
                    self.max_record.store(m, Ordering::Relaxed);
                }
                if let Some(s) = summary {
                    tracing::info!(
                        "{}: {} with {} open shards, records up to {} KiB",
                        self.reporter.what(),
                        s.stream_status().as_str(),
                        s.open_shard_count(),
                        self.max_record.load(Ordering::Relaxed) / 1024
                    );
                }
                if self.kpl {
                    self.shard_map(true).await;
                }
                max
            }
            Err(e) => {
                let (failure, cause) = classify_sdk(&e);
                self.reporter
                    .preflight_failed(failure, &cause, self.max_backoff);
                None
            }
        }
    }

    /// Delivers every record of `batch`; returns once all are acknowledged.
    pub async fn deliver(&self, batch: &Batch) {
        if batch.is_empty() {
            return;
        }
        let all: Vec<u32> = (0..batch.len() as u32).collect();
        let mut pending = self.entries(batch, all).await;
        let mut backoff = Backoff::new(self.initial_backoff, self.max_backoff);
        let mut regroups_left = MAX_REGROUPS;
        loop {
            let mut failed: Vec<Entry> = Vec::new();
            // Users of aggregates stored in another shard than their records hash to: a
            // KCL consumer drops them, so they are sent again (regrouped while the
            // regroup budget lasts, then as plain records, which Kinesis routes by key).
            let mut regroup: Vec<u32> = Vec::new();
            let mut unaggregate: Vec<u32> = Vec::new();
            // Users of failed aggregates, whose bytes went into the request: aggregated
            // again for the retry rather than copied for every request.
            let mut rebuild: Vec<u32> = Vec::new();
            let mut fatal = false;
            let mut rest = pending;
            while !rest.is_empty() {
                let n = request_len(&rest);
                let mut chunk: Vec<Entry> = rest.drain(..n).collect();
                let outcomes = self.put(batch, &mut chunk).await;
                for (entry, outcome) in chunk.into_iter().zip(outcomes) {
                    match outcome {
                        Outcome::Ok { misplaced } => {
                            if misplaced {
                                let to = if regroups_left > 0 {
                                    &mut regroup
                                } else {
                                    &mut unaggregate
                                };
                                entry.users.extend_into(to);
                            } else {
                                FlowStats::add(&self.stats.records_sent, entry.users.len());
                                FlowStats::add(&self.stats.bytes_sent, entry.user_bytes);
                            }
                        }
                        Outcome::Failed(f) => {
                            fatal |= f == Failure::Fatal;
                            if entry.data.is_none() && matches!(entry.users, Users::Many(_)) {
                                entry.users.extend_into(&mut rebuild);
                            } else {
                                failed.push(entry);
                            }
                        }
                    }
                }
            }
            // Failures wait for the backoff; misplaced aggregates alone are sent again at
            // once (the shard map is reloaded first).
            let wait = !failed.is_empty() || !rebuild.is_empty();
            let retried: u64 =
                failed.iter().map(|e| e.users.len()).sum::<u64>() + rebuild.len() as u64;
            let mut next = failed;
            if !regroup.is_empty() {
                regroups_left -= 1;
                tracing::info!(
                    "{}: {} aggregated records landed in an unexpected shard (resharding?); \
                     reloading the shard map and sending them again",
                    self.reporter.what(),
                    regroup.len()
                );
                self.mark_shards_stale();
                next.extend(self.entries(batch, regroup).await);
            }
            if !unaggregate.is_empty() {
                tracing::warn!(
                    "{}: {} aggregated records still land in another shard than the shard \
                     map says after {MAX_REGROUPS} reloads; sending them again unaggregated",
                    self.reporter.what(),
                    unaggregate.len()
                );
                let max_record = self.max_record.load(Ordering::Relaxed);
                let mut rng = rand::thread_rng();
                next.extend(
                    unaggregate
                        .into_iter()
                        .map(|i| self.plain(batch, i, max_record, &mut rng)),
                );
            }
            if !rebuild.is_empty() {
                next.extend(self.entries(batch, rebuild).await);
            }
            if next.is_empty() {
                return;
            }
            if wait {
                FlowStats::add(&self.stats.retries, retried);
                backoff.wait(fatal).await;
            }
            pending = next;
        }
    }

    /// Sends one request; returns the outcome of each entry, in order. Aggregates are
    /// dropped once encoded (their `data` is `None` afterwards); plain entries are read
    /// from the batch.
    async fn put(&self, batch: &Batch, chunk: &mut [Entry]) -> Vec<Outcome> {
        let users: u64 = chunk.iter().map(|e| e.users.len()).sum();
        FlowStats::add(&self.stats.record_send_attempts, users);
        let body = self.pool.bytes(put_records_body(
            &self.pool,
            self.is_arn(),
            &self.stream,
            batch,
            chunk,
        ));
        let answer = self.rpc.call("PutRecords", body).await;
        match answer.and_then(|body| super::response::entries(&body, self.kpl)) {
            Ok(results) => {
                let mut outcomes = Vec::with_capacity(chunk.len());
                let mut throttled = (0u64, String::new());
                let mut service = (0u64, String::new());
                let mut any_ok = false;
                for (i, entry) in chunk.iter().enumerate() {
                    let Some(r) = results.get(i) else {
                        // A response shorter than the request: retry what it omits.
                        service.0 += entry.users.len();
                        service.1 = "response without this entry".into();
                        outcomes.push(Outcome::Failed(Failure::Service));
                        continue;
                    };
                    match &r.error {
                        None => {
                            any_ok = true;
                            let misplaced = match (&entry.shard, &r.shard) {
                                (Some(want), Some(got)) => want != got,
                                _ => false,
                            };
                            outcomes.push(Outcome::Ok { misplaced });
                        }
                        Some((code, message)) => {
                            let n = entry.users.len();
                            FlowStats::add(&self.stats.record_send_errors, n);
                            let f = classify(Some(code), None);
                            match f {
                                Failure::Throttled => {
                                    FlowStats::add(&self.stats.throttles, n);
                                    throttled.0 += n;
                                    throttled.1 = code.to_string();
                                }
                                Failure::Service => {
                                    service.0 += n;
                                    service.1 = format!("{code}: {message}");
                                }
                                Failure::Fatal => self
                                    .reporter
                                    .fatal(&format!("{code}: {message}"), self.max_backoff),
                            }
                            outcomes.push(Outcome::Failed(f));
                        }
                    }
                }
                if any_ok {
                    self.reporter.success();
                }
                if throttled.0 > 0 {
                    self.reporter.throttled(throttled.0, &throttled.1);
                }
                if service.0 > 0 {
                    self.reporter.service_error(service.0, &service.1);
                }
                outcomes
            }
            Err(e) => {
                FlowStats::add(&self.stats.service_errors, 1);
                FlowStats::add(&self.stats.record_send_errors, users);
                let (f, cause) = classify_rpc(&e);
                match f {
                    Failure::Fatal => {
                        if cause.starts_with("InvalidArgumentException") {
                            self.mark_shards_stale();
                        }
                        self.reporter.fatal(&cause, self.max_backoff)
                    }
                    Failure::Throttled => {
                        FlowStats::add(&self.stats.throttles, users);
                        self.reporter.throttled(users, &cause)
                    }
                    Failure::Service => self.reporter.service_error(users, &cause),
                }
                chunk.iter().map(|_| Outcome::Failed(f)).collect()
            }
        }
    }

    /// Turns the user records `users` of `batch` into entries.
    async fn entries(&self, batch: &Batch, users: Vec<u32>) -> Vec<Entry> {
        let max_record = self.max_record.load(Ordering::Relaxed);
        if !self.kpl {
            let mut rng = rand::thread_rng();
            return users
                .into_iter()
                .map(|i| self.plain(batch, i, max_record, &mut rng))
                .collect();
        }
        let map = self.shard_map(false).await;
        self.aggregate(batch, users, map.as_deref(), max_record)
    }

    /// One record sent as is, with its key (or a random one), cut to the record limit.
    fn plain(&self, batch: &Batch, i: u32, max_record: usize, rng: &mut impl Rng) -> Entry {
        let data = batch.record(i as usize);
        let key = match batch.key(i as usize) {
            Some(k) => Key::Text(String::from_utf8_lossy(k).into_owned()),
            None => Key::Random(rng.gen()),
        };
        let mut len = data.len();
        if len + key.len() > max_record {
            // The pipeline truncates first; this only defends the request.
            len = max_record.saturating_sub(key.len());
            FlowStats::add(&self.stats.records_truncated, 1);
            tracing::warn!(
                "{}: record {} of {} bytes is above the stream's limit of {} bytes with its \
                 key; truncated",
                self.reporter.what(),
                batch.records[i as usize].id,
                data.len(),
                max_record
            );
        }
        Entry {
            data: None,
            len,
            key,
            ehk: None,
            users: Users::One(i),
            user_bytes: len as u64,
            shard: None,
        }
    }

    /// KPL aggregates of `users`, grouped by predicted shard (or by key without a map).
    fn aggregate(
        &self,
        batch: &Batch,
        users: Vec<u32>,
        map: Option<&ShardMap>,
        max_record: usize,
    ) -> Vec<Entry> {
        struct Group {
            agg: Aggregator,
            users: Vec<u32>,
            bytes: u64,
        }
        let cap = max_record.saturating_sub(MAX_KEY_BYTES);
        let limit = match self.aggregate_size {
            Some(s) => s.min(cap),
            None => {
                let bytes = users.iter().map(|&i| batch.record(i as usize).len()).sum();
                lane_share(bytes, crate::md5many::lanes()).min(cap)
            }
        };
        let mut rng = rand::thread_rng();
        let mut out = Vec::new();
        // Group key: shard index with a map; partition key without (records with no
        // key of their own share one random key).
        // With a map, groups are found by shard index (no hashing per record).
        let mut by_shard: Vec<Option<Group>> = Vec::new();
        let mut by_key: HashMap<Cow<'_, str>, Group> = HashMap::new();
        let shared_random = random_key(&mut rng);
        // What an aggregate of this batch will likely weigh: the batch spread over the
        // shards (or one aggregate without a map), for its buffer.
        let expected = (batch.data.len() / map.map_or(1, |m| m.len().max(1))).min(limit) + 1024;
        let mut next_shard = map.map_or(0, |m| rng.gen_range(0..m.len().max(1)));
        // `next`: the buffer for the group's next aggregate.
        let finish = |g: &mut Group, shard: Option<usize>, next: Vec<u8>| -> Entry {
            let key = Key::Text(g.agg.first_key().unwrap_or("a").to_string());
            let data = g.agg.take_unsealed(next);
            let (ehk, shard) = match (map, shard) {
                (Some(m), Some(s)) => (
                    Some(m.shards()[s].start.to_string()),
                    Some(m.shards()[s].id.clone()),
                ),
                _ => (None, None),
            };
            Entry {
                len: data.len(),
                data: Some(data),
                key,
                ehk,
                users: Users::Many(std::mem::take(&mut g.users)),
                user_bytes: std::mem::take(&mut g.bytes),
                shard,
            }
        };
        // The hash keys of the records' own partition keys, computed side by side.
        let own_keys: Vec<Option<Cow<'_, str>>> = users
            .iter()
            .map(|&i| batch.key(i as usize).map(String::from_utf8_lossy))
            .collect();
        let mut hashes = match map {
            Some(m) if !m.is_empty() => {
                let keys: Vec<&[u8]> = own_keys.iter().flatten().map(|k| k.as_bytes()).collect();
                hash_keys(&keys).into_iter()
            }
            _ => Vec::new().into_iter(),
        };
        for (i, own) in users.into_iter().zip(own_keys) {
            let data = batch.record(i as usize);
            // (group, shard index, key inside the aggregate, explicit hash key)
            let (group, shard, key, ehk): (GroupKey<'_>, Option<usize>, Cow<'_, str>, _) = match map
            {
                Some(m) if !m.is_empty() => {
                    let s = match &own {
                        Some(_) => m.shard_of(hashes.next().expect("a hash for each own key")),
                        None => {
                            next_shard = (next_shard + 1) % m.len();
                            Some(next_shard)
                        }
                    };
                    let Some(s) = s else {
                        // A hole in the map: it is stale. Send this one plain.
                        self.mark_shards_stale();
                        out.push(self.plain(batch, i, max_record, &mut rng));
                        continue;
                    };
                    let shard = &m.shards()[s];
                    let (key, ehk) = match own {
                        Some(k) => (k, None),
                        None if !shard.key.is_empty() => (Cow::from(shard.key.as_str()), None),
                        None => (Cow::from("0"), Some(shard.start.to_string())),
                    };
                    (GroupKey::Shard(s), Some(s), key, ehk)
                }
                _ => {
                    let key = own.unwrap_or(Cow::from(shared_random.as_str()));
                    (GroupKey::Key(key.clone()), None, key, None)
                }
            };
            let new_group = || Group {
                agg: Aggregator::with_buffer(limit, self.pool.take(expected)),
                users: Vec::new(),
                bytes: 0,
            };
            let g = match group {
                GroupKey::Shard(s) => {
                    if by_shard.len() <= s {
                        by_shard.resize_with(s + 1, || None);
                    }
                    by_shard[s].get_or_insert_with(new_group)
                }
                GroupKey::Key(k) => by_key.entry(k).or_insert_with(new_group),
            };
            if !g.agg.try_add(&key, ehk.as_deref(), data) {
                if !g.agg.is_empty() {
                    // The group's next aggregate will be about as large.
                    let next = self.pool.take(g.agg.size());
                    out.push(finish(g, shard, next));
                }
                if !g.agg.try_add(&key, ehk.as_deref(), data) {
                    // Larger than an aggregate may be: sent alone, as the KPL does.
                    out.push(self.plain(batch, i, max_record, &mut rng));
                    continue;
                }
            }
            g.users.push(i);
            g.bytes += data.len() as u64;
        }
        let groups = by_shard
            .into_iter()
            .enumerate()
            .filter_map(|(s, g)| Some((Some(s), g?)))
            .chain(by_key.into_values().map(|g| (None, g)));
        for (shard, mut g) in groups {
            if !g.agg.is_empty() {
                out.push(finish(&mut g, shard, Vec::new()));
            }
        }
        // The entries with data are the aggregates (plain ones are copied from the batch
        // when sent): their MD5 trailers, all at once.
        let mut aggregates: Vec<&mut [u8]> = out
            .iter_mut()
            .filter_map(|e| e.data.as_deref_mut())
            .collect();
        kpl::seal(&mut aggregates);
        out
    }

    fn mark_shards_stale(&self) {
        let mut c = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        if c.expires.is_some() {
            c.expires = Some(Instant::now());
        }
    }

    /// The current shard map, reloaded when expired (or `force`d). `None` when the
    /// stream's shards cannot be listed.
    async fn shard_map(&self, force: bool) -> Option<Arc<ShardMap>> {
        let generation = {
            let c = self.shards.lock().unwrap_or_else(|p| p.into_inner());
            if !force && c.expires.is_some_and(|t| t > Instant::now()) {
                return c.map.clone();
            }
            c.generation
        };
        let _guard = self.refresh.lock().await;
        {
            let c = self.shards.lock().unwrap_or_else(|p| p.into_inner());
            if c.generation != generation {
                // Another delivery reloaded it while this one waited.
                return c.map.clone();
            }
        }
        let loaded = self.list_shards().await;
        let mut c = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        c.generation += 1;
        match loaded {
            Ok(map) => {
                tracing::debug!(
                    "{}: shard map loaded, {} open shards",
                    self.reporter.what(),
                    map.len()
                );
                c.map = Some(Arc::new(map));
                c.expires = Some(Instant::now() + SHARD_MAP_MAX_AGE);
                c.warned = false;
            }
            Err(cause) => {
                if !c.warned {
                    tracing::warn!(
                        "{}: cannot list shards ({cause}); KPL aggregates will hold records \
                         of one partition key each until it works",
                        self.reporter.what()
                    );
                    c.warned = true;
                }
                c.expires = Some(Instant::now() + SHARD_MAP_RETRY);
            }
        }
        c.map.clone()
    }

    async fn list_shards(&self) -> Result<ShardMap, String> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self.client.list_shards();
            let req = match &token {
                Some(t) => req.next_token(t),
                None if self.is_arn() => req.stream_arn(&self.stream),
                None => req.stream_name(&self.stream),
            };
            let out = req.send().await.map_err(|e| classify_sdk(&e).1)?;
            for s in out.shards() {
                let closed = s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some();
                if closed {
                    continue;
                }
                let Some(r) = s.hash_key_range() else {
                    continue;
                };
                let (Ok(start), Ok(end)) = (
                    r.starting_hash_key().parse::<u128>(),
                    r.ending_hash_key().parse::<u128>(),
                ) else {
                    return Err(format!(
                        "shard {} has an unreadable hash key range",
                        s.shard_id()
                    ));
                };
                shards.push((s.shard_id().to_string(), start, end));
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        if shards.is_empty() {
            return Err("no open shard".into());
        }
        Ok(ShardMap::new(shards))
    }
}

/// The size limit that cuts `bytes` of user records into about `lanes` aggregates, with
/// an eighth of room for the records' framing and for shards that get more than their
/// share, and at least [`MIN_SHARED_AGGREGATE`].
///
/// The aggregates of a batch get their MD5 trailers side by side, one per SIMD lane, and
/// a lane costs as much busy as idle: one aggregate per shard of a 4-shard stream keeps 4
/// lanes busy (0.9 GiB/s here), 8 lanes make 1.5 GiB/s, AVX-512's 16 make 2.1. Smaller
/// aggregates still hold hundreds of records each; the stream bills data by the KiB
/// (on demand) or by 25 KiB units (provisioned, where a unit costs about a cent per
/// million).
fn lane_share(bytes: usize, lanes: usize) -> usize {
    let share = bytes / lanes.max(1);
    (share + share / 8).max(MIN_SHARED_AGGREGATE)
}

/// What user records are grouped by in aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
enum GroupKey<'a> {
    /// Index of the predicted shard.
    Shard(usize),
    /// Partition key (no shard map).
    Key(Cow<'a, str>),
}

fn request_len(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for e in entries.iter().take(KINESIS_MAX_RECORDS_PER_CALL) {
        if n > 0 && bytes + e.size() > KINESIS_MAX_BYTES_PER_CALL {
            break;
        }
        bytes += e.size();
        n += 1;
    }
    n
}

/// The JSON body of a PutRecords request for `entries` (awsJson1.1, as the SDK writes
/// it), written in one buffer of the right size: base64 straight from the batch or the
/// aggregates, which go back to `pool` once encoded (handed to [`super::rpc::Rpc::call`]).
fn put_records_body(
    pool: &BufPool,
    arn: bool,
    stream: &str,
    batch: &Batch,
    entries: &mut [Entry],
) -> Vec<u8> {
    let size: usize = entries
        .iter()
        .map(|e| {
            let data = e.data.as_ref().map_or(e.len, Vec::len);
            super::base64_len(data)
                + 2 * e.key.len()
                + e.ehk.as_ref().map_or(0, |k| k.len() + 24)
                + 40
        })
        .sum::<usize>()
        + 2 * stream.len()
        + 40;
    let mut out = pool.take(size);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, e) in entries.iter_mut().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match e.data.take() {
            Some(owned) => {
                super::open_record_json(&mut out, &owned);
                pool.give(owned);
            }
            None => super::open_record_json(&mut out, e.bytes(batch)),
        }
        out.extend_from_slice(b",\"PartitionKey\":");
        e.key.write_json(&mut out);
        if let Some(ehk) = &e.ehk {
            out.extend_from_slice(b",\"ExplicitHashKey\":");
            write_valid_str(&mut out, ehk);
        }
        out.push(b'}');
    }
    out.extend_from_slice(if arn {
        b"],\"StreamARN\":"
    } else {
        b"],\"StreamName\":"
    });
    write_valid_str(&mut out, stream);
    out.push(b'}');
    out
}

/// A random partition key (RANDOM): 16 hex digits, 64 bits spread over the hash space.
fn random_key(rng: &mut impl Rng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FileKey, RecordId};
    use base64::Engine;

    fn entry(
        data: Option<Vec<u8>>,
        len: usize,
        key: &str,
        ehk: Option<&str>,
        users: Users,
    ) -> Entry {
        Entry {
            data,
            len,
            key: Key::Text(key.to_string()),
            ehk: ehk.map(str::to_string),
            users,
            user_bytes: 0,
            shard: None,
        }
    }

    /// The body is the JSON the SDK would send: every entry with its data in base64 (a
    /// plain record cut to its length, an aggregate's own bytes), its key, JSON-escaped,
    /// and its explicit hash key; aggregates are dropped once encoded.
    #[test]
    fn put_records_body_is_the_request_json() {
        let mut batch = Batch::new(0);
        let id = RecordId::new(&FileKey::default(), 0);
        batch.push(b"first record\n", None, id);
        batch.push(&[0u8, 255, b'"', b'\\', 10], None, id);
        let aggregate: Vec<u8> = (0..=255).collect();
        let fresh = || {
            vec![
                entry(None, 12, "k\"e\\y\u{1}é", None, Users::One(0)),
                entry(
                    Some(aggregate.clone()),
                    256,
                    "agg",
                    Some("1234"),
                    Users::Many(vec![1]),
                ),
                entry(None, 5, "x", None, Users::One(1)),
            ]
        };
        for (arn, stream, field) in [
            (false, "logs", "StreamName"),
            (true, "arn:aws:kinesis:us-east-1:1:stream/l\"s", "StreamARN"),
        ] {
            let mut entries = fresh();
            let body = put_records_body(&BufPool::new(1 << 20), arn, stream, &batch, &mut entries);
            let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            assert_eq!(v[field], stream);
            let recs = v["Records"].as_array().unwrap();
            assert_eq!(recs.len(), 3);
            let data = |i: usize| {
                base64::engine::general_purpose::STANDARD
                    .decode(recs[i]["Data"].as_str().unwrap())
                    .unwrap()
            };
            assert_eq!(data(0), b"first record");
            assert_eq!(recs[0]["PartitionKey"], "k\"e\\y\u{1}é");
            assert!(recs[0].get("ExplicitHashKey").is_none());
            assert_eq!(data(1), aggregate);
            assert_eq!(recs[1]["ExplicitHashKey"], "1234");
            assert_eq!(data(2), [0u8, 255, b'"', b'\\', 10]);
            assert!(
                entries.iter().all(|e| e.data.is_none()),
                "aggregates dropped once encoded"
            );
        }
        let body = put_records_body(&BufPool::new(1 << 20), false, "s", &batch, &mut []);
        assert_eq!(body, br#"{"Records":[],"StreamName":"s"}"#);
    }

    /// The aggregates `lane_share` cuts a batch into: records spread evenly over `shards`
    /// groups, each filled to the limit in turn, as `aggregate` does.
    fn aggregates_for(shards: usize, records: usize, size: usize, lanes: usize) -> Vec<usize> {
        let limit = lane_share(records * size, lanes).min(KINESIS_MAX_RECORD_BYTES - MAX_KEY_BYTES);
        let mut groups: Vec<Aggregator> = (0..shards).map(|_| Aggregator::new(limit)).collect();
        let mut sizes = Vec::new();
        let data = vec![b'x'; size];
        for i in 0..records {
            let g = &mut groups[i % shards];
            if !g.try_add("0123456789abcdef", None, &data) {
                sizes.push(g.size());
                g.clear();
                assert!(g.try_add("0123456789abcdef", None, &data));
            }
        }
        sizes.extend(
            groups
                .iter()
                .filter(|g| !g.is_empty())
                .map(Aggregator::size),
        );
        sizes
    }

    /// A batch makes about one aggregate per MD5 lane, of about the same size, whatever the
    /// shard count; small batches are not cut below the minimum, and one lane cuts nothing.
    #[test]
    fn aggregates_fill_the_md5_lanes() {
        // 720 KiB of 300-byte records to 4 shards: two aggregates per shard.
        let a = aggregates_for(4, 2_400, 300, 8);
        assert_eq!(a.len(), 8, "{a:?}");
        let (min, max) = (a.iter().min().unwrap(), a.iter().max().unwrap());
        assert!(max - min < max / 4, "sizes {a:?}");
        assert_eq!(aggregates_for(1, 2_400, 300, 8).len(), 8);
        assert_eq!(aggregates_for(8, 2_400, 300, 8).len(), 8);
        assert_eq!(aggregates_for(16, 2_400, 300, 8).len(), 16);
        // 720 KiB in AVX-512's 16 lanes: 16 aggregates of about 45 KiB.
        assert_eq!(aggregates_for(4, 2_400, 300, 16).len(), 16);
        // 50 KiB: not cut below 32 KiB.
        assert_eq!(aggregates_for(1, 170, 300, 8).len(), 2);
        assert_eq!(aggregates_for(4, 170, 300, 16).len(), 4);
        // Without lanes to fill, one aggregate per shard.
        assert_eq!(aggregates_for(4, 2_400, 300, 1).len(), 4);
        assert_eq!(lane_share(0, 8), MIN_SHARED_AGGREGATE);
    }

    /// A random key is written as the 16 hex digits `random_key` makes, zeros included.
    #[test]
    fn random_keys_are_16_hex_digits() {
        for bits in [0u64, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            let mut out = Vec::new();
            let key = Key::Random(bits);
            key.write_json(&mut out);
            assert_eq!(out, format!("\"{bits:016x}\"").into_bytes());
            assert_eq!(key.len(), 16);
        }
    }
}
