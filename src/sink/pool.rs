//! Byte buffers kept for reuse by one flow: its batches' data, its request bodies and KPL
//! aggregates.
//!
//! A batch, the aggregates made of it and the request body are 100 KiB to a few MiB each.
//! Fresh ones come from their own mappings (the malloc settings in `main.rs`), so every
//! batch and request would fault in and zero its pages, then unmap them: on the KPL path,
//! 36,000 page faults for 100,000 lines, about a tenth of its CPU. A buffer given back here
//! keeps its pages for the next one.
//!
//! The pool holds at most `max_bytes` of capacity (the flow's share of the memory budget)
//! in at most eight buffers, and only buffers that were in use at once: reused, they keep
//! the peak where fresh ones would have put it, but stay resident while the flow idles.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Most buffers kept: a body and its aggregates for a few requests.
const MAX_BUFFERS: usize = 8;

/// Free buffers of one flow, smallest capacity first.
#[derive(Debug)]
pub struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_bytes: usize,
}

impl BufPool {
    /// A pool that keeps at most `max_bytes` of capacity.
    pub fn new(max_bytes: usize) -> Arc<BufPool> {
        Arc::new(BufPool {
            free: Mutex::new(Vec::new()),
            max_bytes,
        })
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest kept one
    /// that is large enough, unless it is more than twice as large (a body's buffer is
    /// left for the next body rather than spent on an aggregate); else the largest kept
    /// one that is smaller, grown; else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let kept = {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            match free.iter().position(|b| b.capacity() >= capacity) {
                Some(i) if free[i].capacity() <= 2 * capacity + 64 * 1024 => Some(free.remove(i)),
                Some(0) => None,
                Some(i) => Some(free.remove(i - 1)),
                None => free.pop(),
            }
        };
        match kept {
            Some(mut b) => {
                b.reserve_exact(capacity);
                b
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf` for reuse if the pool has room for it; frees it otherwise.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > self.max_bytes {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let mut held: usize = free.iter().map(Vec::capacity).sum();
        // Room is made by dropping the smallest buffers, which save the fewest faults.
        while !free.is_empty()
            && (free.len() >= MAX_BUFFERS || held + buf.capacity() > self.max_bytes)
        {
            if free[0].capacity() > buf.capacity() {
                return;
            }
            held -= free.remove(0).capacity();
        }
        let at = free.partition_point(|b| b.capacity() <= buf.capacity());
        free.insert(at, buf);
    }

    /// `buf` as `Bytes` for the SDK, given back to this pool once the SDK (and every copy
    /// of the handle a retry made) has dropped it.
    pub fn bytes(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            buf,
            pool: Arc::clone(self),
        })
    }

    /// Capacity kept now.
    #[cfg(test)]
    fn held(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.iter().map(Vec::capacity).sum()
    }
}

/// A buffer lent out as `Bytes`.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<BufPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_and_large_enough() {
        let pool = BufPool::new(1 << 20);
        let mut b = pool.take(1000);
        b.extend_from_slice(&[7; 1000]);
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take(500);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
        assert!(again.capacity() >= 1000);
        // Nothing kept: a new one.
        assert!(pool.take(10).capacity() >= 10);
    }

    #[test]
    fn the_smallest_fitting_buffer_is_taken_and_a_short_one_is_grown() {
        let pool = BufPool::new(1 << 20);
        for cap in [4096, 1024, 65536] {
            pool.give(Vec::with_capacity(cap));
        }
        assert_eq!(pool.take(2000).capacity(), 4096);
        let grown = pool.take(100_000);
        assert!(grown.capacity() >= 100_000);
        assert_eq!(pool.held(), 1024);
        // A buffer far larger than asked for is kept for a large request.
        let pool = BufPool::new(1 << 30);
        pool.give(Vec::with_capacity(1 << 20));
        assert_eq!(pool.take(1000).capacity(), 1000);
        pool.give(Vec::with_capacity(2000));
        assert_eq!(
            pool.take(100_000).capacity(),
            100_000,
            "the smaller one, grown"
        );
        assert_eq!(pool.take(600_000).capacity(), 1 << 20);
    }

    #[test]
    fn the_pool_never_holds_more_than_its_bytes_or_buffers() {
        let pool = BufPool::new(10_000);
        pool.give(Vec::with_capacity(20_000)); // larger than the pool
        assert_eq!(pool.held(), 0);
        for _ in 0..5 {
            pool.give(Vec::with_capacity(3000));
        }
        assert!(pool.held() <= 10_000, "{}", pool.held());
        // A larger buffer replaces smaller ones.
        pool.give(Vec::with_capacity(8000));
        assert!(pool.held() <= 10_000);
        assert!(pool.take(8000).capacity() >= 8000);
        let many = BufPool::new(1 << 30);
        for _ in 0..MAX_BUFFERS + 5 {
            many.give(Vec::with_capacity(100));
        }
        assert_eq!(many.free.lock().unwrap().len(), MAX_BUFFERS);
    }

    #[test]
    fn bytes_go_back_to_the_pool_when_the_last_handle_drops() {
        let pool = BufPool::new(1 << 20);
        let mut b = pool.take(100);
        b.extend_from_slice(b"hello");
        let bytes = pool.bytes(b);
        let copy = bytes.clone();
        assert_eq!(&copy[..], b"hello");
        drop(bytes);
        assert_eq!(pool.held(), 0);
        drop(copy);
        assert!(pool.held() >= 100);
    }
}
