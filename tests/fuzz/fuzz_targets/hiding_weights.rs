#![no_main]
//! Hiding-network weight files: tensors, names, shapes, metadata and values.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = std::env::temp_dir().join(format!("deephide-fuzz-w-{}.safetensors", std::process::id()));
    if std::fs::write(&p, data).is_ok() {
        let _ = deephide::hiding::weights::load(&p);
        let _ = deephide::models::load(&p);
    }
});
