//! Every op of the engine, one folder each: forward and backward in `mod.rs`, the CPU kernel in `cpu.rs`,
//! GPU launch code in `cuda.rs` / `wgpu.rs`, the device code in `kernels/<op>.cu` / `shaders/<op>.wgsl`.
//!
//! Primitive ops have kernels per device; composite ops (losses, normalisation, softmax) are built from
//! them in `crate::nn::functional`, so they run wherever their primitives do.

pub mod batch_norm;
pub mod binary;
pub mod concat;
pub mod conv2d;
pub mod haar;
pub mod index_select;
pub mod layout;
pub mod matmul;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod unary;

pub use binary::BinaryOp;
pub use unary::UnaryOp;
