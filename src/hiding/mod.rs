//! Deep Hiding: the invertible network that hides a semantic image inside every clean image, its losses,
//! training, and weight files.

pub mod em_refine;
pub mod losses;
pub mod model;
pub mod protect;
pub mod shortcut;
pub mod train;
pub mod weights;

pub use losses::{guide_loss, lfc_loss, low_frequency_loss, reveal_loss, Embedder};
pub use model::{AffineCoupling, DenseSubnet, Hidden, HidingConfig, InvertibleHiding};
pub use shortcut::Distortion;
pub use train::{bound_eps_of, train, SecretPool, StepLog, TrainOptions, TrainOutput, TrainReport, ZMode};
pub use em_refine::{em_refine, EmRefineOptions, EmRefineReport};
pub use protect::{measure_protected, protect_dataset, PerturbationStats};
