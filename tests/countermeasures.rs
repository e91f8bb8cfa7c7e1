//! Countermeasures: registry, the defining property of every transform, JPEG as a real codec (checked
//! against an independent decoder), determinism from the seed, and the speed of dataset-level transforms.


use deephide::countermeasures::jpeg::{self, Jpeg};
use deephide::countermeasures::*;
use deephide::data::Dataset;
use deephide::{Rng, Tensor};

// ------------------------------------------------------------------------------------------ helpers

fn dataset(images: Vec<u8>, n: usize, c: usize, h: usize, w: usize) -> Dataset {
    let labels = (0..n).map(|i| i % 10).collect();
    Dataset::new("test", images, labels, (c, h, w), 10).unwrap()
}

fn random_dataset(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let images = (0..n * c * h * w).map(|_| rng.below(256) as u8).collect();
    dataset(images, n, c, h, w)
}

/// A smooth RGB or gray test picture (low-frequency sinusoids and a gradient).
fn smooth_image(c: usize, h: usize, w: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f64, y as f64);
                let val = 128.0
                    + 70.0 * ((xf / 9.0 + ch as f64).sin() * (yf / 11.0).cos())
                    + 40.0 * ((xf + yf) / (w + h) as f64 - 0.5);
                v.push(val.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    v
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() }
}

fn dataset_transform(name: &str) -> Box<dyn DatasetTransform> {
    match by_name(name).unwrap() {
        Countermeasure::Dataset(t) => t,
        other => panic!("{name}: expected a dataset transform, got {other:?}"),
    }
}

fn batch_augment(name: &str) -> Box<dyn BatchAugment> {
    match by_name(name).unwrap() {
        Countermeasure::Batch(b) => b,
        other => panic!("{name}: expected a batch augmentation, got {other:?}"),
    }
}

fn apply(name: &str, ds: &Dataset) -> Dataset {
    dataset_transform(name).apply(ds, &mut Rng::new(0)).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}

const DATASET_NAMES: [&str; 9] = [
    "gaussian-blur",
    "median-filter",
    "grayscale",
    "jpeg10",
    "jpeg50",
    "bit-depth-2",
    "down-up",
    "wavelet-lowpass",
    "none",
];
const BATCH_NAMES: [&str; 6] = ["cutout", "cutmix", "mixup", "autoaugment", "gaussian-noise", "ueraser"];

// ------------------------------------------------------------------------------------------ registry

#[test]
fn every_name_resolves_to_the_right_kind() {
    assert_eq!(ALL.len(), 18);
    assert_eq!(
        ALL,
        &[
            "none",
            "cutout",
            "cutmix",
            "mixup",
            "autoaugment",
            "gaussian-blur",
            "median-filter",
            "gaussian-noise",
            "grayscale",
            "jpeg10",
            "jpeg50",
            "bit-depth-2",
            "down-up",
            "wavelet-lowpass",
            "ueraser",
            "adv-pgd-4",
            "adv-pgd-8",
            "orthogonal-projection"
        ]
    );
    for &name in ALL {
        let cm = by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(describe(name).is_some(), "{name} has no description");
        match (&cm, name) {
            (Countermeasure::None, "none") => {}
            (Countermeasure::Dataset(t), _) => assert_eq!(t.name(), name),
            (Countermeasure::Batch(b), _) => assert_eq!(b.name(), name),
            (
                Countermeasure::Training(TrainingCountermeasure::AdversarialPgd { eps, step, steps }),
                "adv-pgd-4" | "adv-pgd-8",
            ) => {
                let want = if name == "adv-pgd-4" { 4.0 } else { 8.0 };
                assert!((eps - want / 255.0).abs() < 1e-12);
                assert!((step - 2.0 / 255.0).abs() < 1e-12);
                assert_eq!(*steps, 10);
            }
            (Countermeasure::Training(TrainingCountermeasure::OrthogonalProjection), "orthogonal-projection") => {}
            (cm, _) => panic!("{name} resolved to {cm:?}"),
        }
    }
    for name in DATASET_NAMES.iter().filter(|n| **n != "none") {
        dataset_transform(name);
    }
    for name in BATCH_NAMES {
        batch_augment(name);
    }
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let e = by_name("jpeg-11").unwrap_err().to_string();
    assert!(e.contains("jpeg-11"), "{e}");
    for &name in ALL {
        assert!(e.contains(name), "{e} does not list {name}");
    }
    assert_eq!(parse_list("all").unwrap(), ALL.to_vec());
    assert_eq!(parse_list("jpeg10, cutout,jpeg10").unwrap(), vec!["jpeg10", "cutout"]);
    assert!(parse_list("jpeg10,blurr").unwrap_err().to_string().contains("wavelet-lowpass"));
    assert!(parse_list(" ").is_err());
}

