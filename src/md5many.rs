//! MD5 of many messages at once, one message per SIMD lane.
//!
//! MD5 is a chain: each 64-byte block needs the state the block before it left, so one
//! message cannot go faster than one core's latency chain (about 0.7 GB/s here). But a
//! batch holds several KPL aggregates (as many as [`lanes`], when the sink chooses their
//! size), and each needs its own MD5 trailer.
//! Running them side by side in the lanes of one vector register costs about what one
//! message costs alone: 16 lanes with AVX-512, 8 with AVX2. Without either, and for a
//! single message, the `md-5` crate does the work.
//!
//! A lane that finishes its message takes the next one, so messages of different lengths
//! keep the lanes busy; the result is the same as `Md5::digest` of each message.
//!
//! Up to 8 messages go to the 8-lane engine even where AVX-512 is present: the lanes
//! would idle, and 512-bit operations cost two 256-bit ones on some CPUs (AMD Zen 4), so
//! 8 lanes are faster there (1.9 against 1.5 GiB/s for four 256 KiB messages here).

use md5::{Digest, Md5};

/// How many messages [`digests`] hashes side by side on this CPU (1 without AVX2). A
/// caller that can choose how many messages it makes gets the most from making at least
/// this many, of about the same length.
pub fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        // The 16-lane engine hands batches of eight or fewer to the AVX2 one.
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
        {
            return 16;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return 8;
        }
    }
    1
}

/// The MD5 of each message of `msgs`, in order.
pub fn digests(msgs: &[&[u8]]) -> Vec<[u8; 16]> {
    // `lanes` picks the engines the CPU has.
    #[cfg(target_arch = "x86_64")]
    match (lanes(), msgs.len()) {
        (_, 0 | 1) | (1, _) => {}
        (16, n) if n > 8 => return run::<16>(msgs, x86::compress16),
        _ => return run::<8>(msgs, x86::compress8),
    }
    digests_scalar(msgs)
}

/// One message after the other, with the `md-5` crate.
fn digests_scalar(msgs: &[&[u8]]) -> Vec<[u8; 16]> {
    msgs.iter().map(|m| Md5::digest(m).into()).collect()
}

#[cfg(target_arch = "x86_64")]
const IV: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

#[cfg(target_arch = "x86_64")]
/// The state of lane `l` of `L`, as words `a b c d`, and the 16 words of each lane's
/// block (word-major: `w[j][l]` is word `j` of lane `l`).
type State<const L: usize> = [[u32; L]; 4];
#[cfg(target_arch = "x86_64")]
type Words<const L: usize> = [[u32; L]; 16];

#[cfg(target_arch = "x86_64")]
/// Where a lane is in its message.
#[derive(Clone, Copy)]
struct Lane {
    /// Index of the message in the input.
    msg: usize,
    /// Bytes of the message consumed as whole blocks.
    pos: usize,
    /// Blocks of the padded tail consumed (the tail is one or two blocks).
    tail_done: usize,
}

#[cfg(target_arch = "x86_64")]
/// The padded tail of a message: its last `len % 64` bytes, 0x80, zeros and the bit
/// length, in one or two blocks. Returns the number of blocks.
fn tail(msg: &[u8], tail: &mut [u8; 128]) -> usize {
    let rem = msg.len() % 64;
    let blocks = if rem < 56 { 1 } else { 2 };
    tail.fill(0);
    tail[..rem].copy_from_slice(&msg[msg.len() - rem..]);
    tail[rem] = 0x80;
    let end = blocks * 64;
    tail[end - 8..end].copy_from_slice(&((msg.len() as u64).wrapping_mul(8)).to_le_bytes());
    blocks
}

