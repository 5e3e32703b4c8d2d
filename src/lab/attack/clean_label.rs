//! Clean-label poisoning (Turner et al., "Label-Consistent Backdoor Attacks", 2019): the trigger goes only
//! on training samples already of the target class and labels stay unchanged, so a human audit of the
//! labels finds nothing wrong.

use super::TriggerSpec;

/// The clean-label attack's default trigger: the BadNets patch.
pub fn default_trigger() -> TriggerSpec {
    TriggerSpec::Patch(Default::default())
}
