//! Seeded randomness: every random choice in a run draws from a named stream of `spec.seed`, with
//! platform-independent integer sampling so that the CLI and the browser pick the same samples.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// The independent random streams of a run; adding a stream never changes the others' draws.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Split = 1,
    Selection = 2,
    Trigger = 3,
    Init = 4,
    Shuffle = 5,
    Augment = 6,
    /// Detectors' own draws (clean-image pools, overlays, subsamples).
    Detect = 7,
    /// Repairs' own draws (the defender's clean set, shuffles, stamped subsets).
    Repair = 8,
    /// Attacks that craft their poisons (the attacker's surrogate, its optimisation's draws).
    Craft = 9,
    /// Input sanitizers' draws (ShrinkPad's offsets).
    Sanitize = 10,
    /// DP-SGD's Gaussian noise.
    Dp = 11,
    /// A challenge's hidden attack (target, trigger place and look), drawn from its code.
    Challenge = 12,
}

/// A deterministic generator for one stream of one seed.
pub struct LabRng(ChaCha8Rng);

impl LabRng {
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream as u64);
        Self(rng)
    }
    /// Uniform in [0, 1), with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn byte(&mut self) -> u8 {
        (self.0.next_u32() >> 24) as u8
    }
    /// Uniform in [0, n) without modulo bias; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.0.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 through the boost
    /// Gamma(a) = Gamma(a + 1)·U^(1/a).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.unit();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    /// Beta(a, b) from two Gammas.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
    /// A random permutation of 0..n.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
    /// `k` distinct elements of `pool`, chosen uniformly, returned sorted.
    pub fn choose_sorted(&mut self, pool: &[usize], k: usize) -> Vec<usize> {
        let mut p = pool.to_vec();
        let k = k.min(p.len());
        for i in 0..k {
            let j = i + self.below(p.len() - i);
            p.swap(i, j);
        }
        p.truncate(k);
        p.sort_unstable();
        p
    }
}
