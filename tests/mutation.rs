//! Deterministic mutation testing of every parser of untrusted bytes: safetensors (header and data),
//! hiding-network and classifier weights (metadata), IDX, CIFAR binaries, PNG, JPEG, data SPECs and budget
//! strings. Each parser gets at least 10,000 inputs made by mutating valid seeds with a fixed RNG; every
//! one must give `Ok` with sane sizes or an `Err`: never a panic, and never an allocation above
//! `ALLOC_LIMIT` (a counting global allocator refuses larger requests, which would abort the test).
//! The coverage-guided counterparts (cargo fuzz) are in `tests/fuzz/`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use deephide::data::{cifar, folder, idx, DataSpec, Dataset};
use deephide::poison::budget::parse_budget;
use deephide::safetensors_io::{self, SaveDType};
use deephide::{Rng, Tensor};

/// The largest single allocation a parser may make for these small inputs.
const ALLOC_LIMIT: usize = 256 << 20;
const CASES: usize = 10_000;

struct Limited;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        if l.size() > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        if new > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Limited = Limited;

/// One mutated copy of `seed`: 1-6 edits of the kinds that break parsers (bit flips, boundary bytes,
/// large length fields, insertions, deletions, truncation, duplicated chunks).
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let n = v.len().max(1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0xFF, 0x7F, 0x80, 1, 0xFE][rng.below(6)];
            }
            2 if v.len() >= 4 => {
                // A length or size field set to something huge or odd.
                let i = rng.below(v.len() - 3);
                let x: u32 = [u32::MAX, 0x7FFF_FFFF, 0x0100_0000, 65000, 0][rng.below(5)];
                let b = if rng.below(2) == 0 { x.to_be_bytes() } else { x.to_le_bytes() };
                v[i..i + 4].copy_from_slice(&b);
            }
            3 => {
                let i = rng.below(n);
                v.insert(i.min(v.len()), (rng.next_u64() & 0xFF) as u8);
            }
            4 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            5 => {
                let keep = rng.below(n + 1);
                v.truncate(keep);
            }
            6 if v.len() >= 2 => {
                let a = rng.below(v.len());
                let b = (a + 1 + rng.below(64)).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len());
                v.splice(at..at, chunk);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = (rng.next_u64() & 0xFF) as u8;
            }
            _ => v.push(0),
        }
    }
    v
}