// ------------------------------------------------------------------------------------------ dataset transforms

fn high_freq_energy(img: &[u8], h: usize, w: usize) -> f64 {
    let mut e = 0.0;
    for y in 0..h {
        for x in 0..w - 1 {
            e += (img[y * w + x + 1] as f64 - img[y * w + x] as f64).powi(2);
        }
    }
    for y in 0..h - 1 {
        for x in 0..w {
            e += (img[(y + 1) * w + x] as f64 - img[y * w + x] as f64).powi(2);
        }
    }
    e
}

fn mean(v: &[u8]) -> f64 {
    v.iter().map(|&b| b as f64).sum::<f64>() / v.len() as f64
}

#[test]
fn blur_removes_high_frequencies_and_keeps_the_mean() {
    let ds = random_dataset(4, 1, 28, 28, 1);
    let out = apply("gaussian-blur", &ds);
    for i in 0..ds.len() {
        let (a, b) = (ds.image(i), out.image(i));
        let (ea, eb) = (high_freq_energy(a, 28, 28), high_freq_energy(b, 28, 28));
        assert!(eb < 0.25 * ea, "energy {ea} -> {eb}");
        assert!((mean(a) - mean(b)).abs() < 1.0, "mean {} -> {}", mean(a), mean(b));
    }
    // a constant image is unchanged, borders included
    let flat = dataset(vec![77; 2 * 3 * 8 * 8], 2, 3, 8, 8);
    assert!(apply("gaussian-blur", &flat).images == flat.images);
    // the kernel: 3 taps, sigma 1
    let k = GaussianBlur::default().weights();
    assert_eq!(k.len(), 3);
    assert!((k[1] - 0.4519).abs() < 1e-3 && (k[0] - 0.2741).abs() < 1e-3);
}

#[test]
fn median_removes_salt_and_pepper() {
    let (h, w) = (28, 28);
    let mut img = vec![120u8; h * w];
    let mut rng = Rng::new(2);
    // isolated impulses: at most one per 3x3 neighbourhood
    for y in (1..h).step_by(3) {
        for x in (1..w).step_by(3) {
            if rng.below(2) == 0 {
                img[y * w + x] = if rng.below(2) == 0 { 0 } else { 255 };
            }
        }
    }
    assert!(img.iter().filter(|&&v| v != 120).count() > 20);
    let out = apply("median-filter", &dataset(img, 1, 1, h, w));
    assert!(out.images.iter().all(|&v| v == 120));
    // edges survive a median (a step stays a step)
    let step: Vec<u8> = (0..h * w).map(|i| if i % w < 14 { 10 } else { 200 }).collect();
    assert!(apply("median-filter", &dataset(step.clone(), 1, 1, h, w)).images == step);
}

#[test]
fn grayscale_gives_equal_channels() {
    let ds = random_dataset(3, 3, 16, 16, 3);
    let out = apply("grayscale", &ds);
    assert_eq!((out.channels, out.height, out.width), (3, 16, 16));
    let plane = 256;
    for i in 0..3 {
        let (a, b) = (ds.image(i), out.image(i));
        for p in 0..plane {
            assert_eq!(b[p], b[plane + p]);
            assert_eq!(b[p], b[2 * plane + p]);
            let y = 0.299 * a[p] as f64 + 0.587 * a[plane + p] as f64 + 0.114 * a[2 * plane + p] as f64;
            assert!((b[p] as f64 - y).abs() <= 0.51, "{} vs {y}", b[p]);
        }
    }
    let gray = random_dataset(2, 1, 8, 8, 4);
    assert!(apply("grayscale", &gray).images == gray.images);
}

