//! Seeded randomness: ChaCha8 with one independent stream per subsystem.
//!
//! Each subsystem (scheduler, faults, subject, generator, each thread) draws from its own ChaCha8
//! stream of the same seed, so adding a fault kind or a draw in one subsystem never shifts the
//! values another one sees. Ranges are mapped from `next_u64` by our own code, because the
//! distributions of the `rand` crate may change their outputs between releases.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng};

/// The streams of one seed. The numbers are part of the replay contract: never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Scheduler,
    Faults,
    Subject,
    Generator,
    Swarm,
    /// Per-thread streams start at 1024 so that they never collide with subsystem streams.
    Thread(u32),
}

impl Stream {
    fn number(self) -> u64 {
        match self {
            Stream::Scheduler => 1,
            Stream::Faults => 2,
            Stream::Subject => 3,
            Stream::Generator => 4,
            Stream::Swarm => 5,
            Stream::Thread(index) => 1024 + u64::from(index),
        }
    }
}

/// Draws for randomised unit tests: the project's own generator on a stream of `seed`, so that
/// no test carries a generator of its own.
#[cfg(test)]
pub(crate) fn test_draws(seed: u64) -> impl FnMut() -> u64 {
    let mut rng = Rng::new(seed, Stream::Generator);
    move || rng.next_u64()
}

/// A deterministic random stream.
///
/// The ChaCha8 state is made on the first draw, not at `new`: a run creates several streams
/// (scheduler, faults, subject) and most short runs, such as one fuzz input, draw from few or none
/// of them. Seeding a stream costs more than a whole small run, and the values a stream gives do
/// not depend on when its state was made, so laziness changes no run's outcome.
#[derive(Clone, Debug)]
pub struct Rng {
    seed: u64,
    stream: Stream,
    /// The stream's state, made on the first draw (boxed: it is most of a stream's size, and a
    /// stream not drawn from never has one).
    chacha: Option<Box<ChaCha8Rng>>,
    /// The stream's next values. ChaCha8 makes 256 bytes at a time and hands them out word by
    /// word with bounds and index bookkeeping on every draw; taking the 256 bytes at once and
    /// handing out 64-bit values from our own buffer makes a draw a load and an increment. The
    /// values are the same, in the same order: `fill_bytes` gives the stream's words
    /// little-endian, and a `next_u64` is two consecutive words, low first (the tests check it
    /// across refills). The bytes are kept as they come, and read 8 at a time as a value (one
    /// load): converting them to a list of values at every refill cost 6 instructions per draw.
    /// Held in place, beside the index, rather than with the state: a draw then reads its value
    /// with no test of whether the state exists yet (3 instructions a draw, and a scheduling
    /// decision draws once).
    bytes: [u8; BUFFERED * 8],
    /// The index of the next unread value in `bytes`; `BUFFERED` when all are read (and before
    /// the first draw, so that the first draw makes the state).
    unread_at: u8,
}

/// How many values one refill buffers: one ChaCha8 output buffer (four 64-byte blocks).
const BUFFERED: usize = 32;

impl Rng {
    pub fn new(seed: u64, stream: Stream) -> Rng {
        Rng {
            seed,
            stream,
            chacha: None,
            bytes: [0; BUFFERED * 8],
            unread_at: BUFFERED as u8,
        }
    }

    /// The value at `at` in the buffer.
    #[inline(always)]
    fn value(&self, at: usize) -> u64 {
        let bytes = self.bytes[at * 8..at * 8 + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(bytes)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let at = usize::from(self.unread_at);
        if at < BUFFERED {
            self.unread_at += 1;
            return self.value(at);
        }
        self.refill_and_next()
    }

    /// Seeds the stream on its first draw, refills the buffer, and returns its first value.
    #[cold]
    fn refill_and_next(&mut self) -> u64 {
        let (seed, stream) = (self.seed, self.stream);
        let chacha = self.chacha.get_or_insert_with(|| {
            let mut chacha = ChaCha8Rng::seed_from_u64(seed);
            chacha.set_stream(stream.number());
            Box::new(chacha)
        });
        chacha.fill_bytes(&mut self.bytes);
        self.unread_at = 1;
        self.value(0)
    }

    /// A uniform value in `0..bound` (Lemire's multiply-shift with rejection; no modulo bias).
    /// `bound` must be at least 1.
    /// The threshold (`2^64 mod bound`) is below `bound`, so a low half at or above `bound` is
    /// accepted at once; only one below it goes on to `below_rejecting`, which computes the
    /// threshold (a division). Inline, the threshold's negation was computed on every draw.
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no values");
        let product = u128::from(self.next_u64()) * u128::from(bound);
        if product as u64 >= bound {
            return (product >> 64) as u64;
        }
        self.below_rejecting(bound, product)
    }

