//! Image files and pixel buffers: 8-bit gray/RGB PNG read and write, f32 CHW buffers in [0, 1] <-> PNG,
//! resizing (area average when shrinking, bilinear when enlarging), channel conversion and image grids.
//!
//! Conventions: an [`Image8`] stores interleaved HWC bytes (what PNG stores); a "CHW buffer" is a
//! `Vec<f32>` of `channels * height * width` values in [0, 1], planar, row-major (one image of an NCHW
//! tensor). Every write goes to a temporary file in the target's directory and is then renamed over the
//! target, so a reader never sees a half-written file. Bad input is an error naming the file, never a panic.

use std::io::{BufReader, Cursor, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result, Tensor};

/// An 8-bit image with 1 (gray) or 3 (RGB) channels, interleaved HWC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image8 {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Image8 {
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Result<Image8> {
        check_channels(channels)?;
        if width == 0 || height == 0 {
            return Err(Error::msg(format!("image size {height}x{width} is empty")));
        }
        if data.len() != width * height * channels {
            return Err(Error::msg(format!(
                "{} bytes do not fill a {height}x{width} image with {channels} channel(s)",
                data.len()
            )));
        }
        Ok(Image8 { width, height, channels, data })
    }

    /// A constant image.
    pub fn filled(width: usize, height: usize, channels: usize, value: u8) -> Result<Image8> {
        Image8::new(width, height, channels, vec![value; width * height * channels])
    }

    /// Planar CHW values in [0, 1] (byte / 255).
    pub fn to_chw(&self) -> Vec<f32> {
        let (c, hw) = (self.channels, self.width * self.height);
        let mut out = vec![0f32; c * hw];
        for i in 0..hw {
            for k in 0..c {
                out[k * hw + i] = self.data[i * c + k] as f32 / 255.0;
            }
        }
        out
    }

    /// From planar CHW values: clamped to [0, 1], scaled by 255 and rounded to nearest (NaN becomes 0).
    pub fn from_chw(chw: &[f32], channels: usize, height: usize, width: usize) -> Result<Image8> {
        check_channels(channels)?;
        let hw = height * width;
        if chw.len() != channels * hw || hw == 0 {
            return Err(Error::msg(format!(
                "{} values do not fill a {channels}x{height}x{width} image",
                chw.len()
            )));
        }
        let mut data = vec![0u8; channels * hw];
        for i in 0..hw {
            for k in 0..channels {
                data[i * channels + k] = to_u8(chw[k * hw + i]);
            }
        }
        Image8::new(width, height, channels, data)
    }
}

/// [0, 1] -> byte, rounding to nearest; NaN -> 0.
pub fn to_u8(v: f32) -> u8 {
    if v.is_nan() { 0 } else { (v.clamp(0.0, 1.0) * 255.0).round() as u8 }
}

fn check_channels(c: usize) -> Result<()> {
    if c == 1 || c == 3 {
        Ok(())
    } else {
        Err(Error::msg(format!("images have 1 (gray) or 3 (RGB) channels, not {c}")))
    }
}

// ------------------------------------------------------------------------------------------------ limits

/// Largest image (width x height) any decoder accepts: 64 Mpixel by default (8,000 x 8,000), or the value
/// of the environment variable `DEEPHIDE_MAX_PIXELS`. Headers are checked against it before any pixel
/// buffer is allocated, so a 500-byte file that declares 65,000 x 65,000 pixels costs nothing.
pub fn max_pixels() -> usize {
    std::env::var("DEEPHIDE_MAX_PIXELS").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&v| v > 0).unwrap_or(64 << 20)
}

