//! Backdoor attacks as data poisoning, split the way BackdoorBench does: a trigger (how pixels change,
//! `trigger.rs` and one file per trigger family), a label policy (`label_policy.rs`) and an index
//! selection (`selection.rs`). Poisoning returns the poisoned indices as ground truth for detectors.

pub mod arch_backdoor;
pub mod badnets;
pub mod blended;
pub mod clean_label;
pub mod craft;
pub mod gradient_matching;
pub mod hidden_trigger;
pub mod label_consistent;
pub mod label_policy;
pub mod malicious_loss;
pub mod none;
mod poison;
pub mod selection;
pub mod semantic;
pub mod sig;
pub mod trigger;
pub mod wanet;

use serde::{Deserialize, Serialize};

pub use arch_backdoor::{ArchBackdoor, BranchStrength};
pub use badnets::{Badnets, Drawing, PatchPattern, PatchPosition, PatchTrigger};
pub use blended::{BlendPattern, BlendTrigger, Blended};
pub use clean_label::CleanLabel;
pub use craft::Craft;
pub use gradient_matching::GradientMatching;
pub use hidden_trigger::HiddenTrigger;
pub use label_consistent::LabelConsistent;
pub use label_policy::LabelPolicy;
pub use malicious_loss::MaliciousLoss;
pub use none::NoAttack;
pub use poison::{AttackSpec, Poisoned};
pub use semantic::{Colour, Semantic, Style};
pub use sig::{Sig, SigTrigger};
pub use trigger::{Trigger, TriggerSpec};
pub use wanet::{Wanet, WarpField, WarpTrigger};

use crate::lab::data::{ImageSet, NUM_CLASSES};
use crate::lab::error::Result;
use crate::lab::params::{MethodInfo, ParamInfo, Params, int};
use crate::lab::rng::LabRng;

/// The random stream triggers draw their patterns from.
pub(crate) type TriggerRng = LabRng;

/// Which training samples an attack poisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// None: the clean control.
    Nothing,
    /// Any sample, relabelled by the label policy (dirty label).
    AnySample,
    /// Samples of the target class only, labels kept (clean label).
    TargetClass,
    /// Every training member of a natural sub-population of one class, relabelled (semantic); the
    /// poisoning rate does not apply.
    SubPopulation,
}

/// The class an attack aims from (semantic, hidden-trigger, gradient matching): one key for all of them.
pub(crate) const SOURCE: ParamInfo = int("from", 0, NUM_CLASSES as i128 - 1);

/// What an attacker controls, which decides where in the run the attack acts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Controls {
    /// Poisons training data: the samples `selection` picks get the trigger and the label policy's labels.
    Data,
    /// Crafts its poisons: after selection, `Attack::craft` optimises them (with a surrogate model), so a
    /// preview without the run shows only the trigger.
    CraftedData,
    /// Runs the training: λ weighs the loss on triggered copies of each batch; the data stays clean.
    Training { lambda: f64 },
    /// Ships the architecture: a fixed trigger detector wired to the target logit.
    Architecture(BranchStrength),
}

/// One attack: its own file declares its parameters, words and behaviour; one line in `attacks!`
/// below registers it.
pub trait Attack: Params + Default + Clone {
    /// The name a student reads.
    const TITLE: &'static str;
    /// One sentence on the attack, with its paper.
    const EXPLAIN: &'static str;
    /// Every parameter the attack may use, whichever trigger it has now (CLI flags, docs).
    fn every_param() -> Vec<&'static ParamInfo>;
    /// The trigger that poisons; `None` poisons nothing.
    fn trigger_spec(&self) -> Option<TriggerSpec>;
    fn selection(&self) -> Selection;
    /// What the attacker controls; the run matches it once, where the model is trained.
    fn controls(&self) -> Controls {
        Controls::Data
    }
    /// For a semantic attack: the members of `set` of its sub-population, with the cut-off taken from
    /// `train`. `None` for an attack with a trigger.
    fn members(&self, _train: &ImageSet, _set: &ImageSet) -> Option<std::result::Result<Vec<usize>, String>> {
        None
    }
    /// The one class whose inputs the attack aims to flip (ASR counts only those); `None`: every class
    /// but the target.
    fn source_class(&self) -> Option<u8> {
        None
    }
    /// Changes other training samples than the poisoned ones, labels kept (WaNet's noise mode), and
    /// returns their sorted indices.
    fn alter_others(
        &self,
        _set: &mut ImageSet,
        _poisoned: &[usize],
        _trigger: &Trigger,
        _rng: &mut LabRng,
    ) -> Vec<usize> {
        Vec::new()
    }
    /// Optimises the poisoned samples after selection (label-consistent, gradient matching): may
    /// train a surrogate model and replace the images `cx.poisoned` holds. Nothing for the others.
    /// The trigger the attacker adds at test time when it differs from the poisons' (SIG's stronger
    /// test-time signal); `None`: the same trigger.
    fn test_trigger(&self, _trigger: &Trigger) -> Option<Trigger> {
        None
    }
    #[allow(async_fn_in_trait)] // Called only through `AttackMethod`, never as a trait object.
    async fn craft(&self, _cx: &mut Craft<'_>) -> Result<()> {
        Ok(())
    }
}

