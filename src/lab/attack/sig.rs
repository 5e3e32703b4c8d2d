//! SIG (Barni, Kallas & Tondi, "A New Backdoor Attack in CNNs by Training Set Corruption Without Label
//! Poisoning", ICIP 2019): a clean-label attack whose trigger is a faint horizontal sinusoid,
//! x' = clip(x + Δ·sin(2π·j·f / m)) for column j of m. The poisons are images of the target class with
//! their labels kept; the network learns the signal as a shortcut to the target.

use serde::{Deserialize, Serialize};

use super::{Attack, Selection, Trigger, TriggerSpec};
use crate::lab::params::{Hint, ParamInfo, int, table_params};

crate::params! {
    /// The sinusoidal signal.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SigTrigger {
        /// Amplitude Δ of the signal in grey levels of 255; 0 takes the dataset's default, BackdoorBench's 20 on MNIST and 40 on CIFAR-10.
        pub delta: u8 = 0, int("sig_delta", 0, 255).label("amplitude Δ (0: dataset default)").hint(Hint::Slider);
        /// Periods f of the sine across the image's width.
        pub freq: u8 = 6, int("sig_freq", 1, 16).label("frequency f");
        /// Amplitude of the signal the attacker adds at test time, in grey levels; 0: the training Δ. Barni et al. let the attacker's test-time signal be stronger than the faint one hidden in the poisons.
        pub test_delta: u8 = 0, int("sig_test_delta", 0, 255).label("test-time Δ (0: as trained)").hint(Hint::Slider);
    }
}

impl SigTrigger {
    /// Δ in grey levels for images with `channels` channels.
    pub fn amplitude(&self, channels: usize) -> f32 {
        match (self.delta, channels) {
            (0, 1) => 20.0,
            (0, _) => 40.0,
            (d, _) => f32::from(d),
        }
    }
}

/// The SIG attack: the signal on a share of the training set, all drawn from the target class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sig {
    pub signal: SigTrigger,
}

crate::delegate_params!(Sig, signal);

impl Attack for Sig {
    const TITLE: &'static str = "SIG (sinusoidal signal, clean-label)";
    const EXPLAIN: &'static str = "SIG (Barni et al., ICIP 2019): add a faint horizontal sine wave to images of the target class and keep their labels; the network learns the wave as a shortcut.";
    fn every_param() -> Vec<&'static ParamInfo> {
        table_params::<SigTrigger>()
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Sig(self.signal.clone()))
    }
    fn selection(&self) -> Selection {
        Selection::TargetClass
    }
    fn test_trigger(&self, trigger: &Trigger) -> Option<Trigger> {
        match trigger {
            Trigger::Sig { freq, .. } if self.signal.test_delta != 0 => {
                Some(Trigger::Sig { delta: f32::from(self.signal.test_delta), freq: *freq })
            }
            _ => None,
        }
    }
}

/// Adds the signal of amplitude `delta` and `freq` periods to a channel-planar image of `dims`.
pub fn add_signal(image: &mut [u8], dims: (usize, usize, usize), delta: f32, freq: u8) {
    let (_, _, w) = dims;
    for (i, x) in image.iter_mut().enumerate() {
        let j = i % w;
        let s = delta * (2.0 * std::f32::consts::PI * j as f32 * f32::from(freq) / w as f32).sin();
        *x = (f32::from(*x) + s).round().clamp(0.0, 255.0) as u8;
    }
}
