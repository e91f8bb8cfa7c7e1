//! Ceiling study for issue 9: how unlearnable does a training set get when every image of a class carries
//! the same fixed pattern at L-inf eps? No hiding network is involved; the pattern families are the targets a
//! hiding network can be trained to align its perturbation with, so their victim accuracy bounds what
//! alignment can buy.
//!
//!   cargo run --release --example classwise_patterns -- KIND OUT_DIR [SUBSET|full] [EPS_IN_255THS] [SEED]
//!
//! KIND: noise (uniform in [-eps, eps], the field's class-wise baseline), sign (random +-eps per pixel),
//! blocksK (random +-eps on KxK blocks), hadamardK (+-eps on KxK blocks, class k = row k+1 of a Hadamard
//! matrix: classes pairwise differ in half the blocks), semantic-linear (eps (2 s - 1), s = the class's `single` semantic
//! image: today's --w-align target), semantic-sign (eps sign(s - mean s)), classmean / nextmean
//! (eps sign(class mean image - mean image), of the same class or of class k + 1 mod K: a shortcut that a
//! clean test image of class k + 1 also triggers).
//! Writes idx:OUT_DIR (train split) for `deephide evaluate --train idx:OUT_DIR`.

use deephide::data::{self, Split};
use deephide::semantic::source::SemanticSource;
use deephide::Rng;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> deephide::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: classwise_patterns KIND OUT_DIR [SUBSET|full] [EPS_IN_255THS] [SEED]";
    let kind = args.first().ok_or_else(|| deephide::Error::msg(usage))?.clone();
    let out = args.get(1).ok_or_else(|| deephide::Error::msg(usage))?.clone();
    let subset = match args.get(2).map(String::as_str) {
        None => Some(10_000),
        Some("full") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| deephide::Error::msg(format!("bad SUBSET `{n}`")))?),
    };
    let eps = args.get(3).map_or(Ok(8.0), |s| s.parse::<f64>()).map_err(|_| deephide::Error::msg("bad EPS"))? / 255.0;
    let seed = args.get(4).map_or(Ok(0), |s| s.parse::<u64>()).map_err(|_| deephide::Error::msg("bad SEED"))?;

    let mut ds = data::load("fashion-mnist", Split::Train)?;
    if let Some(n) = subset {
        ds = data::balanced_subset(&ds, Some(n), &mut Rng::new(seed));
    }
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let d = c * h * w;
    let mut rng = Rng::new(seed ^ 0x7061_7474);
    let src = SemanticSource::parse("single", seed)?;
    // Mean image of each class and of all images (for the classmean / nextmean kinds).
    let mut class_mean = vec![vec![0.0f64; d]; ds.classes];
    let mut count = vec![0usize; ds.classes];
    for i in 0..ds.len() {
        let y = ds.labels[i];
        count[y] += 1;
        for (m, &v) in class_mean[y].iter_mut().zip(ds.image(i)) {
            *m += v as f64 / 255.0;
        }
    }
    for (m, &n) in class_mean.iter_mut().zip(&count) {
        m.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    }
    let all_mean: Vec<f64> = (0..d).map(|j| class_mean.iter().map(|m| m[j]).sum::<f64>() / ds.classes as f64).collect();
    let mut patterns: Vec<Vec<f32>> = Vec::new();
    for k in 0..ds.classes {
        let p: Vec<f64> = match kind.as_str() {
            "noise" => (0..d).map(|_| (2.0 * rng.uniform() - 1.0) * eps).collect(),
            "sign" => (0..d).map(|_| if rng.uniform() < 0.5 { -eps } else { eps }).collect(),
            "semantic-linear" | "semantic-sign" => {
                let s = src.image(k, 0, (h, w), c)?;
                let mean = s.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
                if kind == "semantic-linear" {
                    s.iter().map(|&v| eps * (2.0 * v as f64 - 1.0)).collect()
                } else {
                    s.iter().map(|&v| if (v as f64) < mean { -eps } else { eps }).collect()
                }
            }
            "classmean" | "nextmean" => {
                // eps sign(class mean - mean of all classes), of this class or of the next one: the pattern of
                // class k looks like the typical content of class k (or k + 1) on a clean test image.
                let src_class = if kind == "classmean" { k } else { (k + 1) % ds.classes };
                class_mean[src_class].iter().zip(&all_mean).map(|(&m, &a)| if m < a { -eps } else { eps }).collect()
            }
            b if b.starts_with("hadamard") => {
                // Class k takes row k + 1 of the Sylvester Hadamard matrix of the block grid's size (row 0 is
                // all ones): every two classes differ in exactly half of the KxK blocks, the largest
                // separation a +-eps block code can have.
                let kb: usize = b[8..].parse().map_err(|_| deephide::Error::msg(format!("bad block size in `{b}`")))?;
                let (bh, bw) = (h.div_ceil(kb), w.div_ceil(kb));
                let m = (c * bh * bw).next_power_of_two();
                if ds.classes + 1 > m {
                    return Err(deephide::Error::msg(format!("{} classes need more than {m} blocks", ds.classes)));
                }
                let row = |i: usize| -> f64 { if ((k + 1) & i).count_ones() % 2 == 0 { eps } else { -eps } };
                (0..d)
                    .map(|i| {
                        let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
                        row((ch * bh + y / kb) * bw + x / kb)
                    })
                    .collect()
            }
            b if b.starts_with("blocks") => {
                let kb: usize = b[6..].parse().map_err(|_| deephide::Error::msg(format!("bad block size in `{b}`")))?;
                let (bh, bw) = (h.div_ceil(kb), w.div_ceil(kb));
                let signs: Vec<f64> = (0..c * bh * bw).map(|_| if rng.uniform() < 0.5 { -eps } else { eps }).collect();
                (0..d)
                    .map(|i| {
                        let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
                        signs[(ch * bh + y / kb) * bw + x / kb]
                    })
                    .collect()
            }
            other => return Err(deephide::Error::msg(format!("unknown KIND `{other}`\n{usage}"))),
        };
        patterns.push(p.iter().map(|&v| v as f32).collect());
    }
    let mut images = Vec::with_capacity(ds.images.len());
    for i in 0..ds.len() {
        let p = &patterns[ds.labels[i]];
        images.extend(ds.image(i).iter().zip(p).map(|(&b, &u)| deephide::image_io::to_u8(b as f32 / 255.0 + u)));
    }
    let name = format!("{} [class-wise {kind} {:.1}/255]", ds.name, eps * 255.0);
    let prot = data::Dataset::new(name, images, ds.labels.clone(), (c, h, w), ds.classes)?;
    data::save(&format!("idx:{out}"), &prot, Split::Train)?;
    println!("wrote idx:{out} ({} images, {kind}, eps {:.1}/255)", prot.len(), eps * 255.0);
    Ok(())
}
