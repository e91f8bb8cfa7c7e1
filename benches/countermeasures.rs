//! Cost of the countermeasures next to training: dataset-level transforms on a Fashion-MNIST-sized set
//! (60,000 x 1 x 28 x 28) and batch augmentations on a CIFAR-sized mini-batch (128 x 3 x 32 x 32):
//! `cargo bench --bench countermeasures`.

use std::time::Instant;

use deephide::countermeasures::{by_name, Countermeasure};
use deephide::data::Dataset;
use deephide::{Rng, Tensor};

fn main() -> deephide::Result<()> {
    let mut rng = Rng::new(13);
    let (n, hw) = (60_000, 28);
    let images = (0..n * hw * hw).map(|_| rng.below(256) as u8).collect();
    let ds = Dataset::new("bench", images, (0..n).map(|i| i % 10).collect(), (1, hw, hw), 10)?;
    for name in ["gaussian-blur", "median-filter", "grayscale", "jpeg10", "jpeg50", "bit-depth-2", "down-up", "wavelet-lowpass"] {
        let Countermeasure::Dataset(t) = by_name(name)? else { unreachable!("{name} is a dataset transform") };
        let start = Instant::now();
        t.apply(&ds, &mut Rng::new(0))?;
        println!("{name:<16} {:>8.2} s for 60,000 x 28 x 28", start.elapsed().as_secs_f64());
    }
    let x = Tensor::rand_uniform(&[128, 3, 32, 32], 0.0, 1.0, deephide::DType::F32, &mut rng);
    let labels: Vec<usize> = (0..128).map(|i| i % 10).collect();
    for name in ["cutout", "cutmix", "mixup", "autoaugment", "gaussian-noise", "ueraser"] {
        let Countermeasure::Batch(aug) = by_name(name)? else { unreachable!("{name} is a batch augmentation") };
        let start = Instant::now();
        for s in 0..10 {
            aug.apply(&x, &labels, 10, &mut Rng::new(s))?;
        }
        println!("{name:<16} {:>8.2} ms per 128 x 3 x 32 x 32 batch", start.elapsed().as_secs_f64() * 100.0);
    }
    Ok(())
}
