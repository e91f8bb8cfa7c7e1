#![no_main]
//! PNG decoding (what the folder loader and the single-image commands read).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = deephide::image_io::decode_png(data, "fuzz.png");
});
