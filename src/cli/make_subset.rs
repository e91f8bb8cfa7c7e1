//! `deephide make-subset`: write a class-balanced subset of an IDX data set (how the bundled
//! `data/fashion-mnist-subset` was made from the full Fashion-MNIST).

use std::path::PathBuf;

use clap::Args;

use deephide::data::bundled;

#[derive(Args)]
pub struct MakeSubsetArgs {
    /// Directory with the four gzip IDX files of the full data set.
    #[arg(long, default_value = bundled::FULL_DIR)]
    from: PathBuf,
    /// Output directory (gzip IDX files).
    #[arg(long)]
    out: PathBuf,
    /// Training images per class (the first ones of each class, in file order).
    #[arg(long, default_value_t = bundled::TRAIN_PER_CLASS)]
    train_per_class: usize,
    /// Test images per class.
    #[arg(long, default_value_t = bundled::TEST_PER_CLASS)]
    test_per_class: usize,
}

pub fn run(a: MakeSubsetArgs) -> deephide::Result<bool> {
    bundled::make_subset(&a.from, &a.out, a.train_per_class, a.test_per_class)?;
    println!(
        "wrote {} train and {} test images per class from {} to {}",
        a.train_per_class,
        a.test_per_class,
        a.from.display(),
        a.out.display()
    );
    Ok(true)
}
