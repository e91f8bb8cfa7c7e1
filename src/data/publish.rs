//! Publishing a protected training set: what `hide` and `poison` write, in one place.
//!
//! `OUT/` holds the lossless image folder (`train/<class>/<index>.png`, read back by `folder:OUT`),
//! `labels.csv`, `classes.txt`, a binary copy in the source's family (IDX for one-channel images, CIFAR-10
//! batches for 32x32 RGB with at most 10 classes), `preview.png` and `perturbation.json`; with the APBench
//! layout also `apbench/<index>.png` + `apbench/labels.txt` (read back by `pngs:OUT/apbench`).
//!
//! The whole set is assembled in a temporary sibling directory and renamed into place, with
//! `perturbation.json` written last: a crash leaves either the previous output or none, never a set that
//! looks complete. An existing `OUT` is replaced only when it is empty or a previous output (it holds
//! `perturbation.json`); anything else is refused before any work is lost.

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::{cifar, folder, idx, Dataset, Split};
use crate::metrics::{delta_norms, psnr, ssim, Summary};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Image quality of published images against their clean originals.
#[derive(Clone, Debug, Default)]
pub struct Quality {
    pub psnr: Summary,
    pub ssim: Summary,
    pub l2: Summary,
    pub linf: Summary,
    /// Share of pixel values whose perturbation reached the L-inf budget `eps` (0 when no budget is given).
    pub at_budget: f64,
}

/// PSNR, SSIM, L2 and L-inf of every image's perturbation, and the share of values at the budget `eps`
/// (pass 0 for none). Identical images have an infinite PSNR, which the JSON writer shows as null; the
/// PSNR summary skips them so that one untouched image does not make the mean infinite.
pub fn quality(clean: &Dataset, published: &Dataset, eps: f64) -> Result<Quality> {
    if clean.len() != published.len() || clean.image_len() != published.image_len() {
        return Err(Error::msg("image quality: the published images do not match the clean data set"));
    }
    let (c, h, w) = (clean.channels, clean.height, clean.width);
    let mut q = Quality::default();
    let mut at = 0usize;
    for i in 0..clean.len() {
        let co: Vec<f32> = clean.image(i).iter().map(|&b| b as f32 / 255.0).collect();
        let pf: Vec<f32> = published.image(i).iter().map(|&b| b as f32 / 255.0).collect();
        let p = psnr(&co, &pf);
        if p.is_finite() {
            q.psnr.add(p);
        }
        q.ssim.add(ssim(&co, &pf, c, h, w));
        let (l2, linf) = delta_norms(&pf, &co);
        q.l2.add(l2);
        q.linf.add(linf);
        if eps > 0.0 {
            at += co.iter().zip(&pf).filter(|(a, b)| ((*b - *a).abs() as f64) >= eps - 0.5 / 255.0).count();
        }
    }
    q.at_budget = at as f64 / clean.images.len().max(1) as f64;
    Ok(q)
}

impl Quality {
    /// JSON members for perturbation.json.
    pub fn to_json_members(&self) -> Vec<(String, crate::eval::json::Json)> {
        use crate::eval::json::Json;
        let s = |v: &Summary| Json::obj(vec![("mean", Json::Num(v.mean())), ("min", Json::Num(v.min)), ("max", Json::Num(v.max))]);
        vec![
            ("images".into(), Json::Num(self.ssim.count as f64)),
            ("psnr_db".into(), s(&self.psnr)),
            ("ssim".into(), s(&self.ssim)),
            ("l2".into(), s(&self.l2)),
            ("linf".into(), s(&self.linf)),
            ("at_budget".into(), Json::Num(self.at_budget)),
        ]
    }

    pub fn summary(&self) -> String {
        format!(
            "{} images: PSNR {:.2} dB (min {:.2}), SSIM {:.4} (min {:.4}), L2 {:.4} (max {:.4}), L-inf max {:.2}/255, {:.1}% of values at the L-inf budget",
            self.ssim.count,
            self.psnr.mean(),
            self.psnr.min,
            self.ssim.mean(),
            self.ssim.min,
            self.l2.mean(),
            self.l2.max,
            self.linf.max * 255.0,
            100.0 * self.at_budget
        )
    }
}

/// What goes into a published set besides the images.
pub struct Publication<'a> {
    pub data: &'a Dataset,
    /// The content of perturbation.json (written last: it marks the set complete).
    pub perturbation_json: String,
    /// Images of preview.png, in rows of `preview_cols`.
    pub preview: Option<(&'a Tensor, usize)>,
    /// Also write `apbench/<index>.png` and `apbench/labels.txt`.
    pub apbench: bool,
}