#[test]
fn bit_depth_leaves_exactly_four_levels() {
    let images: Vec<u8> = (0..=255u8).cycle().take(4 * 256).collect();
    let ds = dataset(images, 4, 1, 16, 16);
    let out = apply("bit-depth-2", &ds);
    let mut levels: Vec<u8> = out.images.clone();
    levels.sort();
    levels.dedup();
    assert_eq!(levels, vec![0, 64, 128, 191]);
    // floor(4x)/4: 63/255 = 0.247 -> 0, 64/255 = 0.251 -> 0.25, 255 -> 0.75 (top level clamped)
    for (v, want) in [(0u8, 0u8), (63, 0), (64, 64), (127, 64), (128, 128), (191, 128), (192, 191), (255, 191)] {
        assert_eq!(out.images[v as usize], want, "value {v}");
    }
}

#[test]
fn down_up_keeps_constants_and_smooths() {
    let flat = dataset(vec![93; 2 * 28 * 28], 2, 1, 28, 28);
    assert!(apply("down-up", &flat).images == flat.images);
    let odd = dataset(vec![200; 3 * 15 * 9], 1, 3, 15, 9);
    assert!(apply("down-up", &odd).images == odd.images);
    let ds = random_dataset(2, 1, 28, 28, 5);
    let out = apply("down-up", &ds);
    assert!(high_freq_energy(out.image(0), 28, 28) < 0.3 * high_freq_energy(ds.image(0), 28, 28));
}

#[test]
fn wavelet_lowpass_zeroes_the_detail_bands_exactly() {
    for (c, h, w) in [(1, 28, 28), (3, 32, 32)] {
        let ds = random_dataset(3, c, h, w, 6);
        let out = apply("wavelet-lowpass", &ds);
        let idx: Vec<usize> = (0..3).collect();
        let bands = out.batch(&idx).unwrap().haar_dwt().unwrap();
        let orig = ds.batch(&idx).unwrap().haar_dwt().unwrap();
        let (b, o) = (values(&bands), values(&orig));
        let plane = (h / 2) * (w / 2);
        for s in 0..3 {
            let base = s * 4 * c * plane;
            // HL, LH, HH: exactly zero
            assert!(b[base + c * plane..base + 4 * c * plane].iter().all(|&v| v == 0.0));
            // LL kept up to u8 rounding (LL = 2 * block mean)
            for k in 0..c * plane {
                assert!((b[base + k] - o[base + k]).abs() <= 1.0 / 255.0 + 1e-6);
            }
        }
    }
    // odd sizes are padded and cropped
    let odd = random_dataset(2, 1, 7, 5, 7);
    let out = apply("wavelet-lowpass", &odd);
    assert_eq!(out.images.len(), odd.images.len());
}

#[test]
fn dataset_transforms_keep_labels_shapes_and_are_deterministic() {
    for (c, h, w) in [(1, 28, 28), (3, 32, 32), (1, 13, 11)] {
        let ds = random_dataset(5, c, h, w, 8);
        for name in DATASET_NAMES.iter().filter(|n| **n != "none") {
            let t = dataset_transform(name);
            let a = t.apply(&ds, &mut Rng::new(1)).unwrap();
            let b = t.apply(&ds, &mut Rng::new(2)).unwrap();
            assert!(a.images == b.images, "{name} is not deterministic");
            assert!(a.labels == ds.labels, "{name} changed labels");
            assert_eq!((a.channels, a.height, a.width, a.classes), (c, h, w, ds.classes), "{name}");
            if !(*name == "grayscale" && c == 1) {
                assert!(a.images != ds.images, "{name} changed nothing");
            }
        }
    }
}

// ------------------------------------------------------------------------------------------ JPEG

#[test]
fn jpeg_byte_stream_is_valid_jfif() {
    for c in [1, 3] {
        let img = smooth_image(c, 32, 32);
        let bytes = jpeg::encode(&img, c, 32, 32, 75).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "SOI");
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9], "EOI");
        assert_eq!(&bytes[2..4], &[0xFF, 0xE0], "APP0");
        assert_eq!(&bytes[6..11], b"JFIF\0");
        // baseline SOF0 with the right size and components
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
        assert_eq!(u16::from_be_bytes([bytes[sof + 5], bytes[sof + 6]]), 32);
        assert_eq!(bytes[sof + 9] as usize, c);
        if c == 3 {
            assert_eq!(bytes[sof + 11], 0x22, "Y sampled 2x2 (4:2:0)");
            assert_eq!(bytes[sof + 14], 0x11);
            assert_eq!(bytes[sof + 17], 0x11);
        }
    }
}

