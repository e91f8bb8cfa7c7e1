//! IDX files (MNIST, Fashion-MNIST): `{train,t10k}-{images,labels}-idx{1,3}-ubyte[.gz]`.
//!
//! Layout (big-endian): two zero bytes, a type code (0x08 = unsigned byte, the only one images and labels
//! use), the number of dimensions, one u32 per dimension, then the values in row-major order. Images are
//! (N, H, W) for one channel; deephide also reads and writes (N, C, H, W) for colour images (`idx4`).
//! Files may be gzip-compressed (detected by their magic bytes, not their name).
//!
//! A directory may hold `classes.txt` (one class name per line) to declare the number of classes; without
//! it there are 10 (MNIST and Fashion-MNIST).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::data::{Dataset, Split};
use crate::{Error, Result};

/// Type code of unsigned bytes.
const U8: u8 = 0x08;

/// A parsed IDX array of u8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Read a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).map_err(|e| Error::io(path, e))?;
    maybe_gunzip(path, raw)
}

pub(crate) fn maybe_gunzip(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::with_capacity(raw.len() * 2);
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt gzip data after {} decompressed bytes: {e}", out.len())))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse IDX bytes (already decompressed). `path` is only for messages.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::format(path, format!("not an IDX file: {} bytes, shorter than the 4-byte magic", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            path,
            format!("not an IDX file: bad magic {:02x} {:02x} {:02x} {:02x} (expected 00 00 08 NDIM)", bytes[0], bytes[1], bytes[2], bytes[3]),
        ));
    }
    if bytes[2] != U8 {
        return Err(Error::format(path, format!("IDX type code 0x{:02x} at byte 2 is not supported (only 0x08, unsigned bytes)", bytes[2])));
    }
    let nd = bytes[3] as usize;
    if nd == 0 {
        return Err(Error::format(path, "IDX header declares 0 dimensions (byte 3)"));
    }
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err(Error::format(path, format!("truncated IDX header: {nd} dimensions need {header} bytes, file has {}", bytes.len())));
    }
    let dims: Vec<usize> =
        (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    // Checked products: the dimensions come from the file (found by fuzzing: an unchecked product of the
    // record dimensions overflowed).
    let overflow = || Error::format(path, format!("IDX dimensions {dims:?} overflow"));
    let per = dims[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(overflow)?;
    let want = per.checked_mul(dims[0]).ok_or_else(overflow)?;
    let have = bytes.len() - header;
    if have < want {
        let rec = have.checked_div(per).unwrap_or(0);
        return Err(Error::format(
            path,
            format!(
                "truncated: dimensions {dims:?} need {want} data bytes after the {header}-byte header, file has {have}; record {rec} (byte offset {}) is cut off",
                header + rec * per
            ),
        ));
    }
    if have > want {
        return Err(Error::format(
            path,
            format!("{} unexpected trailing bytes at byte offset {} after the data declared by dimensions {dims:?}", have - want, header + want),
        ));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    parse_idx(path, &bytes)
}

/// Encode a u8 array as IDX bytes (uncompressed).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Result<Vec<u8>> {
    let n: usize = dims.iter().product();
    if n != data.len() || dims.is_empty() || dims.len() > 255 {
        return Err(Error::msg(format!("encode_idx: {} values do not fit dimensions {dims:?}", data.len())));
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, U8, dims.len() as u8]);
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| Error::msg(format!("encode_idx: dimension {d} does not fit in 32 bits")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub use crate::image_io::write_atomic;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::best());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// File prefix of a split: `train` or `t10k`.
pub fn prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

/// The first existing file among the usual spellings of `{prefix}-{kind}-idx{nd}-ubyte[.gz]`.
fn find_file(dir: &Path, split: Split, kind: &str, nds: &[u8]) -> Result<PathBuf> {
    let p = prefix(split);
    let mut tried = Vec::new();
    for nd in nds {
        for name in [format!("{p}-{kind}-idx{nd}-ubyte"), format!("{p}-{kind}.idx{nd}-ubyte")] {
            for ext in ["", ".gz"] {
                let f = dir.join(format!("{name}{ext}"));
                if f.is_file() {
                    return Ok(f);
                }
                tried.push(format!("{name}{ext}"));
            }
        }
    }
    Err(Error::format(dir, format!("no {} {kind} file (looked for {})", split.name(), tried.join(", "))))
}

/// The number of classes declared by `classes.txt` in `dir`, or 10.
pub fn declared_classes(dir: &Path) -> Result<usize> {
    let f = dir.join("classes.txt");
    if !f.is_file() {
        return Ok(10);
    }
    let s = fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
    let n = s.lines().filter(|l| !l.trim().is_empty()).count();
    if n == 0 {
        return Err(Error::format(&f, "declares no classes (expected one class name per line)"));
    }
    Ok(n)
}

/// Images and labels of one split from in-memory IDX files (gzip or raw). `names` are the file names for
/// messages.
pub fn dataset_from_idx_bytes(
    name: &str,
    images: (&Path, Vec<u8>),
    labels: (&Path, Vec<u8>),
    classes: usize,
) -> Result<Dataset> {
    let (ipath, ibytes) = images;
    let (lpath, lbytes) = labels;
    let img = parse_idx(ipath, &maybe_gunzip(ipath, ibytes)?)?;
    let lab = parse_idx(lpath, &maybe_gunzip(lpath, lbytes)?)?;
    let (c, h, w) = match img.dims[..] {
        [_, h, w] => (1, h, w),
        [_, c, h, w] => (c, h, w),
        _ => {
            return Err(Error::format(ipath, format!("image file must have 3 (N, H, W) or 4 (N, C, H, W) dimensions, got {:?}", img.dims)));
        }
    };
    if c * h * w == 0 {
        return Err(Error::format(ipath, format!("empty images: dimensions {:?}", img.dims)));
    }
    if lab.dims.len() != 1 {
        return Err(Error::format(lpath, format!("label file must have 1 dimension, got {:?}", lab.dims)));
    }
    let n = img.dims[0];
    if lab.dims[0] != n {
        return Err(Error::format(
            lpath,
            format!("{} labels, but {} holds {n} images", lab.dims[0], ipath.display()),
        ));
    }
    let header = 8;
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, l)| **l as usize >= classes) {
        let hint = if classes == 10 { " (a classes.txt beside the files can declare more)" } else { "" };
        return Err(Error::format(
            lpath,
            format!("label {l} of record {i} (byte offset {}) is out of range for {classes} classes{hint}", header + i),
        ));
    }
    let labels = lab.data.iter().map(|&l| l as usize).collect();
    Dataset::new(name, img.data, labels, (c, h, w), classes)
}

