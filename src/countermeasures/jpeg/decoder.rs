//! Baseline / extended sequential JPEG decoder (T.81 SOF0 and SOF1, 8-bit, Huffman coded).
//!
//! Handles 1 (grayscale) or 3 components with any sampling factors 1..=4, interleaved or separate scans,
//! restart intervals, and 8- or 16-bit quantisation tables. Subsampled chroma is upsampled with the
//! triangle filter libjpeg calls "fancy upsampling" (bilinear with centred samples, edges repeated), then
//! JFIF YCbCr is converted to RGB (unless an Adobe APP14 marker or R/G/B component ids say the data is
//! already RGB). Progressive, lossless, arithmetic-coded and 12-bit files are refused with an error.

use super::dct::idct;
use super::tables::ZIGZAG;
use crate::{Error, Result};

/// A decoded image: u8 samples, planar CHW (`channels` is 1 or 3).
#[derive(Clone, Debug, PartialEq)]
pub struct JpegImage {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

fn err(msg: impl std::fmt::Display) -> Error {
    Error::msg(format!("jpeg decode: {msg}"))
}

/// Huffman decoding table (T.81 F.2.2.3): per code length, the largest code, the first code and the index
/// of its symbol.
#[derive(Clone)]
struct HuffDec {
    maxcode: [i32; 17],
    mincode: [i32; 17],
    valptr: [i32; 17],
    vals: Vec<u8>,
}

impl HuffDec {
    fn new(bits: &[u8; 16], vals: Vec<u8>) -> Result<HuffDec> {
        let mut h = HuffDec { maxcode: [-1; 17], mincode: [0; 17], valptr: [0; 17], vals };
        let mut code: i32 = 0;
        let mut k: i32 = 0;
        for l in 1..=16 {
            let n = bits[l - 1] as i32;
            if n > 0 {
                h.valptr[l] = k;
                h.mincode[l] = code;
                code += n;
                k += n;
                h.maxcode[l] = code - 1;
            }
            if code > (1 << l) {
                return Err(err("Huffman table has more codes than fit their lengths"));
            }
            code <<= 1;
        }
        if k as usize != h.vals.len() {
            return Err(err("Huffman table length disagrees with its code counts"));
        }
        Ok(h)
    }
}

/// MSB-first reader of entropy-coded data: removes stuffed zero bytes and stops (feeding zeros) at a
/// marker, leaving `pos` on it.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u32,
    nbits: u32,
    at_marker: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos, acc: 0, nbits: 0, at_marker: false }
    }

    fn next_byte(&mut self) -> u8 {
        if self.at_marker || self.pos >= self.data.len() {
            self.at_marker = true;
            return 0;
        }
        let b = self.data[self.pos];
        if b == 0xFF {
            match self.data.get(self.pos + 1) {
                Some(0x00) => {
                    self.pos += 2;
                    0xFF
                }
                _ => {
                    self.at_marker = true;
                    0
                }
            }
        } else {
            self.pos += 1;
            b
        }
    }

    #[inline]
    fn fill(&mut self) {
        while self.nbits <= 24 {
            let b = self.next_byte() as u32;
            self.acc |= b << (24 - self.nbits);
            self.nbits += 8;
        }
    }

    #[inline]
    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.nbits < n {
            self.fill();
        }
        let v = self.acc >> (32 - n);
        self.acc <<= n;
        self.nbits -= n;
        v
    }

    #[inline]
    fn huff(&mut self, h: &HuffDec) -> Result<u8> {
        if self.nbits < 16 {
            self.fill();
        }
        let peek = (self.acc >> 16) as i32;
        for l in 1..=16 {
            let code = peek >> (16 - l);
            if code <= h.maxcode[l] {
                self.acc <<= l;
                self.nbits -= l as u32;
                return Ok(h.vals[(h.valptr[l] + code - h.mincode[l]) as usize]);
            }
        }
        Err(err(format!("bad Huffman code near byte {}", self.pos)))
    }

    /// The signed value of `s` extra bits (T.81 F.2.2.1 EXTEND).
    #[inline]
    fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < 1 << (s - 1) { v - (1 << s) + 1 } else { v }
    }

    /// Discard buffered bits and step over the restart marker expected here.
    fn restart(&mut self) -> Result<()> {
        self.acc = 0;
        self.nbits = 0;
        self.at_marker = false;
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]) {
                self.pos += 2;
                return Ok(());
            }
            if self.data[self.pos] == 0xFF && self.data[self.pos + 1] != 0x00 && self.data[self.pos + 1] != 0xFF {
                return Err(err(format!("expected a restart marker at byte {}", self.pos)));
            }
            self.pos += 1;
        }
        Err(err("data ends where a restart marker was expected"))
    }
}

