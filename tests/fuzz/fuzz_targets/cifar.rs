#![no_main]
//! CIFAR-10 and CIFAR-100 binary records.
use deephide::data::cifar::{parse_records, Variant};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    for v in [Variant::Cifar10, Variant::Cifar100] {
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        let _ = parse_records(Path::new("fuzz.bin"), data, v, &mut images, &mut labels);
    }
});
