//! One-pixel shortcut (Wu et al., ICLR 2023): every image of class k gets one pixel set to a fixed colour at
//! a fixed position; position and colour are chosen per class so that the change is large and the same for
//! every image of the class, which a network picks up before anything else.
//!
//! As in the paper's search (and APBench): for class k, every position p and every colour c with channel
//! values in {0, 1} is scored by `mean(D) / std(D)` with `D = |c - x_p|` over all images of the class and all
//! channels; the best (position, colour) pair not already taken by an earlier class wins, and the pixel is
//! *replaced* by the colour (an L0 budget of one pixel; L-inf is unbounded by design).

use crate::data::Dataset;
use crate::eval::json::Json;
use crate::{Error, Result};

/// Per class: (position index `row * w + col`, colour as one 0/255 value per channel).
pub type Choice = (usize, Vec<u8>);

/// The search: one (position, colour) per class.
pub fn search(ds: &Dataset) -> Result<Vec<Choice>> {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    if c > 16 {
        return Err(Error::msg(format!("ops: {c} channels make too many candidate colours")));
    }
    let hw = h * w;
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut out = Vec::with_capacity(ds.classes);
    for k in 0..ds.classes {
        let members: Vec<usize> = (0..ds.len()).filter(|&i| ds.labels[i] == k).collect();
        let mut best: Option<(f64, usize, usize)> = None;
        for p in 0..hw {
            for colour in 0..(1usize << c) {
                if taken.contains(&(p, colour)) {
                    continue;
                }
                let (mut s, mut s2, mut m) = (0.0f64, 0.0f64, 0usize);
                for &i in &members {
                    let img = ds.image(i);
                    for ch in 0..c {
                        let target = ((colour >> (c - 1 - ch)) & 1) as f64;
                        let d = (target - img[ch * hw + p] as f64 / 255.0).abs();
                        s += d;
                        s2 += d * d;
                        m += 1;
                    }
                }
                let score = if m == 0 {
                    0.0
                } else {
                    let mean = s / m as f64;
                    let std = (s2 / m as f64 - mean * mean).max(0.0).sqrt();
                    // A change that is the same for every image (std 0) is the ideal shortcut.
                    mean / std.max(1e-6)
                };
                if best.is_none_or(|(b, _, _)| score > b) {
                    best = Some((score, p, colour));
                }
            }
        }
        let (_, p, colour) = best.ok_or_else(|| Error::msg("ops: no candidate pixel left"))?;
        taken.push((p, colour));
        out.push((p, (0..c).map(|ch| if (colour >> (c - 1 - ch)) & 1 == 1 { 255 } else { 0 }).collect()));
    }
    Ok(out)
}

pub fn poison(ds: &Dataset) -> Result<(Dataset, Vec<(String, Json)>)> {
    let choices = search(ds)?;
    let (c, hw) = (ds.channels, ds.height * ds.width);
    let mut images = ds.images.clone();
    let per = ds.image_len();
    for i in 0..ds.len() {
        let (p, colour) = &choices[ds.labels[i]];
        for ch in 0..c {
            images[i * per + ch * hw + p] = colour[ch];
        }
    }
    let json = Json::Arr(
        choices
            .iter()
            .map(|(p, col)| {
                Json::obj(vec![
                    ("row", Json::Num((p / ds.width) as f64)),
                    ("col", Json::Num((p % ds.width) as f64)),
                    ("colour", Json::Arr(col.iter().map(|&v| Json::Num(v as f64)).collect())),
                ])
            })
            .collect(),
    );
    let out = Dataset::new(format!("{} [ops]", ds.name), images, ds.labels.clone(), (c, ds.height, ds.width), ds.classes)?;
    Ok((out, vec![("pixels".to_string(), json)]))
}