struct FrameComponent {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per line and per column (whole MCUs).
    bw: usize,
    bh: usize,
    /// Quantised coefficients, natural order, 64 per block.
    coefs: Vec<i32>,
}

/// Decode a JPEG byte stream.
pub fn decode(data: &[u8]) -> Result<JpegImage> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(err("not a JPEG file (no SOI marker FFD8 at the start)"));
    }
    let mut pos = 2;
    let mut qt: [Option<[u16; 64]>; 4] = [None, None, None, None];
    let mut dc: [Option<HuffDec>; 4] = [None, None, None, None];
    let mut ac: [Option<HuffDec>; 4] = [None, None, None, None];
    let mut frame: Option<(usize, usize, Vec<FrameComponent>)> = None;
    let mut restart_interval = 0usize;
    let mut adobe_transform: Option<u8> = None;
    let mut scans = 0;

    loop {
        // find the next marker (skipping fill bytes)
        while pos < data.len() && data[pos] != 0xFF {
            pos += 1;
        }
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        if pos >= data.len() {
            break; // no EOI: accept what was decoded (as libjpeg does with a warning)
        }
        let marker = data[pos];
        pos += 1;
        match marker {
            0xD9 => break,                         // EOI
            0x00 | 0x01 | 0xD0..=0xD7 => continue, // stuffed byte, TEM, stray RSTn: no segment
            _ => {}
        }
        if pos + 2 > data.len() {
            return Err(err(format!("truncated segment header of marker FF{marker:02X}")));
        }
        let len = u16::from_be_bytes([data[pos], data[pos + 1]]) as usize;
        if len < 2 || pos + len > data.len() {
            return Err(err(format!("segment FF{marker:02X} of length {len} runs past the end of the data")));
        }
        let seg = &data[pos + 2..pos + len];
        pos += len;
        match marker {
            0xDB => {
                let mut s = seg;
                while !s.is_empty() {
                    let (pq, tq) = (s[0] >> 4, (s[0] & 15) as usize);
                    let n = if pq == 0 { 64 } else { 128 };
                    if tq > 3 || pq > 1 || s.len() < 1 + n {
                        return Err(err("malformed DQT segment"));
                    }
                    let mut t = [0u16; 64];
                    for k in 0..64 {
                        t[ZIGZAG[k]] =
                            if pq == 0 { s[1 + k] as u16 } else { u16::from_be_bytes([s[1 + 2 * k], s[2 + 2 * k]]) };
                    }
                    qt[tq] = Some(t);
                    s = &s[1 + n..];
                }
            }
            0xC4 => {
                let mut s = seg;
                while !s.is_empty() {
                    if s.len() < 17 {
                        return Err(err("malformed DHT segment"));
                    }
                    let (tc, th) = (s[0] >> 4, (s[0] & 15) as usize);
                    let mut bits = [0u8; 16];
                    bits.copy_from_slice(&s[1..17]);
                    let n: usize = bits.iter().map(|&b| b as usize).sum();
                    if tc > 1 || th > 3 || s.len() < 17 + n {
                        return Err(err("malformed DHT segment"));
                    }
                    let table = HuffDec::new(&bits, s[17..17 + n].to_vec())?;
                    if tc == 0 {
                        dc[th] = Some(table)
                    } else {
                        ac[th] = Some(table)
                    }
                    s = &s[17 + n..];
                }
            }
            0xDD => {
                if seg.len() < 2 {
                    return Err(err("malformed DRI segment"));
                }
                restart_interval = u16::from_be_bytes([seg[0], seg[1]]) as usize;
            }
            0xEE if seg.len() >= 12 && &seg[..5] == b"Adobe" => adobe_transform = Some(seg[11]),
            0xC0 | 0xC1 => {
                if frame.is_some() {
                    return Err(err("more than one frame header"));
                }
                if seg.len() < 6 || seg[0] != 8 {
                    return Err(err("only 8-bit samples are supported"));
                }
                let height = u16::from_be_bytes([seg[1], seg[2]]) as usize;
                let width = u16::from_be_bytes([seg[3], seg[4]]) as usize;
                let nc = seg[5] as usize;
                if height == 0 || width == 0 {
                    return Err(err(format!("unsupported size {width}x{height} (a DNL height is not supported)")));
                }
                // Coefficients are allocated from the declared size: refuse one above the pixel limit.
                if width * height > crate::image_io::max_pixels() {
                    return Err(err(format!("declares {width}x{height} pixels, above the limit of {} (DEEPHIDE_MAX_PIXELS)", crate::image_io::max_pixels())));
                }
                if !(nc == 1 || nc == 3) || seg.len() < 6 + 3 * nc {
                    return Err(err(format!("{nc} components: only grayscale (1) or YCbCr/RGB (3) are supported")));
                }
                let mut comps = Vec::new();
                for i in 0..nc {
                    let c = &seg[6 + 3 * i..9 + 3 * i];
                    let (h, v, tq) = ((c[1] >> 4) as usize, (c[1] & 15) as usize, c[2] as usize);
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                        return Err(err(format!("component {} has bad sampling {h}x{v} or table {tq}", c[0])));
                    }
                    comps.push(FrameComponent { id: c[0], h, v, tq, bw: 0, bh: 0, coefs: Vec::new() });
                }
                let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
                let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
                let (mx, my) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
                for c in &mut comps {
                    c.bw = mx * c.h;
                    c.bh = my * c.v;
                    c.coefs = vec![0; c.bw * c.bh * 64];
                }
                frame = Some((width, height, comps));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(err(format!(
                    "frame type FF{marker:02X} (progressive, lossless or arithmetic-coded) is not supported"
                )));
            }
            0xDA => {
                let Some((width, height, comps)) = frame.as_mut() else {
                    return Err(err("scan before the frame header"));
                };
                let ns = *seg.first().ok_or_else(|| err("empty SOS segment"))? as usize;
                if ns == 0 || ns > 4 || seg.len() < 1 + 2 * ns + 3 {
                    return Err(err("malformed SOS segment"));
                }
                let mut scomps = Vec::new();
                for i in 0..ns {
                    let (id, tables) = (seg[1 + 2 * i], seg[2 + 2 * i]);
                    let ci = comps
                        .iter()
                        .position(|c| c.id == id)
                        .ok_or_else(|| err(format!("scan names unknown component {id}")))?;
                    let (td, ta) = ((tables >> 4) as usize, (tables & 15) as usize);
                    let d = dc
                        .get(td)
                        .and_then(|t| t.clone())
                        .ok_or_else(|| err(format!("DC table {td} is not defined")))?;
                    let a = ac
                        .get(ta)
                        .and_then(|t| t.clone())
                        .ok_or_else(|| err(format!("AC table {ta} is not defined")))?;
                    scomps.push((ci, d, a));
                }
                let (ss, se, a) = (seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]);
                if ss != 0 || se != 63 || a != 0 {
                    return Err(err("spectral selection or successive approximation in a sequential scan"));
                }
                pos = decode_scan(data, pos, *width, *height, comps, &scomps, restart_interval)?;
                scans += 1;
            }
            _ => {} // APPn, COM, and anything else with a length: skipped
        }
    }

    let Some((width, height, comps)) = frame else {
        return Err(err("no frame header (SOF) found"));
    };
    if scans == 0 {
        return Err(err("no scan (SOS) found"));
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let plane = width * height;
    let mut out = vec![0f32; comps.len() * plane];
    for (ci, c) in comps.iter().enumerate() {
        let q = qt[c.tq].ok_or_else(|| err(format!("quantisation table {} is not defined", c.tq)))?;
        let (pw, ph) = (c.bw * 8, c.bh * 8);
        let mut samples = vec![0f32; pw * ph];
        let mut block = [0f32; 64];
        for by in 0..c.bh {
            for bx in 0..c.bw {
                let coefs = &c.coefs[(by * c.bw + bx) * 64..(by * c.bw + bx + 1) * 64];
                for k in 0..64 {
                    block[k] = (coefs[k] * q[k] as i32) as f32;
                }
                idct(&mut block);
                for y in 0..8 {
                    for x in 0..8 {
                        samples[(by * 8 + y) * pw + bx * 8 + x] = (block[y * 8 + x] + 128.0).round().clamp(0.0, 255.0);
                    }
                }
            }
        }
        // the component's real size, then upsample to the image size
        let cw = (width * c.h).div_ceil(hmax);
        let ch = (height * c.v).div_ceil(vmax);
        let dst = &mut out[ci * plane..(ci + 1) * plane];
        if c.h == hmax && c.v == vmax {
            for y in 0..height {
                dst[y * width..(y + 1) * width].copy_from_slice(&samples[y * pw..y * pw + width]);
            }
        } else {
            let axis = |n: usize, cn: usize, f: usize, fmax: usize| -> Vec<(usize, usize, f32)> {
                (0..n)
                    .map(|i| {
                        let s = ((i as f64 + 0.5) * f as f64 / fmax as f64 - 0.5).clamp(0.0, (cn - 1) as f64);
                        let i0 = s.floor() as usize;
                        (i0, (i0 + 1).min(cn - 1), (s - i0 as f64) as f32)
                    })
                    .collect()
            };
            let xs = axis(width, cw, c.h, hmax);
            let ys = axis(height, ch, c.v, vmax);
            for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
                for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
                    let t = samples[y0 * pw + x0] * (1.0 - fx) + samples[y0 * pw + x1] * fx;
                    let b = samples[y1 * pw + x0] * (1.0 - fx) + samples[y1 * pw + x1] * fx;
                    dst[y * width + x] = t * (1.0 - fy) + b * fy;
                }
            }
        }
    }

    let channels = comps.len();
    let rgb_ids = channels == 3 && comps[0].id == b'R' && comps[1].id == b'G' && comps[2].id == b'B';
    let ycc = channels == 3 && !rgb_ids && adobe_transform != Some(0);
    let mut pixels = vec![0u8; channels * plane];
    if ycc {
        for i in 0..plane {
            let (y, cb, cr) = (out[i], out[plane + i] - 128.0, out[2 * plane + i] - 128.0);
            pixels[i] = (y + 1.402 * cr).round().clamp(0.0, 255.0) as u8;
            pixels[plane + i] = (y - 0.344_136_3 * cb - 0.714_136_3 * cr).round().clamp(0.0, 255.0) as u8;
            pixels[2 * plane + i] = (y + 1.772 * cb).round().clamp(0.0, 255.0) as u8;
        }
    } else {
        for (p, v) in pixels.iter_mut().zip(&out) {
            *p = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(JpegImage { width, height, channels, pixels })
}

/// Decode one scan's entropy-coded segment starting at `pos`; returns the position after it.
fn decode_scan(
    data: &[u8],
    pos: usize,
    width: usize,
    height: usize,
    comps: &mut [FrameComponent],
    scomps: &[(usize, HuffDec, HuffDec)],
    restart_interval: usize,
) -> Result<usize> {
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mut r = BitReader::new(data, pos);
    let mut pred = vec![0i32; scomps.len()];
    // units (MCUs) and the blocks of each: a single-component scan is not interleaved and walks the
    // component's own blocks (T.81 A.2.2)
    let (ux, uy) = if scomps.len() == 1 {
        let c = &comps[scomps[0].0];
        ((width * c.h).div_ceil(hmax).div_ceil(8), (height * c.v).div_ceil(vmax).div_ceil(8))
    } else {
        (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax))
    };
    let total = ux * uy;
    for unit in 0..total {
        if restart_interval > 0 && unit > 0 && unit % restart_interval == 0 {
            r.restart()?;
            pred.iter_mut().for_each(|p| *p = 0);
        }
        let (ix, iy) = (unit % ux, unit / ux);
        for (si, (ci, dct, act)) in scomps.iter().enumerate() {
            let c = &mut comps[*ci];
            let (nh, nv) = if scomps.len() == 1 { (1, 1) } else { (c.h, c.v) };
            for by in 0..nv {
                for bx in 0..nh {
                    let (col, row) = (ix * nh + bx, iy * nv + by);
                    let off = (row * c.bw + col) * 64;
                    let blk = &mut c.coefs[off..off + 64];
                    let s = r.huff(dct)? as u32;
                    if s > 11 {
                        return Err(err(format!("DC magnitude category {s} out of range")));
                    }
                    pred[si] += r.receive_extend(s);
                    blk[0] = pred[si];
                    let mut k = 1;
                    while k < 64 {
                        let rs = r.huff(act)?;
                        let (run, s) = ((rs >> 4) as usize, (rs & 15) as u32);
                        if s == 0 {
                            if run == 15 {
                                k += 16;
                                continue;
                            }
                            break;
                        }
                        k += run;
                        if k > 63 {
                            return Err(err("AC coefficients run past the end of a block"));
                        }
                        blk[ZIGZAG[k]] = r.receive_extend(s);
                        k += 1;
                    }
                }
            }
        }
    }
    Ok(r.pos)
}
