#![no_main]
//! Weights metadata values (hiding network and classifier configurations).
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

const KEYS: [&str; 11] = ["channels", "blocks", "growth", "clamp", "slope", "deephide.model", "in_channels", "image_height", "image_width", "classes", "width"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut m = BTreeMap::new();
    for (k, v) in KEYS.iter().zip(text.split('\n')) {
        m.insert(k.to_string(), v.to_string());
    }
    let _ = deephide::hiding::HidingConfig::from_metadata(&m, &deephide::hiding::HidingConfig::default());
    let _ = deephide::models::ModelConfig::from_metadata(std::path::Path::new("fuzz"), &m);
});
