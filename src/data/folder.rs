//! Image folders (torchvision's ImageFolder layout): `DIR/train/<class>/*.png|jpg` and
//! `DIR/test/<class>/*` (`val/` is accepted for the test split). Without `train/` and `test/`
//! subdirectories, `DIR/<class>/*` is used for both splits.
//!
//! Classes are the subdirectory names of the training folder in sorted order; the test split must use the
//! same names. Every image must have the same size; grey images give one channel, colour images three
//! (an alpha channel is dropped; a mixture of grey and colour images is promoted to three channels).

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::data::{Dataset, Split};
use crate::{Error, Result};

/// A decoded image: channels (1 or 3), height, width, CHW bytes.
pub struct Decoded {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub chw: Vec<u8>,
}

fn is_image(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    matches!(p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// HWC interleaved -> CHW planar.
fn hwc_to_chw(hwc: &[u8], c: usize, h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; c * h * w];
    for (i, px) in hwc.chunks_exact(c).enumerate() {
        for (k, &v) in px.iter().enumerate() {
            out[k * h * w + i] = v;
        }
    }
    out
}

/// Decode a PNG file (any bit depth and colour type; alpha dropped, palettes expanded).
pub fn decode_png(path: &Path) -> Result<Decoded> {
    let img = crate::image_io::read_png(path)?;
    let (c, h, w) = (img.channels, img.height, img.width);
    Ok(Decoded { channels: c, height: h, width: w, chw: hwc_to_chw(&img.data, c, h, w) })
}

/// Decode a baseline or progressive JPEG file.
pub fn decode_jpeg(path: &Path) -> Result<Decoded> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_jpeg_bytes(&bytes, path)
}

/// Decode JPEG bytes; `path` only names the source in errors.
pub fn decode_jpeg_bytes(bytes: &[u8], path: &Path) -> Result<Decoded> {
    let mut dec = jpeg_decoder::Decoder::new(BufReader::new(bytes));
    // The header first: the declared size is checked before the decoder allocates for it.
    dec.read_info().map_err(|e| Error::format(path, format!("cannot decode JPEG: {e}")))?;
    let declared = dec.info().ok_or_else(|| Error::format(path, "JPEG has no image info"))?;
    crate::image_io::check_declared_size(path, "JPEG", declared.width as usize, declared.height as usize)?;
    dec.set_max_decoding_buffer_size(crate::image_io::max_pixels().saturating_mul(4));
    let pixels = dec.decode().map_err(|e| Error::format(path, format!("cannot decode JPEG: {e}")))?;
    let info = dec.info().ok_or_else(|| Error::format(path, "JPEG has no image info"))?;
    let (h, w) = (info.height as usize, info.width as usize);
    let (c, hwc): (usize, Vec<u8>) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1, pixels),
        jpeg_decoder::PixelFormat::L16 => (1, pixels.chunks_exact(2).map(|p| p[0]).collect()),
        jpeg_decoder::PixelFormat::RGB24 => (3, pixels),
        jpeg_decoder::PixelFormat::CMYK32 => (
            3,
            pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = p[3] as u32;
                    [(p[0] as u32 * k / 255) as u8, (p[1] as u32 * k / 255) as u8, (p[2] as u32 * k / 255) as u8]
                })
                .collect(),
        ),
    };
    if hwc.len() != c * h * w {
        return Err(Error::format(path, format!("JPEG decoded to {} bytes, expected {c}x{h}x{w}", hwc.len())));
    }
    Ok(Decoded { channels: c, height: h, width: w, chw: hwc_to_chw(&hwc, c, h, w) })
}

pub fn decode_image(path: &Path) -> Result<Decoded> {
    match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref() {
        Some("png") => decode_png(path),
        _ => decode_jpeg(path),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        v.push(e.path());
    }
    v.sort();
    Ok(v)
}

/// Class subdirectories (sorted, hidden ones skipped).
fn class_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect())
}

fn split_dir(root: &Path, split: Split) -> Result<PathBuf> {
    let train = root.join("train");
    if !train.is_dir() {
        return Ok(root.to_path_buf());
    }
    match split {
        Split::Train => Ok(train),
        Split::Test => {
            for name in ["test", "val"] {
                let d = root.join(name);
                if d.is_dir() {
                    return Ok(d);
                }
            }
            Err(Error::format(root, "has train/ but no test/ (or val/) folder for the test split"))
        }
    }
}

fn names_of(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter().map(|d| d.file_name().unwrap().to_string_lossy().to_string()).collect()
}

