#![no_main]
//! IDX headers and data: the parser and the data set built from an image and a label file.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz.idx");
    let _ = deephide::data::idx::parse_idx(p, data);
    let half = data.len() / 2;
    let _ = deephide::data::idx::dataset_from_idx_bytes("fuzz", (p, data[..half].to_vec()), (p, data[half..].to_vec()), 10);
});
