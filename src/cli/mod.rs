//! Subcommands of the `deephide` binary, one file each.

pub mod bench;
pub mod evaluate;
pub mod gradcheck;
pub mod hide;
pub mod make_subset;
pub mod poison;
pub mod kernels;
pub mod profile;
pub mod semantic;
pub mod train;
pub mod train_features;

/// Size the global thread pool (once, before any parallel work).
pub fn set_threads(n: usize) -> deephide::Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global()
        .map_err(|e| deephide::Error::msg(format!("cannot set {n} threads: {e}")))
}

/// A trained classifier as LFC's frozen feature extractor G: evaluation mode, no gradients for its own
/// parameters, on `device`.
pub fn load_feature_extractor(path: &std::path::Path, device: &deephide::Device) -> deephide::Result<Box<dyn deephide::hiding::Embedder>> {
    let (model, _) = deephide::models::load(path)?;
    model.set_training(false);
    // Buffers too: evaluation-mode batch norm reads the running statistics on the device.
    deephide::nn::module::Module::to_device(&model, device)?;
    for p in model.parameters() {
        let _ = p.clone().requires_grad_(false);
    }
    let e: Box<dyn deephide::hiding::Embedder> = model;
    Ok(e)
}
