//! The services this build knows: each one's `tessera-service` entry, which `tessera dev`
//! starts and `tessera config example` documents.

use tessera_service::dev::DevEntry;

/// Every service, in the order `tessera dev` starts them (and allots ports).
pub fn registry() -> Vec<DevEntry> {
    vec![
        DevEntry::of::<wps::Core>(),
        DevEntry::of::<wts::Core>(),
        DevEntry::of::<conductor::Core>(),
        DevEntry::of::<ogdc::Core>(),
        DevEntry::of::<uws::Core>(),
    ]
}
