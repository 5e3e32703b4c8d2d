//! Find-the-backdoor challenges: a short code (the link's `challenge=`) from which the lab derives a
//! BadNets attack whose target class, trigger place, look and size the student does not see. The
//! student trains the suspect model, runs detectors, names the target and the trigger's place, and
//! the page grades the answer and reveals the truth.
//!
//! The code is a 40-bit number in base 32; the hidden attack is drawn from it through the lab's own
//! random stream (ChaCha8, `Stream::Challenge`), so it is not readable from the link without running
//! that generator: enough to keep a class honest, not a secret against a determined reader.

use crate::lab::ExperimentSpec;
use crate::lab::error::{LabError, Result};
use crate::lab::rng::{LabRng, Stream};

/// The code's alphabet: Crockford's base 32 in lower case (no i, l, o, u to misread).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters in a code: 8 × 5 = 40 bits.
pub const CODE_LEN: usize = 8;

/// Where a trigger can sit; the student answers with one of these.
pub const PLACES: [(&str, &str); 5] =
    [("tl", "top left"), ("tr", "top right"), ("center", "centre"), ("bl", "bottom left"), ("br", "bottom right")];
const PATTERNS: [&str; 2] = ["white", "checker"];

/// The size of a challenge's training run: large enough for a clean accuracy near 97 % and a reliable
/// backdoor, small enough for a student's laptop in about a minute.
const SIZE: &str = "train=4000&test=1000&epochs=3";

/// A challenge: its code and the attack hidden in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    code: String,
    seed: u64,
}

/// What the page reveals after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    pub target: u8,
    /// Index into `PLACES`.
    pub place: usize,
    pub pattern: &'static str,
    pub patch: usize,
}

/// A student's answer, graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grade {
    pub target: bool,
    pub place: bool,
}

impl Challenge {
    /// Reads a code, e.g. from a link: exactly `CODE_LEN` characters of the alphabet (case and
    /// Crockford's look-alikes i/l → 1, o → 0 forgiven, as a student may type it from a slide).
    pub fn parse(code: &str) -> Result<Self> {
        let clean: String = code
            .trim()
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            })
            .collect();
        if clean.chars().count() != CODE_LEN {
            return Err(LabError::spec(format!(
                "challenge: a code has {CODE_LEN} characters, '{}' has {}",
                code.trim(),
                code.trim().chars().count()
            )));
        }
        let mut seed = 0u64;
        for c in clean.bytes() {
            let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
                return Err(LabError::spec(format!(
                    "challenge: '{}' is not a code character (0-9 and a-z without i, l, o, u)",
                    c as char
                )));
            };
            seed = seed << 5 | v as u64;
        }
        Ok(Self { code: clean, seed })
    }

    /// The challenge of a 40-bit number (the page draws it from the browser's random numbers).
    pub fn from_number(n: u64) -> Self {
        let seed = n & ((1 << (5 * CODE_LEN)) - 1);
        let code = (0..CODE_LEN).rev().map(|i| ALPHABET[(seed >> (5 * i)) as usize & 31] as char).collect();
        Self { code, seed }
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// The hidden attack.
    pub fn truth(&self) -> Truth {
        let mut rng = LabRng::new(self.seed, Stream::Challenge);
        let target = rng.below(10) as u8;
        let place = rng.below(PLACES.len());
        let pattern = PATTERNS[rng.below(PATTERNS.len())];
        let patch = 3 + rng.below(2);
        Truth { target, place, pattern, patch }
    }

    /// The experiment: the default BadNets attack with the hidden target and trigger, trained at the
    /// challenge's size from the code's own seed.
    pub fn spec(&self) -> ExperimentSpec {
        let t = self.truth();
        let link = format!(
            "v=1&seed={}&{SIZE}&target={}&pos={}&pattern={}&patch={}",
            self.seed, t.target, PLACES[t.place].0, t.pattern, t.patch
        );
        ExperimentSpec::from_link(&link).expect("a challenge's spec is within every range")
    }

    /// Grades an answer: the target class and the index of the trigger's place in `PLACES`.
    pub fn grade(&self, target: u8, place: usize) -> Grade {
        let t = self.truth();
        Grade { target: target == t.target, place: place == t.place }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_forgive_case_and_look_alikes() {
        for n in [0u64, 1, 31, 32, 0xdead_beef, (1 << 40) - 1] {
            let c = Challenge::from_number(n);
            assert_eq!(c.code().len(), CODE_LEN);
            assert_eq!(Challenge::parse(c.code()).unwrap(), c);
            assert_eq!(Challenge::parse(&c.code().to_uppercase()).unwrap(), c);
        }
        assert_eq!(Challenge::parse("0000000L").unwrap(), Challenge::parse("00000001").unwrap());
        assert_eq!(Challenge::parse(" oOoOoOoO ").unwrap(), Challenge::from_number(0));
    }

    #[test]
    fn bad_codes_are_refused_with_the_reason() {
        let e = Challenge::parse("abc").unwrap_err().to_string();
        assert!(e.contains("8 characters") && e.contains("'abc' has 3"), "{e}");
        let e = Challenge::parse("abcdefgu").unwrap_err().to_string();
        assert!(e.contains("'u' is not a code character"), "{e}");
        assert!(Challenge::parse("abcdéfgh").is_err());
        assert!(Challenge::parse("").is_err());
    }

    #[test]
    fn the_hidden_attack_varies_over_every_target_and_place_and_is_the_spec() {
        let mut targets = [0usize; 10];
        let mut places = [0usize; PLACES.len()];
        for n in 0..2000u64 {
            let c = Challenge::from_number(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let t = c.truth();
            targets[t.target as usize] += 1;
            places[t.place] += 1;
            assert!((3..=4).contains(&t.patch));
        }
        // Uniform draws: every class and place is common (expected 200 and 400).
        assert!(targets.iter().all(|&k| k > 120), "{targets:?}");
        assert!(places.iter().all(|&k| k > 280), "{places:?}");
        let c = Challenge::parse("k3v9q2mx").unwrap();
        let (t, spec) = (c.truth(), c.spec());
        assert_eq!(spec.attack.target_label, t.target);
        let link = spec.to_link();
        assert!(
            link.contains(&format!("pos={}", PLACES[t.place].0))
                || (PLACES[t.place].0 == "br" && !link.contains("pos=")),
            "{link}"
        );
        assert_eq!(c.grade(t.target, t.place), Grade { target: true, place: true });
        assert_eq!(c.grade((t.target + 1) % 10, t.place), Grade { target: false, place: true });
        assert_eq!(c.grade(t.target, (t.place + 1) % PLACES.len()), Grade { target: true, place: false });
    }
}
