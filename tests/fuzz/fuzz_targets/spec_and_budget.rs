#![no_main]
//! Data SPEC strings (parsed only: a fuzzed path could name any directory) and budget strings.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(spec) = deephide::data::DataSpec::parse(&s) {
        assert_eq!(deephide::data::DataSpec::parse(&spec.to_string()).unwrap(), spec);
    }
    if let Ok(v) = deephide::poison::budget::parse_budget(&s, "--eps") {
        assert!(v.is_finite() && (0.0..=1.0).contains(&v));
    }
});