/// Load one split of an IDX directory.
pub fn load_dir(dir: &Path, split: Split) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::format(dir, "not a directory (idx:DIR needs a directory of IDX files)"));
    }
    let ipath = find_file(dir, split, "images", &[3, 4])?;
    let lpath = find_file(dir, split, "labels", &[1])?;
    let classes = declared_classes(dir)?;
    let ib = fs::read(&ipath).map_err(|e| Error::io(&ipath, e))?;
    let lb = fs::read(&lpath).map_err(|e| Error::io(&lpath, e))?;
    let name = format!("idx:{} ({})", dir.display(), split.name());
    dataset_from_idx_bytes(&name, (&ipath, ib), (&lpath, lb), classes)
}

/// Write one split as gzip IDX files into `dir` (created if needed): `{train,t10k}-images-idx3-ubyte.gz`
/// for one channel, `...-idx4-ubyte.gz` (N, C, H, W) for more, and `...-labels-idx1-ubyte.gz`. Each file
/// is written to a temporary name and renamed, and `classes.txt` records the number of classes.
pub fn write_dir(dir: &Path, ds: &Dataset, split: Split) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if ds.labels.iter().any(|&l| l > 255) {
        return Err(Error::msg(format!("{}: IDX labels are single bytes; labels above 255 cannot be written", ds.name)));
    }
    let p = prefix(split);
    let n = ds.len();
    let (dims, nd) = if ds.channels == 1 {
        (vec![n, ds.height, ds.width], 3)
    } else {
        (vec![n, ds.channels, ds.height, ds.width], 4)
    };
    // Remove every other spelling of this split's files so a reader never picks up a stale one.
    let keep_img = format!("{p}-images-idx{nd}-ubyte.gz");
    let keep_lab = format!("{p}-labels-idx1-ubyte.gz");
    for (kind, nds) in [("images", &[3u8, 4][..]), ("labels", &[1u8][..])] {
        for d in nds {
            for name in [format!("{p}-{kind}-idx{d}-ubyte"), format!("{p}-{kind}.idx{d}-ubyte")] {
                for ext in ["", ".gz"] {
                    let f = format!("{name}{ext}");
                    let stale = dir.join(&f);
                    if f != keep_img && f != keep_lab && stale.is_file() {
                        fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
                    }
                }
            }
        }
    }
    let img = gzip(&encode_idx(&dims, &ds.images)?);
    write_atomic(dir.join(format!("{p}-images-idx{nd}-ubyte.gz")), &img)?;
    let labels: Vec<u8> = ds.labels.iter().map(|&l| l as u8).collect();
    let lab = gzip(&encode_idx(&[n], &labels)?);
    write_atomic(dir.join(format!("{p}-labels-idx1-ubyte.gz")), &lab)?;
    let names: String = (0..ds.classes).map(|k| format!("{k}\n")).collect();
    write_atomic(dir.join("classes.txt"), names.as_bytes())?;
    Ok(())
}