/// Refuse an `--out` that cannot become a published set, before any long work starts: a path that exists
/// and is not a directory, a non-empty directory that is not a previous output, or a parent that cannot
/// be written.
pub fn check_output_dir(out: &Path) -> Result<()> {
    if out.as_os_str().is_empty() {
        return Err(Error::msg("--out is empty"));
    }
    match fs::symlink_metadata(out) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::msg(format!("--out {} exists and is not a directory; a data set is written as a directory", out.display())));
        }
        Ok(_) => {
            let empty = fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_none();
            if !empty && !out.join("perturbation.json").is_file() {
                return Err(Error::msg(format!(
                    "--out {} is a non-empty directory that is not a deephide output (no perturbation.json); choose a new directory",
                    out.display()
                )));
            }
        }
        Err(_) => {}
    }
    let parent = parent_of(out);
    if !parent.is_dir() {
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    }
    // A probe file proves the parent is writable (the set is assembled there).
    let probe = parent.join(format!(".deephide-write-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| Error::msg(format!("cannot write next to --out {}: {e}", out.display())))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// An exclusive claim on an output path for the length of a run: a second run writing the same `--out`
/// is refused ("in use") instead of silently racing the first. The claim is a sibling file
/// `.NAME.lock` holding the owner's process id; one left by a killed process is taken over.
pub struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    pub fn acquire(out: &Path) -> Result<OutputLock> {
        let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
        let path = parent_of(out).join(format!(".{name}.lock"));
        for _ in 0..3 {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(std::process::id().to_string().as_bytes()).map_err(|e| Error::io(&path, e))?;
                    return Ok(OutputLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    match owner {
                        Some(pid) if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() => {
                            return Err(Error::msg(format!(
                                "--out {} is in use by another deephide run (process {pid}, lock {}); wait for it or choose another --out",
                                out.display(),
                                path.display()
                            )));
                        }
                        // A stale claim (its process is gone) or an unreadable one: take it over.
                        _ => {
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::msg(format!("cannot claim --out {} (lock {})", out.display(), path.display())))
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Refuse a single-file `--out` that is not a regular file (a device node such as /dev/full, a directory,
/// a socket): writing it would replace or misuse it. Its directory must exist.
pub fn check_output_file(out: &Path) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(out) {
        if !m.is_file() {
            return Err(Error::msg(format!("--out {} exists and is not a regular file; give a new file name", out.display())));
        }
    }
    let parent = parent_of(out);
    if !parent.is_dir() {
        return Err(Error::msg(format!("--out {}: the directory {} does not exist", out.display(), parent.display())));
    }
    Ok(())
}

fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn tmp_sibling(out: &Path, tag: &str) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    parent_of(out).join(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Leftovers of an earlier run into `out` that was killed (`.OUT.tmp-PID`, `.OUT.old-PID` of a process that
/// no longer runs): removed, so reruns do not pile them up.
pub fn remove_stale_leftovers(out: &Path) {
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let Ok(entries) = fs::read_dir(parent_of(out)) else { return };
    for e in entries.flatten() {
        let f = e.file_name().to_string_lossy().to_string();
        for tag in ["tmp", "old"] {
            if let Some(pid) = f.strip_prefix(&format!(".{name}.{tag}-")).and_then(|p| p.parse::<u32>().ok()) {
                if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// Write the published set to `out` (see the module docs).
pub fn write_set(out: &Path, p: &Publication) -> Result<()> {
    check_output_dir(out)?;
    remove_stale_leftovers(out);
    let ds = p.data;
    let tmp = tmp_sibling(out, "tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    let res = (|| -> Result<()> {
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        folder::write_dir(&tmp, ds, Split::Train)?;
        let mut labels = String::from("index,label\n");
        for (i, l) in ds.labels.iter().enumerate() {
            labels.push_str(&format!("{i},{l}\n"));
        }
        write_file(&tmp.join("labels.csv"), labels.as_bytes())?;
        let classes: String = (0..ds.classes).map(|k| format!("{}\n", folder::class_folder_name(k, ds.classes))).collect();
        write_file(&tmp.join("classes.txt"), classes.as_bytes())?;
        // IDX labels are one byte: more than 256 classes get the image folder only.
        if ds.channels == 1 && ds.classes <= 256 {
            idx::write_dir(&tmp, ds, Split::Train)?;
        } else if (ds.channels, ds.height, ds.width) == (3, 32, 32) && ds.classes <= 10 {
            // CIFAR-10 binary batches: data_batch_1..5.bin, the records split evenly.
            let bytes = cifar::encode_records(ds, cifar::Variant::Cifar10)?;
            let rec = cifar::Variant::Cifar10.record_len();
            let per = ds.len().div_ceil(5).max(1);
            for (b, chunk) in bytes.chunks(per * rec).enumerate() {
                write_file(&tmp.join(format!("data_batch_{}.bin", b + 1)), chunk)?;
            }
        }
        if p.apbench {
            write_pngs(&tmp.join("apbench"), ds)?;
        }
        if let Some((grid, cols)) = p.preview {
            crate::image_io::write_tensor_grid(tmp.join("preview.png"), grid, cols)?;
        }
        write_file(&tmp.join("perturbation.json"), p.perturbation_json.as_bytes())?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = tmp_sibling(out, "old");
    if out.exists() {
        fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
    }
    if let Err(e) = fs::rename(&tmp, out) {
        // Put the previous output back rather than lose both.
        if old.exists() {
            let _ = fs::rename(&old, out);
        }
        let _ = fs::remove_dir_all(&tmp);
        return Err(Error::io(out, e));
    }
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// APBench / Image-Shortcut-Squeezing layout: `dir/<index>.png` in the set's order (no zero padding) and
/// `dir/labels.txt`, one label per line in the same order.
pub fn write_pngs(dir: &Path, ds: &Dataset) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for i in 0..ds.len() {
        let bytes = folder::encode_png(ds.image(i), ds.channels, ds.height, ds.width)?;
        write_file(&dir.join(format!("{i}.png")), &bytes)?;
    }
    let labels: String = ds.labels.iter().map(|l| format!("{l}\n")).collect();
    write_file(&dir.join("labels.txt"), labels.as_bytes())
}

/// Read the layout of [`write_pngs`] back (`pngs:DIR`): images `0.png .. (N-1).png`, labels from
/// `labels.txt` (one per line) or `labels.csv` (`index,label`). The number of classes is the largest
/// label + 1, or the line count of `classes.txt` beside or above the folder when there is one.
pub fn read_pngs(dir: &Path) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::format(dir, "not a directory (pngs:DIR needs DIR/<index>.png and DIR/labels.txt)"));
    }
    let labels = read_labels(dir)?;
    if labels.is_empty() {
        return Err(Error::format(dir, "the labels file lists no images"));
    }
    let mut images = Vec::new();
    let mut chw = None;
    for i in 0..labels.len() {
        let path = dir.join(format!("{i}.png"));
        if !path.is_file() {
            return Err(Error::format(&path, format!("missing: the labels file lists {} images", labels.len())));
        }
        let d = folder::decode_png(&path)?;
        let this = (d.channels, d.height, d.width);
        match chw {
            None => chw = Some(this),
            Some(first) if first != this => {
                return Err(Error::format(&path, format!("image is {}x{}x{} but 0.png is {}x{}x{}", this.0, this.1, this.2, first.0, first.1, first.2)));
            }
            _ => {}
        }
        images.extend_from_slice(&d.chw);
    }
    let max_label = *labels.iter().max().expect("non-empty");
    let declared = [dir.join("classes.txt"), parent_of(dir).join("classes.txt")]
        .iter()
        .find(|p| p.is_file())
        .map(|p| fs::read_to_string(p).map_err(|e| Error::io(p, e)).map(|s| s.lines().filter(|l| !l.trim().is_empty()).count()))
        .transpose()?;
    let classes = declared.unwrap_or(0).max(max_label + 1);
    Dataset::new(format!("pngs:{}", dir.display()), images, labels, chw.expect("non-empty"), classes)
}

fn read_labels(dir: &Path) -> Result<Vec<usize>> {
    let txt = dir.join("labels.txt");
    let csv = dir.join("labels.csv");
    let (path, is_csv) = if txt.is_file() {
        (txt, false)
    } else if csv.is_file() {
        (csv, true)
    } else {
        return Err(Error::format(dir, "has no labels.txt (one label per line) or labels.csv (index,label)"));
    };
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (is_csv && n == 0 && line.starts_with("index")) {
            continue;
        }
        let field = if is_csv {
            let (i, l) = line.split_once(',').ok_or_else(|| Error::format(&path, format!("line {}: expected `index,label`", n + 1)))?;
            if i.trim().parse::<usize>().ok() != Some(out.len()) {
                return Err(Error::format(&path, format!("line {}: index `{}` out of order (expected {})", n + 1, i.trim(), out.len())));
            }
            l
        } else {
            line
        };
        let l: usize = field.trim().parse().map_err(|_| Error::format(&path, format!("line {}: `{}` is not a label", n + 1, field.trim())))?;
        if l > 100_000 {
            return Err(Error::format(&path, format!("line {}: label {l} is implausibly large", n + 1)));
        }
        out.push(l);
    }
    Ok(out)
}
