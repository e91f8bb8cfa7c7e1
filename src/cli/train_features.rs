//! `deephide train-features`: train the ResNet-18 feature extractor (the frozen G of Latent Feature
//! Concentration) on clean data and save it with its configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use deephide::data::{balanced_subset, DataSpec, Split};
use deephide::models::{self, Arch, ModelConfig};
use deephide::safetensors_io::SaveDType;
use deephide::train::{self, TrainConfig};
use deephide::{Error, Rng};

#[derive(Args)]
pub struct TrainFeaturesArgs {
    /// Clean training data (train split; its test split, when present, is used to report accuracy).
    #[arg(long)]
    data: String,
    /// Output safetensors file (a .md record of the training is written beside it).
    #[arg(long)]
    out: PathBuf,
    /// Base width of ResNet-18 (64 is the standard network; 16 trains about 16x faster on a CPU).
    #[arg(long, default_value_t = 16)]
    width: usize,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Train on a class-balanced subset of this many images.
    #[arg(long)]
    train_subset: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// f32 or f16 on disk.
    #[arg(long, default_value = "f32")]
    dtype: String,
    #[arg(long)]
    quiet: bool,
    /// cpu, cuda, cuda:N, wgpu or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(a: TrainFeaturesArgs) -> deephide::Result<bool> {
    let dtype = match a.dtype.as_str() {
        "f32" => SaveDType::F32,
        "f16" => SaveDType::F16,
        "bf16" => SaveDType::BF16,
        o => return Err(Error::msg(format!("unknown --dtype `{o}`: expected f32, f16 or bf16"))),
    };
    if a.epochs == 0 || a.width == 0 {
        return Err(Error::msg("--epochs and --width must be at least 1"));
    }
    let spec = DataSpec::parse(&a.data).map_err(|e| Error::msg(format!("--data: {e}")))?;
    let train_set = spec.load(Split::Train)?;
    let train_set = balanced_subset(&train_set, a.train_subset, &mut Rng::new(a.seed));
    let test_set = spec.load(Split::Test).ok();
    if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let cfg = ModelConfig::new(Arch::ResNet18, train_set.channels, (train_set.height, train_set.width), train_set.classes)
        .with_width(a.width);
    let model = models::build(&cfg, &mut Rng::new(a.seed ^ 0x6665_6174))?;
    let device = deephide::Device::parse(&a.device)?;
    let tcfg = TrainConfig {
        epochs: a.epochs,
        seed: a.seed,
        progress: !a.quiet,
        label: "train-features".into(),
        device,
        ..TrainConfig::default()
    };
    let start = Instant::now();
    let test_ref = test_set.as_ref().map(|t| t as &dyn deephide::data::ImageSource);
    let r = train::train(&*model, &train_set, test_ref, &tcfg, None, &mut |_| Ok(()))?;
    let secs = start.elapsed().as_secs_f64();
    let steps = r.epochs.len() * train_set.len().div_ceil(tcfg.batch_size);
    let acc = r.final_test_acc();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut meta = BTreeMap::new();
    meta.insert("trained_on".to_string(), format!("{} ({} images)", train_set.name, train_set.len()));
    meta.insert("epochs".to_string(), a.epochs.to_string());
    meta.insert("steps".to_string(), steps.to_string());
    meta.insert("seconds".to_string(), format!("{secs:.1}"));
    meta.insert("command".to_string(), command.clone());
    if let Some(acc) = acc {
        meta.insert("test_acc".to_string(), format!("{acc:.4}"));
    }
    models::save(&*model, &a.out, &meta, dtype)?;
    let record = a.out.with_extension("md");
    let per_epoch: Vec<String> = r.test_accs().iter().map(|x| format!("{:.1}", x * 100.0)).collect();
    let text = format!(
        "# {}\n\nResNet-18 (CIFAR variant) feature extractor, width {}, {} input channels, {}x{} images, {} classes.\n\n\
         - command: `{command}`\n- data: {} ({} images)\n- epochs: {}, steps: {steps}, batch {}, SGD lr 0.1 momentum 0.9 wd 5e-4, cosine, clip 5\n\
         - wall time: {secs:.0} s\n- test accuracy per epoch (%): {}\n- saved as {}\n",
        a.out.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
        a.width,
        cfg.in_channels,
        cfg.image_size.0,
        cfg.image_size.1,
        cfg.classes,
        train_set.name,
        train_set.len(),
        a.epochs,
        tcfg.batch_size,
        if per_epoch.is_empty() { "-".to_string() } else { per_epoch.join(", ") },
        a.dtype
    );
    deephide::data::idx::write_atomic(&record, text.as_bytes())?;
    match acc {
        Some(acc) => println!("saved {} (test accuracy {:.2}%, {secs:.0} s); record {}", a.out.display(), acc * 100.0, record.display()),
        None => println!("saved {} ({secs:.0} s); record {}", a.out.display(), record.display()),
    }
    Ok(true)
}