#[test]
fn jpeg_quality_sets_size_and_fidelity() {
    for (c, h, w) in [(1usize, 64usize, 64usize), (3, 64, 64), (1, 28, 28), (3, 32, 32)] {
        let img = smooth_image(c, h, w);
        let mut sizes = Vec::new();
        let mut psnrs = Vec::new();
        for q in [10u8, 50, 95] {
            let bytes = jpeg::encode(&img, c, h, w, q).unwrap();
            let dec = jpeg::decode(&bytes).unwrap();
            assert_eq!((dec.channels, dec.height, dec.width), (c, h, w));
            sizes.push(bytes.len());
            psnrs.push(psnr(&img, &dec.pixels));
        }
        println!("jpeg {c}x{h}x{w}: sizes q10/q50/q95 = {sizes:?} bytes, PSNR = {psnrs:.2?} dB");
        assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
        assert!(psnrs[2] > 35.0, "q95 PSNR {:.2}", psnrs[2]);
        assert!(psnrs[0] < psnrs[1] && psnrs[1] < psnrs[2], "{psnrs:?}");
        assert!(psnrs[2] - psnrs[0] > 10.0, "q10 {:.2} dB vs q95 {:.2} dB", psnrs[0], psnrs[2]);
    }
}

/// Mean absolute jump across 8-pixel block boundaries divided by the mean jump inside blocks (columns and
/// rows of a plane).
fn blockiness(img: &[u8], h: usize, w: usize) -> f64 {
    let (mut edge, mut ne, mut inner, mut ni) = (0.0, 0.0, 0.0, 0.0);
    for y in 0..h {
        for x in 0..w - 1 {
            let d = (img[y * w + x + 1] as f64 - img[y * w + x] as f64).abs();
            if x % 8 == 7 {
                edge += d;
                ne += 1.0;
            } else {
                inner += d;
                ni += 1.0;
            }
        }
    }
    for y in 0..h - 1 {
        for x in 0..w {
            let d = (img[(y + 1) * w + x] as f64 - img[y * w + x] as f64).abs();
            if y % 8 == 7 {
                edge += d;
                ne += 1.0;
            } else {
                inner += d;
                ni += 1.0;
            }
        }
    }
    (edge / ne) / (inner / ni).max(1e-9)
}

#[test]
fn jpeg_q10_shows_block_artefacts() {
    let img = smooth_image(1, 64, 64);
    let b0 = blockiness(&img, 64, 64);
    let q10 = jpeg::decode(&jpeg::encode(&img, 1, 64, 64, 10).unwrap()).unwrap().pixels;
    let q95 = jpeg::decode(&jpeg::encode(&img, 1, 64, 64, 95).unwrap()).unwrap().pixels;
    let (b10, b95) = (blockiness(&q10, 64, 64), blockiness(&q95, 64, 64));
    println!("blockiness: original {b0:.2}, q95 {b95:.2}, q10 {b10:.2}");
    assert!(b10 > 1.5 * b0 && b10 > 1.3 * b95, "original {b0:.2}, q95 {b95:.2}, q10 {b10:.2}");
}

#[test]
fn jpeg_matches_an_independent_decoder() {
    for (c, h, w, q) in
        [(3usize, 32usize, 32usize, 10u8), (3, 37, 45, 50), (3, 64, 48, 95), (1, 28, 28, 10), (1, 33, 17, 75)]
    {
        let img = smooth_image(c, h, w);
        let mut rng = Rng::new(9);
        // add texture so that many AC coefficients (and long Huffman codes) occur
        let img: Vec<u8> = img.iter().map(|&v| (v as i32 + rng.below(41) as i32 - 20).clamp(0, 255) as u8).collect();
        let bytes = jpeg::encode(&img, c, h, w, q).unwrap();
        let ours = jpeg::decode(&bytes).unwrap();
        let mut dec = jpeg_decoder::Decoder::new(&bytes[..]);
        let theirs = dec.decode().unwrap_or_else(|e| panic!("jpeg-decoder rejects our {c}x{h}x{w} q{q} stream: {e}"));
        let info = dec.info().unwrap();
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        // theirs is interleaved HWC
        let plane = h * w;
        let mut max = 0i32;
        let mut sum = 0f64;
        for ch in 0..c {
            for p in 0..plane {
                let d = (ours.pixels[ch * plane + p] as i32 - theirs[p * c + ch] as i32).abs();
                max = max.max(d);
                sum += d as f64;
            }
        }
        let mean = sum / (c * plane) as f64;
        println!("{c}x{h}x{w} q{q}: {} bytes, ours vs jpeg-decoder: mean |diff| {mean:.3}, max {max}", bytes.len());
        assert!(mean < 1.0 && max <= 8, "mean {mean}, max {max}");
    }
}