    /// The rest of `below` for a first draw whose low half fell under `bound`: accepted if it is
    /// not under the threshold either, else drawn again until one is not.
    #[cold]
    fn below_rejecting(&mut self, bound: u64, mut product: u128) -> u64 {
        let threshold = bound.wrapping_neg() % bound;
        while (product as u64) < threshold {
            product = u128::from(self.next_u64()) * u128::from(bound);
        }
        (product >> 64) as u64
    }

    /// True with probability `parts_per_million / 1_000_000`.
    pub fn chance_ppm(&mut self, parts_per_million: u32) -> bool {
        parts_per_million > 0 && self.below(1_000_000) < u64::from(parts_per_million)
    }

    pub fn fill_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_stream_give_the_same_values_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, Stream::Faults);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, Stream::Faults);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, Stream::Scheduler);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_lazily_seeded_stream_gives_the_values_of_an_eagerly_seeded_one() {
        let mut eager = ChaCha8Rng::seed_from_u64(42);
        eager.set_stream(Stream::Subject.number());
        // Past several refills of the buffer, so that a value lost or reordered at a refill shows.
        let draws = BUFFERED * 3 + 5;
        let expected: Vec<u64> = (0..draws).map(|_| eager.next_u64()).collect();
        let mut lazy = Rng::new(42, Stream::Subject);
        let cloned_before_first_draw = lazy.clone();
        let got: Vec<u64> = (0..draws).map(|_| lazy.next_u64()).collect();
        assert_eq!(got, expected);
        let mut copy = cloned_before_first_draw;
        assert_eq!(copy.next_u64(), expected[0]);
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut rng = Rng::new(1, Stream::Subject);
        let mut seen = [false; 32];
        for _ in 0..2000 {
            let value = rng.below(32);
            assert!(value < 32);
            seen[value as usize] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "all 32 salts are drawn within 2000 tries"
        );
        assert_eq!(rng.below(1), 0);
    }

    /// `below` gives the values of Lemire's method written as one loop (a draw is accepted when
    /// its low half is at or above `bound` or at or above the threshold), draw for draw: with
    /// bounds just above a power of two, half the draws are rejected, which the scheduler's small
    /// bounds almost never are.
    #[test]
    fn below_gives_the_values_of_the_single_loop_form_across_rejections() {
        fn reference(rng: &mut Rng, bound: u64) -> u64 {
            loop {
                let product = u128::from(rng.next_u64()) * u128::from(bound);
                let low = product as u64;
                if low >= bound || low >= bound.wrapping_neg() % bound {
                    return (product >> 64) as u64;
                }
            }
        }
        for bound in [1, 2, 3, 7, (1 << 32) + 1, (1 << 63) + 1, u64::MAX] {
            let mut ours = Rng::new(9, Stream::Subject);
            let mut theirs = Rng::new(9, Stream::Subject);
            for _ in 0..BUFFERED * 3 {
                assert_eq!(
                    ours.below(bound),
                    reference(&mut theirs, bound),
                    "bound {bound}"
                );
            }
            assert_eq!(ours.next_u64(), theirs.next_u64(), "both drew as often");
        }
    }

    #[test]
    fn chance_extremes() {
        let mut rng = Rng::new(3, Stream::Faults);
        assert!((0..1000).all(|_| !rng.chance_ppm(0)));
        assert!((0..1000).all(|_| rng.chance_ppm(1_000_000)));
    }
}