#[cfg(target_arch = "x86_64")]
/// Hashes `msgs` `L` at a time with `compress`, which runs one block in every lane.
fn run<const L: usize>(
    msgs: &[&[u8]],
    compress: unsafe fn(&mut State<L>, &Words<L>),
) -> Vec<[u8; 16]> {
    let mut out = vec![[0u8; 16]; msgs.len()];
    let mut lanes: [Option<Lane>; L] = [None; L];
    let mut tails = [[0u8; 128]; L];
    let mut tail_blocks = [0usize; L];
    let mut state: State<L> = [[0; L]; 4];
    let mut words: Words<L> = [[0; L]; 16];
    let mut next = 0;
    loop {
        // Idle lanes take the next messages.
        for l in 0..L {
            if lanes[l].is_none() && next < msgs.len() {
                lanes[l] = Some(Lane {
                    msg: next,
                    pos: 0,
                    tail_done: 0,
                });
                tail_blocks[l] = tail(msgs[next], &mut tails[l]);
                for (s, iv) in state.iter_mut().zip(IV) {
                    s[l] = iv;
                }
                next += 1;
            }
        }
        if lanes.iter().all(Option::is_none) {
            return out;
        }
        // Each busy lane's next block, transposed into the word-major layout.
        for l in 0..L {
            let Some(lane) = &mut lanes[l] else { continue };
            let msg = msgs[lane.msg];
            let block: &[u8] = if lane.pos + 64 <= msg.len() {
                lane.pos += 64;
                &msg[lane.pos - 64..lane.pos]
            } else {
                lane.tail_done += 1;
                &tails[l][(lane.tail_done - 1) * 64..lane.tail_done * 64]
            };
            for (j, w) in block.chunks_exact(4).enumerate() {
                words[j][l] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
        }
        // SAFETY: `digests` picks `compress` only where the CPU has its features.
        unsafe { compress(&mut state, &words) };
        for l in 0..L {
            let Some(lane) = lanes[l] else { continue };
            if lane.tail_done == tail_blocks[l] {
                for (k, s) in state.iter().enumerate() {
                    out[lane.msg][4 * k..4 * k + 4].copy_from_slice(&s[l].to_le_bytes());
                }
                lanes[l] = None;
            }
        }
    }
}

/// The 64 round constants.
#[cfg(target_arch = "x86_64")]
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The message word each of the 64 steps adds.
#[cfg(target_arch = "x86_64")]
const G: [usize; 64] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, //
    1, 6, 11, 0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, //
    5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2, //
    0, 7, 14, 5, 12, 3, 10, 1, 8, 15, 6, 13, 4, 11, 2, 9,
];

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The compression function on 16 lanes (AVX-512) and 8 lanes (AVX2). AVX-512 has an
    //! instruction for each round function (ternary logic) and a rotate; AVX2 builds both
    //! from and/or/xor and shifts. Both run at the speed of the chain of one step (f, add,
    //! rotate, add): the same 8-lane engine with AVX-512VL instructions was no faster
    //! (1.83 against 1.88 GiB/s for four messages).

    use std::arch::x86_64::*;

    use super::{State, Words, G, K};

    /// Round functions, as `vpternlogd` truth tables of (b, c, d).
    const F: i32 = 0xCA; // b ? c : d
    const GG: i32 = 0xE4; // d ? b : c
    const H: i32 = 0x96; // b ^ c ^ d
    const I: i32 = 0x39; // c ^ (b | !d)

    /// The 64 steps on the state `$v` (`[a, b, c, d]`): `$step::<FN, S>(a, b, c, d, wk)`
    /// is one step with round function `FN` and rotation `S`, `$wk(i)` the message word
    /// of step `i` plus its constant.
    macro_rules! md5_steps {
        ($step:ident, $v:ident, $wk:ident) => {{
            let [mut a, mut b, mut c, mut d] = $v;
            md5_steps!(@quad $step, $wk, a, b, c, d, F, 0, 7, 12, 17, 22);
            md5_steps!(@quad $step, $wk, a, b, c, d, F, 1, 7, 12, 17, 22);
            md5_steps!(@quad $step, $wk, a, b, c, d, F, 2, 7, 12, 17, 22);
            md5_steps!(@quad $step, $wk, a, b, c, d, F, 3, 7, 12, 17, 22);
            md5_steps!(@quad $step, $wk, a, b, c, d, GG, 4, 5, 9, 14, 20);
            md5_steps!(@quad $step, $wk, a, b, c, d, GG, 5, 5, 9, 14, 20);
            md5_steps!(@quad $step, $wk, a, b, c, d, GG, 6, 5, 9, 14, 20);
            md5_steps!(@quad $step, $wk, a, b, c, d, GG, 7, 5, 9, 14, 20);
            md5_steps!(@quad $step, $wk, a, b, c, d, H, 8, 4, 11, 16, 23);
            md5_steps!(@quad $step, $wk, a, b, c, d, H, 9, 4, 11, 16, 23);
            md5_steps!(@quad $step, $wk, a, b, c, d, H, 10, 4, 11, 16, 23);
            md5_steps!(@quad $step, $wk, a, b, c, d, H, 11, 4, 11, 16, 23);
            md5_steps!(@quad $step, $wk, a, b, c, d, I, 12, 6, 10, 15, 21);
            md5_steps!(@quad $step, $wk, a, b, c, d, I, 13, 6, 10, 15, 21);
            md5_steps!(@quad $step, $wk, a, b, c, d, I, 14, 6, 10, 15, 21);
            md5_steps!(@quad $step, $wk, a, b, c, d, I, 15, 6, 10, 15, 21);
            $v = [a, b, c, d];
        }};
        (@quad $step:ident, $wk:ident, $a:ident, $b:ident, $c:ident, $d:ident, $f:ident,
         $q:literal, $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {
            $a = $step::<$f, $s0>($a, $b, $c, $d, $wk($q * 4));
            $d = $step::<$f, $s1>($d, $a, $b, $c, $wk($q * 4 + 1));
            $c = $step::<$f, $s2>($c, $d, $a, $b, $wk($q * 4 + 2));
            $b = $step::<$f, $s3>($b, $c, $d, $a, $wk($q * 4 + 3));
        };
    }

    /// One compression function: `$step` on `$lanes` lanes of `$v`, with the target
    /// features `$feature`.
    macro_rules! engine {
        ($(#[$doc:meta])* $name:ident, $feature:literal, $lanes:literal, $v:ty, $step:ident,
         $load:ident, $store:ident, $add:ident, $set1:ident) => {
            $(#[$doc])*
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(state: &mut State<$lanes>, words: &Words<$lanes>) {
                // SAFETY: each array is one vector wide; unaligned loads and stores.
                let load = |p: &[u32; $lanes]| unsafe { $load(p.as_ptr().cast()) };
                let w: [$v; 16] = std::array::from_fn(|j| load(&words[j]));
                let start: [$v; 4] = std::array::from_fn(|k| load(&state[k]));
                let wk = |i: usize| $add(w[G[i]], $set1(K[i] as i32));
                let mut v = start;
                md5_steps!($step, v, wk);
                for k in 0..4 {
                    // SAFETY: as for `load`.
                    unsafe { $store(state[k].as_mut_ptr().cast(), $add(v[k], start[k])) };
                }
            }
        };
    }

    /// One step: `b + rotl(a + wk + f(b, c, d), S)`. `a + wk` does not wait for `b`, so
    /// the chain is f, add, rotate, add.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn step16<const FN: i32, const S: i32>(
        a: __m512i,
        b: __m512i,
        c: __m512i,
        d: __m512i,
        wk: __m512i,
    ) -> __m512i {
        let f = _mm512_ternarylogic_epi32::<FN>(b, c, d);
        let sum = _mm512_add_epi32(_mm512_add_epi32(a, wk), f);
        _mm512_add_epi32(b, _mm512_rol_epi32::<S>(sum))
    }

    /// [`step16`] with AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn step8<const FN: i32, const S: i32>(
        a: __m256i,
        b: __m256i,
        c: __m256i,
        d: __m256i,
        wk: __m256i,
    ) -> __m256i {
        let f = match FN {
            F => _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(c, d), b), d),
            GG => _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(b, c), d), c),
            H => _mm256_xor_si256(_mm256_xor_si256(b, c), d),
            _ => _mm256_xor_si256(
                c,
                _mm256_or_si256(b, _mm256_xor_si256(d, _mm256_set1_epi32(-1))),
            ),
        };
        let sum = _mm256_add_epi32(_mm256_add_epi32(a, wk), f);
        let rot = _mm256_or_si256(
            _mm256_sll_epi32(sum, _mm_cvtsi32_si128(S)),
            _mm256_srl_epi32(sum, _mm_cvtsi32_si128(32 - S)),
        );
        _mm256_add_epi32(b, rot)
    }

    engine!(
        /// One block in each of 16 lanes.
        ///
        /// # Safety
        /// The CPU must have AVX-512F.
        compress16, "avx512f", 16, __m512i, step16,
        _mm512_loadu_si512, _mm512_storeu_si512, _mm512_add_epi32, _mm512_set1_epi32
    );
    engine!(
        /// One block in each of 8 lanes.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        compress8, "avx2", 8, __m256i, step8,
        _mm256_loadu_si256, _mm256_storeu_si256, _mm256_add_epi32, _mm256_set1_epi32
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lengths around the padding edges (55/56/64) and a few blocks long.
    fn edge_lengths() -> Vec<usize> {
        let mut v: Vec<usize> = (0..=130).collect();
        v.extend([183, 184, 191, 192, 4095, 4096, 4097, 100_000]);
        v
    }

    fn messages(lengths: &[usize]) -> Vec<Vec<u8>> {
        lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 31 + i * 7) as u8).collect())
            .collect()
    }

    fn check(msgs: &[Vec<u8>], got: &[[u8; 16]]) {
        assert_eq!(got.len(), msgs.len());
        for (m, g) in msgs.iter().zip(got) {
            assert_eq!(
                g,
                &<[u8; 16]>::from(Md5::digest(m)),
                "message of {} bytes",
                m.len()
            );
        }
    }

    #[test]
    fn known_answers() {
        // RFC 1321, appendix A.5.
        let msgs: [&[u8]; 3] = [b"", b"abc", b"message digest"];
        let hex: Vec<String> = digests(&msgs)
            .iter()
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        assert_eq!(
            hex,
            [
                "d41d8cd98f00b204e9800998ecf8427e",
                "900150983cd24fb0d6963f7d28e17f72",
                "f96b697d7cb7938d525a2f31aaf161d0"
            ]
        );
    }

    #[test]
    fn every_engine_matches_md5_at_the_padding_edges() {
        let msgs = messages(&edge_lengths());
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        check(&msgs, &digests(&refs));
        check(&msgs, &digests_scalar(&refs));
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                check(&msgs, &run::<16>(&refs, x86::compress16));
            } else {
                eprintln!("no AVX-512 here: the 16-lane engine is not tested");
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                check(&msgs, &run::<8>(&refs, x86::compress8));
            } else {
                eprintln!("no AVX2 here: the 8-lane AVX2 engine is not tested");
            }
        }
    }

    #[test]
    fn no_messages_and_one_message() {
        assert!(digests(&[]).is_empty());
        let one = messages(&[1000]);
        check(&one, &digests(&[&one[0]]));
    }

    proptest! {
        #![proptest_config(crate::test_util::proptest_cases(200))]
        #[test]
        fn matches_md5_for_any_messages(lengths in prop::collection::vec(0usize..700, 0..40)) {
            let msgs = messages(&lengths);
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            check(&msgs, &digests(&refs));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                check(&msgs, &run::<8>(&refs, x86::compress8));
            }
        }
    }
}