/// Interleave planar CHW into PNM (P5 / P6) bytes and back.
fn to_pnm(img: &[u8], c: usize, h: usize, w: usize) -> Vec<u8> {
    let mut out = format!("{}\n{w} {h}\n255\n", if c == 3 { "P6" } else { "P5" }).into_bytes();
    for p in 0..h * w {
        for ch in 0..c {
            out.push(img[ch * h * w + p]);
        }
    }
    out
}

fn from_pnm(d: &[u8], c: usize) -> Vec<u8> {
    let mut i = 0;
    for _ in 0..3 {
        while d[i] != b'\n' {
            i += 1;
        }
        i += 1;
    }
    let px = &d[i..];
    let n = px.len() / c;
    let mut out = vec![0u8; px.len()];
    for p in 0..n {
        for ch in 0..c {
            out[ch * n + p] = px[p * c + ch];
        }
    }
    out
}

/// libjpeg-turbo's `cjpeg` / `djpeg` (Debian `libjpeg-turbo-progs`), when installed: our decoder must read its
/// files as `djpeg` does, and our codec must lose as much as libjpeg at the same quality (PIL uses libjpeg).
#[test]
fn jpeg_agrees_with_libjpeg_when_installed() {
    use std::process::Command;
    if Command::new("cjpeg").arg("-version").output().is_err()
        || Command::new("djpeg").arg("-version").output().is_err()
    {
        println!("skipped: cjpeg/djpeg not installed (apt-get install libjpeg-turbo-progs)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("deephide-cm-jpeg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(21);
    for (c, h, w) in [(3usize, 32usize, 32usize), (1, 28, 28), (3, 45, 37)] {
        let img: Vec<u8> =
            smooth_image(c, h, w).iter().map(|&v| (v as i32 + rng.below(61) as i32 - 30).clamp(0, 255) as u8).collect();
        let src = dir.join("in.pnm");
        std::fs::write(&src, to_pnm(&img, c, h, w)).unwrap();
        for q in [10u8, 50, 90] {
            let jpg = dir.join("lib.jpg");
            let st = Command::new("cjpeg")
                .args(["-baseline", "-quality", &q.to_string(), "-sample", "2x2", "-outfile"])
                .arg(&jpg)
                .arg(&src)
                .status()
                .unwrap();
            assert!(st.success());
            let lib_bytes = std::fs::read(&jpg).unwrap();
            let out = Command::new("djpeg").arg(&jpg).output().unwrap();
            assert!(out.status.success());
            let lib_pixels = from_pnm(&out.stdout, c);
            // our decoder on libjpeg's stream
            let ours = jpeg::decode(&lib_bytes).unwrap();
            let diffs: Vec<i32> =
                ours.pixels.iter().zip(&lib_pixels).map(|(&a, &b)| (a as i32 - b as i32).abs()).collect();
            let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
            let max = *diffs.iter().max().unwrap();
            // our encoder against libjpeg's at the same quality
            let our_bytes = jpeg::encode(&img, c, h, w, q).unwrap();
            let (p_ours, p_lib) = (psnr(&img, &jpeg::decode(&our_bytes).unwrap().pixels), psnr(&img, &lib_pixels));
            println!(
                "{c}x{h}x{w} q{q}: libjpeg {} B {p_lib:.2} dB, ours {} B {p_ours:.2} dB; our decode of libjpeg vs djpeg mean {mean:.3} max {max}",
                lib_bytes.len(),
                our_bytes.len()
            );
            assert!(mean < 0.5 && max <= 4, "decoder disagrees with djpeg: mean {mean} max {max}");
            assert!((p_ours - p_lib).abs() < 0.3, "PSNR ours {p_ours:.2} vs libjpeg {p_lib:.2}");
            let ratio = our_bytes.len() as f64 / lib_bytes.len() as f64;
            assert!((0.93..1.05).contains(&ratio), "size ours {} vs libjpeg {}", our_bytes.len(), lib_bytes.len());
        }
    }
    // decoder only: restart intervals, optimised Huffman tables, other sampling factors, separate scans;
    // progressive files are refused with an error
    let (c, h, w) = (3, 41, 35);
    let img: Vec<u8> = smooth_image(c, h, w).iter().map(|&v| v.saturating_add(rng.below(20) as u8)).collect();
    let src = dir.join("in.pnm");
    std::fs::write(&src, to_pnm(&img, c, h, w)).unwrap();
    let variants: [&[&str]; 6] = [
        &["-restart", "1"],
        &["-restart", "3B", "-sample", "1x1"],
        &["-optimize"],
        &["-sample", "2x1"],
        &["-sample", "1x2", "-optimize", "-restart", "2B"],
        &["-grayscale"],
    ];
    for opts in variants {
        let jpg = dir.join("var.jpg");
        let st = Command::new("cjpeg")
            .args(["-quality", "60"])
            .args(opts)
            .arg("-outfile")
            .arg(&jpg)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success());
        let out = Command::new("djpeg").arg(&jpg).output().unwrap();
        let ours = jpeg::decode(&std::fs::read(&jpg).unwrap()).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        let lib_pixels = from_pnm(&out.stdout, ours.channels);
        let diffs: Vec<i32> = ours.pixels.iter().zip(&lib_pixels).map(|(&a, &b)| (a as i32 - b as i32).abs()).collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        let max = *diffs.iter().max().unwrap();
        println!("cjpeg {opts:?}: our decode vs djpeg mean {mean:.3} max {max}");
        assert_eq!((ours.width, ours.height), (w, h));
        assert!(mean < 0.6 && max <= 6, "{opts:?}: mean {mean} max {max}");
    }
    let jpg = dir.join("prog.jpg");
    assert!(Command::new("cjpeg").args(["-progressive", "-outfile"]).arg(&jpg).arg(&src).status().unwrap().success());
    let e = jpeg::decode(&std::fs::read(&jpg).unwrap()).unwrap_err().to_string();
    assert!(e.contains("progressive"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jpeg_decoder_rejects_garbage_without_panicking() {
    assert!(jpeg::decode(b"").is_err());
    assert!(jpeg::decode(b"\x89PNG\r\n").is_err());
    let bytes = jpeg::encode(&smooth_image(3, 16, 16), 3, 16, 16, 50).unwrap();
    for cut in [3, 20, 100, 200, bytes.len() - 10] {
        let _ = jpeg::decode(&bytes[..cut]); // an error or a partial image, never a panic
    }
    let mut flipped = bytes.clone();
    for i in (300..flipped.len() - 2).step_by(7) {
        flipped[i] ^= 0x5A;
    }
    let _ = jpeg::decode(&flipped);
    assert!(jpeg::encode(&[0; 10], 1, 2, 5, 0).is_err());
    assert!(jpeg::encode(&[0; 10], 1, 3, 5, 50).is_err());
}

#[test]
fn jpeg_transform_quality_controls_damage() {
    let (n, c, h, w) = (4, 3, 32, 32);
    let images: Vec<u8> = (0..n).flat_map(|_| smooth_image(c, h, w)).collect();
    let ds = dataset(images, n, c, h, w);
    let q10 = apply("jpeg10", &ds);
    let q50 = apply("jpeg50", &ds);
    let (p10, p50) = (psnr(&ds.images, &q10.images), psnr(&ds.images, &q50.images));
    assert!(p10 < p50, "{p10} {p50}");
    assert_eq!(Jpeg::new(10).name(), "jpeg10");
    // the transform is exactly encode + decode
    assert!(q10.image(1) == jpeg::roundtrip(ds.image(1), c, h, w, 10).unwrap().as_slice());
}

// ------------------------------------------------------------------------------------------ batch augmentations

fn batch_of(n: usize, c: usize, h: usize, w: usize, f: impl Fn(usize, usize) -> f32) -> Tensor {
    let per = c * h * w;
    let v: Vec<f32> = (0..n * per).map(|i| f(i / per, i % per)).collect();
    Tensor::from_vec(v, &[n, c, h, w]).unwrap()
}

#[test]
fn cutout_zeroes_one_square() {
    let (n, c, h, w) = (64, 3, 32, 32);
    let x = batch_of(n, c, h, w, |_, _| 1.0);
    let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
    let (y, t) = batch_augment("cutout").apply(&x, &labels, 10, &mut Rng::new(3)).unwrap();
    assert!(matches!(t, Targets::Hard(ref l) if *l == labels));
    let v = values(&y);
    let mut full = 0;
    for i in 0..n {
        let img = &v[i * c * h * w..(i + 1) * c * h * w];
        let zeros: Vec<(usize, usize)> = (0..h * w).filter(|&p| img[p] == 0.0).map(|p| (p / w, p % w)).collect();
        let (y1, y2) = (zeros.iter().map(|z| z.0).min().unwrap(), zeros.iter().map(|z| z.0).max().unwrap() + 1);
        let (x1, x2) = (zeros.iter().map(|z| z.1).min().unwrap(), zeros.iter().map(|z| z.1).max().unwrap() + 1);
        // a solid rectangle, at most 16x16, the same in every channel
        assert_eq!(zeros.len(), (y2 - y1) * (x2 - x1));
        assert!(y2 - y1 <= 16 && x2 - x1 <= 16);
        for ch in 1..c {
            assert_eq!(&img[..h * w], &img[ch * h * w..(ch + 1) * h * w]);
        }
        if (y2 - y1, x2 - x1) == (16, 16) {
            full += 1;
        }
    }
    assert!(full > n / 5, "only {full} full 16x16 squares");
}

fn soft(t: Targets) -> Vec<f32> {
    match t {
        Targets::Soft(s) => values(&s),
        Targets::Hard(_) => panic!("expected soft targets"),
    }
}

/// Per sample: the weight on its own label and (partner label, partner weight) if mixed.
fn read_mix(row: &[f32], own: usize) -> (f32, Option<(usize, f32)>) {
    let other = row.iter().enumerate().find(|&(k, &v)| k != own && v > 0.0).map(|(k, &v)| (k, v));
    (row[own], other)
}

#[test]
fn mixup_mixes_images_and_labels_consistently() {
    let (n, k) = (16, 16);
    // image i is the constant i / n; labels are distinct so the partner can be read off the targets
    let x = batch_of(n, 1, 4, 4, |i, _| i as f32 / n as f32);
    let labels: Vec<usize> = (0..n).collect();
    let (mut mixed, mut plain) = (0, 0);
    for seed in 0..20 {
        let (y, t) = batch_augment("mixup").apply(&x, &labels, k, &mut Rng::new(seed)).unwrap();
        let (v, t) = (values(&y), soft(t));
        for i in 0..n {
            let row = &t[i * k..(i + 1) * k];
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let (own, other) = read_mix(row, i);
            let want = match other {
                Some((p, wp)) => own * i as f32 / n as f32 + wp * p as f32 / n as f32,
                None => i as f32 / n as f32,
            };
            assert!(v[i * 16..(i + 1) * 16].iter().all(|&a| (a - want).abs() < 1e-5), "seed {seed} sample {i}");
        }
        if (0..n).any(|i| t[i * k + i] < 0.999) { mixed += 1 } else { plain += 1 }
    }
    // prob 0.5 per batch
    assert!(mixed >= 4 && plain >= 4, "mixed {mixed}, plain {plain}");
}

#[test]
fn cutmix_pastes_a_box_and_weights_labels_by_area() {
    let (n, k, h, w) = (16, 16, 32, 32);
    let x = batch_of(n, 3, h, w, |i, _| i as f32 / n as f32);
    let labels: Vec<usize> = (0..n).collect();
    let mut mixed = 0;
    for seed in 0..20 {
        let (y, t) = batch_augment("cutmix").apply(&x, &labels, k, &mut Rng::new(seed)).unwrap();
        let (v, t) = (values(&y), soft(t));
        for i in 0..n {
            let row = &t[i * k..(i + 1) * k];
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let img = &v[i * 3 * h * w..(i + 1) * 3 * h * w];
            let (own, other) = read_mix(row, i);
            let from_partner = match other {
                Some((p, wp)) => {
                    let cnt = img.iter().filter(|&&a| (a - p as f32 / n as f32).abs() < 1e-6).count();
                    assert!(img.iter().all(|&a| a == i as f32 / n as f32 || a == p as f32 / n as f32));
                    assert!((cnt as f32 / img.len() as f32 - wp).abs() < 1e-5, "area {cnt} vs weight {wp}");
                    cnt
                }
                None => 0,
            };
            let kept = img.iter().filter(|&&a| a == i as f32 / n as f32).count();
            assert!((kept as f32 / img.len() as f32 - own).abs() < 1e-5 || from_partner == 0);
        }
        if (0..n).any(|i| t[i * k + i] < 0.999) {
            mixed += 1;
        }
    }
    assert!((4..=16).contains(&mixed), "mixed {mixed} of 20");
}

#[test]
fn gaussian_noise_has_the_right_std() {
    let x = batch_of(32, 3, 32, 32, |_, _| 0.5);
    let labels = vec![0; 32];
    let (y, t) = batch_augment("gaussian-noise").apply(&x, &labels, 10, &mut Rng::new(4)).unwrap();
    assert!(matches!(t, Targets::Hard(_)));
    let d: Vec<f64> = values(&y).iter().map(|&v| v as f64 - 0.5).collect();
    let m = d.iter().sum::<f64>() / d.len() as f64;
    let sd = (d.iter().map(|v| (v - m).powi(2)).sum::<f64>() / d.len() as f64).sqrt();
    assert!(m.abs() < 1e-3, "mean {m}");
    assert!((sd * 255.0 - 8.0).abs() < 0.1, "std {:.3}/255", sd * 255.0);
    // clamped
    let z = batch_of(4, 1, 8, 8, |_, _| 0.0);
    let (y, _) = batch_augment("gaussian-noise").apply(&z, &[0; 4], 10, &mut Rng::new(4)).unwrap();
    assert!(values(&y).iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn batch_augments_stay_in_range_keep_shapes_and_are_deterministic() {
    for (c, h, w) in [(3usize, 32usize, 32usize), (1, 28, 28)] {
        let n = 24;
        let mut rng = Rng::new(11);
        let x = Tensor::rand_uniform(&[n, c, h, w], 0.0, 1.0, deephide::DType::F32, &mut rng);
        let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
        for name in BATCH_NAMES {
            let aug = batch_augment(name);
            let (a, ta) = aug.apply(&x, &labels, 10, &mut Rng::new(5)).unwrap();
            let (b, _) = aug.apply(&x, &labels, 10, &mut Rng::new(5)).unwrap();
            assert_eq!(a.shape(), x.shape(), "{name}");
            let (va, vb) = (values(&a), values(&b));
            assert!(va == vb, "{name} is not deterministic for a seed");
            assert!(va.iter().all(|v| (0.0..=1.0).contains(v)), "{name} leaves [0, 1]");
            match ta {
                Targets::Hard(l) => assert_eq!(l, labels, "{name}"),
                Targets::Soft(s) => assert_eq!(s.shape(), &[n, 10], "{name}"),
            }
            // some seed changes the batch, and different seeds differ
            let outs: Vec<Vec<f32>> =
                (0..4).map(|s| values(&aug.apply(&x, &labels, 10, &mut Rng::new(100 + s)).unwrap().0)).collect();
            assert!(outs.iter().any(|o| *o != values(&x)), "{name} never changes the batch");
            assert!(outs.windows(2).any(|p| p[0] != p[1]), "{name} ignores the seed");
        }
    }
}

#[test]
fn autoaugment_and_ueraser_change_most_images() {
    let n = 64;
    let mut rng = Rng::new(12);
    let x = Tensor::rand_uniform(&[n, 3, 32, 32], 0.2, 0.8, deephide::DType::F32, &mut rng);
    let labels = vec![1; n];
    let xv = values(&x);
    for (name, min_changed) in [("autoaugment", n / 2), ("ueraser", n - 1)] {
        let (y, _) = batch_augment(name).apply(&x, &labels, 10, &mut Rng::new(0)).unwrap();
        let yv = values(&y);
        let per = 3 * 32 * 32;
        let changed = (0..n).filter(|&i| xv[i * per..(i + 1) * per] != yv[i * per..(i + 1) * per]).count();
        assert!(changed >= min_changed, "{name}: only {changed} of {n} images changed");
    }
}

#[test]
fn batch_augments_check_their_inputs() {
    let x = batch_of(2, 1, 4, 4, |_, _| 0.5);
    for name in BATCH_NAMES {
        assert!(batch_augment(name).apply(&x, &[0], 10, &mut Rng::new(0)).is_err(), "{name}: label count");
        let flat = Tensor::from_vec(vec![0.5f32; 16], &[16]).unwrap();
        assert!(batch_augment(name).apply(&flat, &[0], 10, &mut Rng::new(0)).is_err(), "{name}: rank");
    }
    assert!(batch_augment("mixup").apply(&x, &[0, 12], 10, &mut Rng::new(0)).is_err());
}
