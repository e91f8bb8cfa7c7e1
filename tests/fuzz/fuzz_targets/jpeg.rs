#![no_main]
//! JPEG decoding: the folder loader (jpeg-decoder behind a header check) and deephide's own decoder.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = deephide::data::folder::decode_jpeg_bytes(data, Path::new("fuzz.jpg"));
    let _ = deephide::countermeasures::jpeg::decode(data);
});