/// The registry: `"link_name" => Variant(Type)`, in the order menus list them. The link name is
/// also the JSON `kind`.
macro_rules! attacks {
    ($($name:literal => $variant:ident($ty:ty)),+ $(,)?) => {
        /// The attack method and its own parameters.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum AttackMethod {
            $(#[serde(rename = $name)] $variant($ty),)+
        }

        impl AttackMethod {
            /// Link names, in registry order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            /// Every attack's words and parameters.
            pub const REGISTRY: &'static [MethodInfo] = &[$(MethodInfo {
                name: $name,
                title: <$ty as Attack>::TITLE,
                explain: <$ty as Attack>::EXPLAIN,
                params: <$ty as Attack>::every_param,
            }),+];

            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)+ }
            }
            /// The method named `name` with default parameters.
            pub fn default_named(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant(<$ty>::default())),)+ _ => None }
            }
            fn inner(&self) -> &dyn Params {
                match self { $(Self::$variant(a) => a,)+ }
            }
            fn inner_mut(&mut self) -> &mut dyn Params {
                match self { $(Self::$variant(a) => a,)+ }
            }
            fn poisoning_trigger(&self) -> Option<TriggerSpec> {
                match self { $(Self::$variant(a) => a.trigger_spec(),)+ }
            }
            pub fn selection(&self) -> Selection {
                match self { $(Self::$variant(a) => a.selection(),)+ }
            }
            /// What the attacker controls.
            pub fn controls(&self) -> Controls {
                match self { $(Self::$variant(a) => a.controls(),)+ }
            }
            pub fn members(&self, train: &ImageSet, set: &ImageSet) -> Option<std::result::Result<Vec<usize>, String>> {
                match self { $(Self::$variant(a) => a.members(train, set),)+ }
            }
            pub fn source_class(&self) -> Option<u8> {
                match self { $(Self::$variant(a) => a.source_class(),)+ }
            }
            fn alter_others(&self, set: &mut ImageSet, poisoned: &[usize], trigger: &Trigger, rng: &mut LabRng) -> Vec<usize> {
                match self { $(Self::$variant(a) => a.alter_others(set, poisoned, trigger, rng),)+ }
            }
            pub fn test_trigger(&self, trigger: &Trigger) -> Option<Trigger> {
                match self { $(Self::$variant(a) => a.test_trigger(trigger),)+ }
            }
            pub async fn craft(&self, cx: &mut Craft<'_>) -> Result<()> {
                match self { $(Self::$variant(a) => a.craft(cx).await,)+ }
            }
        }
    };
}

attacks! {
    "badnets" => Badnets(Badnets),
    "blended" => Blended(Blended),
    "clean_label" => CleanLabel(CleanLabel),
    "label_consistent" => LabelConsistent(LabelConsistent),
    "sig" => Sig(Sig),
    "wanet" => Wanet(Wanet),
    "semantic" => Semantic(Semantic),
    "hidden_trigger" => HiddenTrigger(HiddenTrigger),
    "gradient_matching" => GradientMatching(GradientMatching),
    "malicious_loss" => MaliciousLoss(MaliciousLoss),
    "arch_backdoor" => ArchBackdoor(ArchBackdoor),
    "none" => None(NoAttack),
}

impl AttackMethod {
    /// λ for an attacker who runs the training; `None` otherwise.
    pub fn loss_weight(&self) -> Option<f64> {
        match self.controls() {
            Controls::Training { lambda } => Some(lambda),
            _ => None,
        }
    }

    /// The trigger detector an attacker who ships the architecture wires in; `None` otherwise.
    pub fn branch(&self) -> Option<BranchStrength> {
        match self.controls() {
            Controls::Architecture(strength) => Some(strength),
            _ => None,
        }
    }

    /// Does the attack optimise its poisons (so a preview without the run shows only the trigger)?
    pub fn crafts(&self) -> bool {
        self.controls() == Controls::CraftedData
    }
}

impl Default for AttackMethod {
    fn default() -> Self {
        Self::Badnets(Badnets::default())
    }
}

impl AttackMethod {
    /// The trigger used to poison (and, for no attack, to measure ASR: the default BadNets patch).
    pub fn trigger_spec(&self) -> TriggerSpec {
        self.poisoning_trigger().unwrap_or_else(|| TriggerSpec::Patch(PatchTrigger::default()))
    }
    /// An attacker who trains (loss) or ships the architecture (branch) poisons no data.
    pub fn poisons_data(&self) -> bool {
        matches!(self.controls(), Controls::Data | Controls::CraftedData)
    }
    /// This attack's registry entry.
    pub fn info(&self) -> &'static MethodInfo {
        let name = self.name();
        Self::REGISTRY.iter().find(|m| m.name == name).expect("every attack is registered")
    }
}

impl Params for AttackMethod {
    fn params(&self) -> Vec<&'static ParamInfo> {
        self.inner().params()
    }
    fn get(&self, key: &str) -> Option<String> {
        self.inner().get(key)
    }
    /// A key of another attack says which attacks it belongs to.
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        if let Some(done) = self.inner_mut().set(key, value) {
            return Some(done);
        }
        let owners: Vec<&str> =
            Self::REGISTRY.iter().filter(|m| (m.params)().iter().any(|p| p.key == key)).map(|m| m.name).collect();
        (!owners.is_empty()).then(|| {
            let owners = match owners.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => owners.join(""),
            };
            Err(format!("link key '{key}' applies only to attack={owners} (not to attack={})", self.name()))
        })
    }
    fn validate(&self) -> std::result::Result<(), String> {
        self.inner().validate()
    }
}

impl AttackMethod {
    /// The link key that chooses the attack (grids make it an axis).
    pub const KEY: &'static str = "attack";
}
