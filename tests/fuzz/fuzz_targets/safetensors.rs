#![no_main]
//! Safetensors header and data, through a file as the commands read it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = std::env::temp_dir().join(format!("deephide-fuzz-st-{}.safetensors", std::process::id()));
    if std::fs::write(&p, data).is_ok() {
        let _ = deephide::safetensors_io::load(&p);
    }
});