/// Load one split of an image folder.
pub fn load(root: &Path, split: Split) -> Result<Dataset> {
    if !root.is_dir() {
        return Err(Error::format(root, "not a directory (folder:DIR needs DIR/<class>/*.png or DIR/train/<class>/...)"));
    }
    // A deephide output is complete once perturbation.json is there (it is written last); labels.csv
    // without it is a set whose writing was interrupted.
    if root.join("labels.csv").is_file() && root.join("train").is_dir() && !root.join("perturbation.json").is_file() {
        return Err(Error::format(root, "is an incomplete deephide output (labels.csv but no perturbation.json): its writing was interrupted; run hide or poison again"));
    }
    let train_dir = split_dir(root, Split::Train)?;
    let classes = names_of(&class_dirs(&train_dir)?);
    if classes.is_empty() {
        return Err(Error::format(&train_dir, "has no class subdirectories"));
    }
    let dir = split_dir(root, split)?;
    let here = class_dirs(&dir)?;
    let mut decoded: Vec<(PathBuf, Decoded, usize)> = Vec::new();
    for cdir in &here {
        let cname = cdir.file_name().unwrap().to_string_lossy().to_string();
        let Some(label) = classes.iter().position(|c| *c == cname) else {
            return Err(Error::format(cdir, format!("class `{cname}` is not a class of the training folder {}", train_dir.display())));
        };
        for f in sorted_entries(cdir)?.into_iter().filter(|p| p.is_file() && is_image(p)) {
            let d = decode_image(&f)?;
            decoded.push((f, d, label));
        }
    }
    if decoded.is_empty() {
        return Err(Error::format(&dir, "holds no .png/.jpg/.jpeg images in its class folders"));
    }
    let (first, d0, _) = &decoded[0];
    let (h, w) = (d0.height, d0.width);
    if let Some((p, d, _)) = decoded.iter().find(|(_, d, _)| (d.height, d.width) != (h, w)) {
        return Err(Error::format(
            p,
            format!("image is {}x{} but {} is {h}x{w}; every image must have the same size", d.width, d.height, first.display()),
        ));
    }
    let c = decoded.iter().map(|(_, d, _)| d.channels).max().unwrap();
    let mut images = Vec::with_capacity(decoded.len() * c * h * w);
    let mut labels = Vec::with_capacity(decoded.len());
    for (_, d, l) in decoded {
        if d.channels == c {
            images.extend_from_slice(&d.chw);
        } else {
            for _ in 0..c {
                images.extend_from_slice(&d.chw);
            }
        }
        labels.push(l);
    }
    Dataset::new(format!("folder:{} ({})", root.display(), split.name()), images, labels, (c, h, w), classes.len())
}

/// Encode one CHW image (1 or 3 channels) as PNG bytes.
pub fn encode_png(chw: &[u8], c: usize, h: usize, w: usize) -> Result<Vec<u8>> {
    if chw.len() != c * h * w {
        return Err(Error::msg(format!("{} bytes do not fill a {c}x{h}x{w} image", chw.len())));
    }
    let mut hwc = vec![0u8; c * h * w];
    for k in 0..c {
        for i in 0..h * w {
            hwc[i * c + k] = chw[k * h * w + i];
        }
    }
    crate::image_io::encode_png(&crate::image_io::Image8::new(w, h, c, hwc)?)
}

/// Name of the folder of class `k` out of `classes`: zero-padded so that sorted order is class order.
pub fn class_folder_name(k: usize, classes: usize) -> String {
    let digits = classes.saturating_sub(1).to_string().len();
    format!("{k:0digits$}")
}

/// Write one split as `dir/{train,test}/<class>/<index>.png`. The split folder is built under a temporary
/// name and renamed into place (an existing one is replaced).
pub fn write_dir(root: &Path, ds: &Dataset, split: Split) -> Result<()> {
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let sname = split.name();
    let final_dir = root.join(sname);
    let tmp = root.join(format!(".{sname}.{}.tmp", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    let res = (|| -> Result<()> {
        for k in 0..ds.classes {
            let d = tmp.join(class_folder_name(k, ds.classes));
            fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        let digits = ds.len().saturating_sub(1).to_string().len().max(5);
        for i in 0..ds.len() {
            let bytes = encode_png(ds.image(i), ds.channels, ds.height, ds.width)?;
            let p = tmp.join(class_folder_name(ds.labels[i], ds.classes)).join(format!("{i:0digits$}.png"));
            fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = root.join(format!(".{sname}.{}.old", std::process::id()));
    if final_dir.exists() {
        fs::rename(&final_dir, &old).map_err(|e| Error::io(&final_dir, e))?;
    }
    fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}
