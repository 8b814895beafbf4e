//! The hash-key ranges of a stream's open shards. Kinesis routes a record by the MD5 of
//! its partition key read as a 128-bit big-endian number (or by its explicit hash key) to
//! the shard whose range holds it. Aggregates must hold only user records of one shard
//! (the KCL drops an aggregate otherwise), so the sink groups user records with this map.

use md5::{Digest, Md5};
use rand::Rng;

/// One open shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// `ShardId`.
    pub id: String,
    /// `StartingHashKey`.
    pub start: u128,
    /// `EndingHashKey` (inclusive).
    pub end: u128,
    /// A partition key whose hash lies in this shard, for records with no key of their own.
    pub key: String,
}

/// The open shards of a stream, sorted by starting hash key.
#[derive(Debug, Clone, Default)]
pub struct ShardMap {
    shards: Vec<Shard>,
}

/// How many random keys to try before giving up finding one that hashes into a shard
/// (only a shard narrower than 1/2^16 of the key space can take that many).
const KEY_SEARCH_TRIES: usize = 1 << 20;

impl ShardMap {
    /// A map of the shards `(id, start, end)`; finds a key for each.
    pub fn new(shards: impl IntoIterator<Item = (String, u128, u128)>) -> Self {
        let mut rng = rand::thread_rng();
        let mut shards: Vec<Shard> = shards
            .into_iter()
            .map(|(id, start, end)| {
                let key = key_in_range(start, end, &mut rng).unwrap_or_else(|| {
                    // Never seen in practice; the records then carry an explicit hash key.
                    String::new()
                });
                Shard {
                    id,
                    start,
                    end,
                    key,
                }
            })
            .collect();
        shards.sort_by_key(|s| s.start);
        ShardMap { shards }
    }

    /// The shards.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// True with no shard (not loaded).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The index of the shard that owns `hash`, if any (a gap means the map is stale).
    pub fn shard_of(&self, hash: u128) -> Option<usize> {
        let i = self.shards.partition_point(|s| s.start <= hash);
        let i = i.checked_sub(1)?;
        (hash <= self.shards[i].end).then_some(i)
    }

    /// The index of shard `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.shards.iter().position(|s| s.id == id)
    }
}

/// The hash key Kinesis routes `partition_key` by.
pub fn hash_key(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key).into())
}

/// [`hash_key`] of each of `partition_keys`, computed side by side.
pub fn hash_keys(partition_keys: &[&[u8]]) -> Vec<u128> {
    crate::md5many::digests(partition_keys)
        .into_iter()
        .map(u128::from_be_bytes)
        .collect()
}

/// A random partition key whose hash lies in `[start, end]`.
fn key_in_range(start: u128, end: u128, rng: &mut impl Rng) -> Option<String> {
    for _ in 0..KEY_SEARCH_TRIES {
        let k = format!("{:016x}", rng.gen::<u64>());
        let h = hash_key(k.as_bytes());
        if (start..=end).contains(&h) {
            return Some(k);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn even(n: u128) -> ShardMap {
        let step = u128::MAX / n;
        ShardMap::new((0..n).map(|i| {
            let end = if i == n - 1 {
                u128::MAX
            } else {
                (i + 1) * step - 1
            };
            (format!("shardId-{i:012}"), i * step, end)
        }))
    }

    #[test]
    fn hash_key_is_md5_big_endian() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(hash_key(b"a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    #[test]
    fn lookup_and_keys_land_in_their_shard() {
        let m = even(4);
        assert_eq!(m.shard_of(0), Some(0));
        assert_eq!(m.shard_of(u128::MAX), Some(3));
        assert_eq!(m.shard_of(u128::MAX / 4), Some(1));
        for (i, s) in m.shards().iter().enumerate() {
            assert_eq!(m.shard_of(hash_key(s.key.as_bytes())), Some(i));
            assert_eq!(m.position(&s.id), Some(i));
        }
        let gap = ShardMap::new([("a".to_string(), 0, 10), ("b".to_string(), 20, 30)]);
        assert_eq!(gap.shard_of(15), None);
        assert_eq!(gap.shard_of(31), None);
    }
}