/// Refuse a declared size above [`max_pixels`] (or an empty one).
pub fn check_declared_size(path: &Path, kind: &str, width: usize, height: usize) -> Result<()> {
    let limit = max_pixels();
    if width == 0 || height == 0 {
        return Err(Error::format(path, format!("{kind} declares an empty image ({width}x{height})")));
    }
    if width.saturating_mul(height) > limit {
        return Err(Error::format(
            path,
            format!("{kind} declares {width}x{height} pixels, above the limit of {limit} (set DEEPHIDE_MAX_PIXELS to raise it)"),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ PNG

/// Encode as an 8-bit gray or RGB PNG. Deterministic: the same image gives the same bytes.
pub fn encode_png(img: &Image8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fail = |e: png::EncodingError| Error::msg(format!("PNG encoding failed: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, img.width as u32, img.height as u32);
        enc.set_color(if img.channels == 1 { png::ColorType::Grayscale } else { png::ColorType::Rgb });
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(fail)?;
        w.write_image_data(&img.data).map_err(fail)?;
        w.finish().map_err(fail)?;
    }
    Ok(out)
}

/// Decode PNG bytes; `path` only names the source in errors. Any bit depth, gray, gray+alpha, RGB, RGBA or
/// palette: 16-bit samples are reduced to 8, palettes expanded, alpha dropped. The result is gray (1
/// channel) or RGB (3 channels).
pub fn decode_png(bytes: &[u8], path: impl AsRef<Path>) -> Result<Image8> {
    let path = path.as_ref();
    let bad = |e: png::DecodingError| Error::format(path, format!("not a readable PNG: {e}"));
    let mut dec = png::Decoder::new_with_limits(BufReader::new(Cursor::new(bytes)), png::Limits { bytes: max_pixels().saturating_mul(8) });
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(bad)?;
    {
        let info = reader.info();
        check_declared_size(path, "PNG", info.width as usize, info.height as usize)?;
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::format(path, "PNG image is too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let (w, h) = (info.width as usize, info.height as usize);
    if info.bit_depth != png::BitDepth::Eight {
        return Err(Error::format(path, format!("unexpected PNG bit depth {:?} after expansion", info.bit_depth)));
    }
    let src_c = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(Error::format(path, "palette PNG was not expanded"));
        }
    };
    let stride = info.line_size;
    let out_c = if src_c <= 2 { 1 } else { 3 };
    let mut data = Vec::with_capacity(w * h * out_c);
    for y in 0..h {
        let row = &buf[y * stride..y * stride + w * src_c];
        for x in 0..w {
            data.extend_from_slice(&row[x * src_c..x * src_c + out_c]);
        }
    }
    Image8::new(w, h, out_c, data).map_err(|e| Error::format(path, e.to_string()))
}

/// Read a PNG file (see [`decode_png`]).
pub fn read_png(path: impl AsRef<Path>) -> Result<Image8> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_png(&bytes, path)
}

/// Write a PNG file atomically (temporary file in the same directory, then rename).
pub fn write_png(path: impl AsRef<Path>, img: &Image8) -> Result<()> {
    write_atomic(path, &encode_png(img)?)
}

/// Read a PNG as planar CHW f32 in [0, 1]: (values, channels, height, width).
pub fn read_png_chw(path: impl AsRef<Path>) -> Result<(Vec<f32>, usize, usize, usize)> {
    let img = read_png(path)?;
    Ok((img.to_chw(), img.channels, img.height, img.width))
}

/// Write planar CHW f32 values (clamped to [0, 1]) as an 8-bit PNG.
pub fn write_png_chw(path: impl AsRef<Path>, chw: &[f32], channels: usize, height: usize, width: usize) -> Result<()> {
    write_png(path, &Image8::from_chw(chw, channels, height, width)?)
}

/// Write bytes to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let name = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("{}: not a file path", path.display())))?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

// ------------------------------------------------------------------------------------------------ pixels

/// For one axis: each output index's list of (input index, weight), weights summing to 1. Shrinking
/// averages the covered input span (area); enlarging interpolates linearly between pixel centres.
fn axis_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            if n_in == n_out {
                vec![(o, 1.0)]
            } else if n_in > n_out {
                let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
                let mut w = Vec::new();
                let mut i = lo.floor() as usize;
                while (i as f64) < hi && i < n_in {
                    let cover = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                    if cover > 0.0 {
                        w.push((i, (cover / scale) as f32));
                    }
                    i += 1;
                }
                w
            } else {
                let x = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = x.floor() as usize;
                let i1 = (i0 + 1).min(n_in - 1);
                let t = (x - i0 as f64) as f32;
                if i1 == i0 || t == 0.0 { vec![(i0, 1.0)] } else { vec![(i0, 1.0 - t), (i1, t)] }
            }
        })
        .collect()
}

/// Resize a planar CHW buffer to (new_h, new_w): area average along an axis that shrinks, bilinear
/// (half-pixel centres, edge clamped) along one that grows. Same size returns a copy.
pub fn resize_chw(chw: &[f32], c: usize, h: usize, w: usize, new_h: usize, new_w: usize) -> Result<Vec<f32>> {
    if chw.len() != c * h * w || h == 0 || w == 0 {
        return Err(Error::msg(format!("resize: {} values do not fill a {c}x{h}x{w} image", chw.len())));
    }
    if new_h == 0 || new_w == 0 {
        return Err(Error::msg(format!("resize: target size {new_h}x{new_w} is empty")));
    }
    if (h, w) == (new_h, new_w) {
        return Ok(chw.to_vec());
    }
    let (wy, wx) = (axis_weights(h, new_h), axis_weights(w, new_w));
    let mut out = vec![0f32; c * new_h * new_w];
    let mut rows = vec![0f32; h * new_w];
    for k in 0..c {
        let plane = &chw[k * h * w..(k + 1) * h * w];
        for y in 0..h {
            for (ox, ws) in wx.iter().enumerate() {
                rows[y * new_w + ox] = ws.iter().map(|&(i, a)| a * plane[y * w + i]).sum();
            }
        }
        let dst = &mut out[k * new_h * new_w..(k + 1) * new_h * new_w];
        for (oy, ws) in wy.iter().enumerate() {
            for ox in 0..new_w {
                dst[oy * new_w + ox] = ws.iter().map(|&(i, a)| a * rows[i * new_w + ox]).sum();
            }
        }
    }
    Ok(out)
}

/// Convert a planar CHW buffer between 1 and 3 channels: gray -> RGB replicates the plane, RGB -> gray takes
/// the luma 0.299 R + 0.587 G + 0.114 B.
pub fn convert_channels(chw: &[f32], c: usize, h: usize, w: usize, new_c: usize) -> Result<Vec<f32>> {
    check_channels(c)?;
    check_channels(new_c)?;
    let hw = h * w;
    if chw.len() != c * hw {
        return Err(Error::msg(format!("convert_channels: {} values do not fill a {c}x{h}x{w} image", chw.len())));
    }
    Ok(match (c, new_c) {
        (a, b) if a == b => chw.to_vec(),
        (1, 3) => [chw, chw, chw].concat(),
        _ => (0..hw).map(|i| 0.299 * chw[i] + 0.587 * chw[hw + i] + 0.114 * chw[2 * hw + i]).collect(),
    })
}

/// Compose equally sized CHW images into a grid: `cells[row][col]`, rows may be ragged (missing cells stay
/// background). `pad` pixels of `background` (in [0, 1]) separate the cells and surround the grid.
pub fn grid_image(
    cells: &[Vec<&[f32]>],
    channels: usize,
    height: usize,
    width: usize,
    pad: usize,
    background: f32,
) -> Result<Image8> {
    check_channels(channels)?;
    let rows = cells.len();
    let cols = cells.iter().map(|r| r.len()).max().unwrap_or(0);
    if rows == 0 || cols == 0 {
        return Err(Error::msg("grid: no images"));
    }
    let gw = cols * (width + pad) + pad;
    let gh = rows * (height + pad) + pad;
    let mut data = vec![to_u8(background); gw * gh * channels];
    let hw = height * width;
    for (r, row) in cells.iter().enumerate() {
        for (col, img) in row.iter().enumerate() {
            if img.len() != channels * hw {
                return Err(Error::msg(format!(
                    "grid: cell ({r}, {col}) has {} values, expected {channels}x{height}x{width}",
                    img.len()
                )));
            }
            let (oy, ox) = (pad + r * (height + pad), pad + col * (width + pad));
            for y in 0..height {
                for x in 0..width {
                    let dst = ((oy + y) * gw + ox + x) * channels;
                    for k in 0..channels {
                        data[dst + k] = to_u8(img[k * hw + y * width + x]);
                    }
                }
            }
        }
    }
    Image8::new(gw, gh, channels, data)
}

/// Write a grid PNG of the images of an (N, C, H, W) tensor, `cols` per row, in order.
pub fn write_tensor_grid(path: impl AsRef<Path>, images: &Tensor, cols: usize) -> Result<()> {
    let (n, c, h, w) = images.dims4("write_tensor_grid")?;
    let v = images.to_vec_f32()?;
    let per = c * h * w;
    let cols = cols.max(1);
    let all: Vec<&[f32]> = (0..n).map(|i| &v[i * per..(i + 1) * per]).collect();
    let cells: Vec<Vec<&[f32]>> = all.chunks(cols).map(|r| r.to_vec()).collect();
    write_png(path, &grid_image(&cells, c, h, w, 2, 1.0)?)
}
