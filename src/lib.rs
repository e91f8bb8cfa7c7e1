//! deephide: unlearnable image data sets by semantic deep hiding, on a hand-written compute engine.

pub mod autograd;
pub mod bench;
pub mod countermeasures;
pub mod cpu;
pub mod data;
pub mod backend;
pub mod device;
pub mod dtype;
pub mod error;
pub mod eval;
pub mod gradcheck;
pub mod hiding;
pub mod image_io;
pub mod models;
pub mod nn;
pub mod optim;
pub mod plot;
pub mod poison;
pub mod profile;
pub mod progress;
pub mod metrics;
pub mod ops;
pub mod rng;
pub mod safetensors_io;
pub mod semantic;
pub mod shape;
pub mod storage;
pub mod tensor;
pub mod train;

pub use autograd::{no_grad, NoGradGuard};
pub use device::Device;
pub use dtype::{DType, Float};
pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::{live_tensor_count, Tensor};
