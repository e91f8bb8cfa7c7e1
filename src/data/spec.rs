//! Data SPEC strings: where a data set comes from and in which format.
//!
//! | SPEC | meaning |
//! | --- | --- |
//! | `cifar10:DIR` | CIFAR-10 binary version (`data_batch_{1..5}.bin`, `test_batch.bin`) |
//! | `cifar100:DIR` | CIFAR-100 binary version (`train.bin`, `test.bin`), fine labels |
//! | `idx:DIR` | MNIST-style IDX files, gzip or raw (`train-images-idx3-ubyte[.gz]`, `t10k-...`) |
//! | `folder:DIR` | image folders `DIR/{train,test}/<class>/*.png|jpg` |
//! | `pngs:DIR` | `DIR/<index>.png` + `DIR/labels.txt` (APBench's poison layout; training split only) |
//! | `default` | the bundled Fashion-MNIST subset (6,000 + 1,000 images, compiled in) |
//! | `fashion-mnist` | the full Fashion-MNIST from `/usr/share/datasets/fashion-mnist` |

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data::{bundled, cifar, folder, idx, Dataset};
use crate::rng::Rng;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSpec {
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    Idx(PathBuf),
    Folder(PathBuf),
    /// `DIR/<index>.png` and `DIR/labels.txt`: how APBench and Image-Shortcut-Squeezing store poisons.
    Pngs(PathBuf),
    /// The bundled Fashion-MNIST subset.
    Default,
    /// The full Fashion-MNIST installed by Debian's `dataset-fashion-mnist`.
    FashionMnist,
}

pub const SPEC_HELP: &str = "cifar10:DIR, cifar100:DIR, idx:DIR, folder:DIR, pngs:DIR, default (bundled Fashion-MNIST subset) or fashion-mnist (full set, installed)";

impl DataSpec {
    pub fn parse(s: &str) -> Result<DataSpec> {
        match s {
            "default" | "bundled" | "fashion-mnist-subset" => return Ok(DataSpec::Default),
            "fashion-mnist" => return Ok(DataSpec::FashionMnist),
            _ => {}
        }
        let Some((kind, path)) = s.split_once(':') else {
            return Err(Error::msg(format!("unknown data SPEC `{s}`: expected {SPEC_HELP}")));
        };
        if path.is_empty() {
            return Err(Error::msg(format!("data SPEC `{s}` has no path after `{kind}:`")));
        }
        let p = PathBuf::from(path);
        match kind {
            "cifar10" => Ok(DataSpec::Cifar10(p)),
            "cifar100" => Ok(DataSpec::Cifar100(p)),
            "idx" => Ok(DataSpec::Idx(p)),
            "folder" => Ok(DataSpec::Folder(p)),
            "pngs" => Ok(DataSpec::Pngs(p)),
            _ => Err(Error::msg(format!("unknown data format `{kind}` in SPEC `{s}`: expected {SPEC_HELP}"))),
        }
    }

    pub fn load(&self, split: Split) -> Result<Dataset> {
        match self {
            DataSpec::Cifar10(p) => cifar::load(p, cifar::Variant::Cifar10, split),
            DataSpec::Cifar100(p) => cifar::load(p, cifar::Variant::Cifar100, split),
            DataSpec::Idx(p) => idx::load_dir(p, split),
            DataSpec::Folder(p) => folder::load(p, split),
            DataSpec::Pngs(p) => match split {
                Split::Train => super::publish::read_pngs(p),
                Split::Test => Err(Error::format(p, "pngs:DIR holds a training set only; give the test set as another SPEC")),
            },
            DataSpec::Default => bundled::subset(split),
            DataSpec::FashionMnist => bundled::full(split),
        }
    }

    /// Write a data set in this SPEC's format (`idx:OUT` and `folder:OUT`; the others are read-only).
    pub fn save(&self, ds: &Dataset, split: Split) -> Result<()> {
        match self {
            DataSpec::Idx(p) => idx::write_dir(p, ds, split),
            DataSpec::Folder(p) => folder::write_dir(p, ds, split),
            DataSpec::Pngs(p) if split == Split::Train => super::publish::write_pngs(p, ds),
            other => Err(Error::msg(format!("cannot write data as `{other}`: output SPECs are idx:DIR and folder:DIR"))),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |p: &Path| p.display().to_string();
        match self {
            DataSpec::Cifar10(p) => write!(f, "cifar10:{}", show(p)),
            DataSpec::Cifar100(p) => write!(f, "cifar100:{}", show(p)),
            DataSpec::Idx(p) => write!(f, "idx:{}", show(p)),
            DataSpec::Folder(p) => write!(f, "folder:{}", show(p)),
            DataSpec::Pngs(p) => write!(f, "pngs:{}", show(p)),
            DataSpec::Default => write!(f, "default"),
            DataSpec::FashionMnist => write!(f, "fashion-mnist"),
        }
    }
}

/// Load one split of a SPEC string.
pub fn load(spec: &str, split: Split) -> Result<Dataset> {
    DataSpec::parse(spec)?.load(split)
}

/// Write one split to an output SPEC string (`idx:OUT` or `folder:OUT`).
pub fn save(spec: &str, ds: &Dataset, split: Split) -> Result<()> {
    DataSpec::parse(spec)?.save(ds, split)
}

/// Indices of a class-balanced random subset of `n` items (all of them, shuffled, when `n >= len`):
/// classes take turns, each drawing from its own shuffled list, so every class gets `n / K` items (or all
/// it has) and the rest are spread over the classes with items left.
pub fn balanced_indices(labels: &[usize], classes: usize, n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut per: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        per[l.min(classes.saturating_sub(1))].push(i);
    }
    for v in per.iter_mut() {
        rng.shuffle(v);
        v.reverse(); // pop() from the end takes them in shuffled order
    }
    let n = n.min(labels.len());
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for v in per.iter_mut() {
            if out.len() == n {
                break;
            }
            if let Some(i) = v.pop() {
                out.push(i);
            }
        }
    }
    rng.shuffle(&mut out);
    out
}

/// A class-balanced random subset of `n` images (the whole set when `n` is `None` or too large).
pub fn balanced_subset(ds: &Dataset, n: Option<usize>, rng: &mut Rng) -> Dataset {
    match n {
        Some(n) if n < ds.len() => {
            let mut idx = balanced_indices(&ds.labels, ds.classes, n, rng);
            idx.sort_unstable();
            let mut s = ds.subset(&idx);
            s.name = format!("{} [{n} of {}]", ds.name, ds.len());
            s
        }
        _ => ds.clone(),
    }
}