/// Feed `CASES` mutations of the seeds to `parse`, which returns Ok(size) or Err. Panics are counted and
/// reported with an input that caused one.
fn run(name: &str, seeds: &[Vec<u8>], mut parse: impl FnMut(&[u8]) -> Result<usize, String>) {
    let mut rng = Rng::new(0x6675_7a7a ^ name.len() as u64);
    let (mut ok, mut err) = (0, 0);
    let mut panics = Vec::new();
    for case in 0..CASES {
        let input = mutate(&seeds[case % seeds.len()], &mut rng);
        match catch_unwind(AssertUnwindSafe(|| parse(&input))) {
            Ok(Ok(size)) => {
                assert!(size <= ALLOC_LIMIT, "{name}: case {case} parsed to an implausible size {size}");
                ok += 1;
            }
            Ok(Err(_)) => err += 1,
            Err(_) => panics.push(case),
        }
    }
    eprintln!("{name}: {CASES} mutated inputs: {ok} parsed, {err} refused, {} panicked; largest allocation {} bytes", panics.len(), LARGEST.load(Ordering::Relaxed));
    assert!(panics.is_empty(), "{name}: {} of {CASES} inputs panicked (first case {})", panics.len(), panics[0]);
    assert!(err > 0, "{name}: no mutated input was refused: the mutations do not reach the parser");
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("deephide-mut-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn idx_files() {
    quiet_panics();
    let ds = Dataset::new("s", (0..5 * 49).map(|i| i as u8).collect(), vec![0, 1, 2, 1, 0], (1, 7, 7), 3).unwrap();
    let images = idx::encode_idx(&[5, 7, 7], &ds.images).unwrap();
    let labels = idx::encode_idx(&[5], &[0, 1, 2, 1, 0]).unwrap();
    let p = Path::new("mutated.idx");
    run("idx", &[images.clone(), labels.clone()], |b| idx::parse_idx(p, b).map(|a| a.data.len()).map_err(|e| e.to_string()));
    run("idx dataset", &[images.clone()], |b| {
        idx::dataset_from_idx_bytes("m", (p, b.to_vec()), (p, labels.clone()), 10).map(|d| d.images.len()).map_err(|e| e.to_string())
    });
}

#[test]
fn cifar_records() {
    quiet_panics();
    let mut rng = Rng::new(2);
    let mut seed = Vec::new();
    for _ in 0..3 {
        seed.push(rng.below(10) as u8);
        seed.extend((0..3072).map(|_| (rng.next_u64() & 0xFF) as u8));
    }
    let mut seed100 = Vec::new();
    for _ in 0..2 {
        seed100.extend([rng.below(20) as u8, rng.below(100) as u8]);
        seed100.extend((0..3072).map(|_| (rng.next_u64() & 0xFF) as u8));
    }
    let p = Path::new("mutated.bin");
    run("cifar10", &[seed], |b| {
        let (mut im, mut lb) = (Vec::new(), Vec::new());
        cifar::parse_records(p, b, cifar::Variant::Cifar10, &mut im, &mut lb).map(|_| im.len()).map_err(|e| e.to_string())
    });
    run("cifar100", &[seed100], |b| {
        let (mut im, mut lb) = (Vec::new(), Vec::new());
        cifar::parse_records(p, b, cifar::Variant::Cifar100, &mut im, &mut lb).map(|_| im.len()).map_err(|e| e.to_string())
    });
}

#[test]
fn png_and_jpeg_images() {
    quiet_panics();
    let gray = deephide::image_io::Image8::new(9, 7, 1, (0..63).map(|i| (i * 4) as u8).collect()).unwrap();
    let rgb = deephide::image_io::Image8::new(6, 5, 3, (0..90).map(|i| (i * 2) as u8).collect()).unwrap();
    let pngs = vec![deephide::image_io::encode_png(&gray).unwrap(), deephide::image_io::encode_png(&rgb).unwrap()];
    let p = Path::new("mutated.png");
    run("png", &pngs, |b| deephide::image_io::decode_png(b, p).map(|i| i.data.len()).map_err(|e| e.to_string()));
    let jpgs = vec![
        deephide::countermeasures::jpeg::encode(&gray.data, 1, 7, 9, 75).unwrap(),
        deephide::countermeasures::jpeg::encode(&(0..3 * 16 * 16).map(|i| (i % 251) as u8).collect::<Vec<_>>(), 3, 16, 16, 50).unwrap(),
    ];
    let j = Path::new("mutated.jpg");
    run("jpeg", &jpgs, |b| folder::decode_jpeg_bytes(b, j).map(|d| d.chw.len()).map_err(|e| e.to_string()));
    run("jpeg (our decoder)", &jpgs, |b| deephide::countermeasures::jpeg::decode(b).map(|d| d.pixels.len()).map_err(|e| e.to_string()));
}

fn small_hiding_weights(dir: &Path) -> Vec<u8> {
    let cfg = deephide::hiding::HidingConfig { channels: 1, blocks: 1, growth: 2, ..Default::default() };
    let net = deephide::hiding::InvertibleHiding::new(cfg, 0).unwrap();
    let p = dir.join("w.safetensors");
    deephide::hiding::weights::save(&net, &p, SaveDType::F16, &BTreeMap::new()).unwrap();
    std::fs::read(&p).unwrap()
}

#[test]
fn safetensors_and_weights_files() {
    quiet_panics();
    let d = tmp("st");
    let mut meta = BTreeMap::new();
    meta.insert("k".to_string(), "v".to_string());
    let plain = d.join("plain.safetensors");
    let t = vec![("a".to_string(), Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap()), ("b.c".to_string(), Tensor::from_vec(vec![0.5; 4], &[2, 2]).unwrap())];
    safetensors_io::save(&plain, &t, &meta, SaveDType::BF16).unwrap();
    let seeds = vec![std::fs::read(&plain).unwrap()];
    let f = d.join("m.safetensors");
    run("safetensors", &seeds, |b| {
        std::fs::write(&f, b).unwrap();
        safetensors_io::load(&f).map(|w| w.tensors.values().map(|t| t.numel() * 4).sum()).map_err(|e| e.to_string())
    });
    let hw = small_hiding_weights(&d);
    run("hiding weights", &[hw], |b| {
        std::fs::write(&f, b).unwrap();
        deephide::hiding::weights::load(&f).map(|(n, _)| n.parameters().len()).map_err(|e| e.to_string())
    });
}

#[test]
fn weights_metadata_values() {
    quiet_panics();
    let keys = ["channels", "blocks", "growth", "clamp", "slope", "deephide.model", "in_channels", "image_height", "image_width", "classes", "width"];
    let seeds: Vec<Vec<u8>> = ["1", "4", "32", "2.0", "0.01", "small-cnn", "resnet18", "28"].iter().map(|s| s.as_bytes().to_vec()).collect();
    let fallback = deephide::hiding::HidingConfig::default();
    let mut rng = Rng::new(9);
    let p = Path::new("meta.safetensors");
    run("weights metadata", &seeds, |b| {
        let v = String::from_utf8_lossy(b).to_string();
        let mut m = BTreeMap::new();
        let k = keys[rng.below(keys.len())];
        m.insert(k.to_string(), v.clone());
        for (k2, dflt) in [("deephide.model", "small-cnn"), ("in_channels", "1"), ("image_height", "28"), ("image_width", "28"), ("classes", "10"), ("width", "8")] {
            m.entry(k2.to_string()).or_insert(dflt.to_string());
        }
        let h = deephide::hiding::HidingConfig::from_metadata(&m, &fallback);
        let c = deephide::models::ModelConfig::from_metadata(p, &m);
        match (h, c) {
            (Ok(h), Ok(c)) => Ok(h.blocks.min(1 << 20) + c.width.min(1 << 20)),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        }
    });
}

#[test]
fn data_specs_and_budget_strings() {
    quiet_panics();
    let specs: Vec<Vec<u8>> = ["default", "fashion-mnist", "idx:/nonexistent/a", "cifar10:/x", "cifar100:/y", "folder:/z", "pngs:/w"].iter().map(|s| s.as_bytes().to_vec()).collect();
    run("data spec", &specs, |b| {
        let s = String::from_utf8_lossy(b).to_string();
        // Parsing is what is fuzzed (a mutated path could name any directory of the machine); a parsed
        // SPEC must print back to a string that parses to the same SPEC.
        match DataSpec::parse(&s) {
            Ok(spec) => {
                assert_eq!(DataSpec::parse(&spec.to_string()).unwrap(), spec, "`{s}`");
                Ok(0)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let budgets: Vec<Vec<u8>> = ["8/255", "0.03", "0", "1", "4/255", "16/255"].iter().map(|s| s.as_bytes().to_vec()).collect();
    run("budget string", &budgets, |b| {
        let s = String::from_utf8_lossy(b).to_string();
        let v = parse_budget(&s, "--eps").map_err(|e| e.to_string())?;
        assert!((0.0..=1.0).contains(&v) && v.is_finite(), "`{s}` parsed to {v}");
        Ok(0)
    });
}

/// Found by cargo fuzz: record dimensions whose product overflows (a panic with overflow checks, a wrapped
/// size without them) are an error.
#[test]
fn idx_dimensions_that_overflow_are_refused() {
    let mut b = vec![0, 0, 8, 3];
    for d in [1u32, u32::MAX, u32::MAX] {
        b.extend(d.to_be_bytes());
    }
    b.extend([0u8; 16]);
    let e = idx::parse_idx(Path::new("overflow.idx"), &b).unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");
}
