//! Plain-Rust reference of every op, forward and backward, in f64: the ground truth of the GPU
//! kernels' tests, itself checked against finite differences. One file per op family, beside
//! `ops/<family>.rs`; everything is re-exported here (`cpu::conv2d`, `cpu::group_norm_backward`).

pub mod attention;
pub mod conv;
pub mod diffusion;
pub mod elementwise;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod precision;
pub mod reduce;
pub mod resample;

pub use attention::*;
pub use conv::*;
pub use diffusion::*;
pub use elementwise::*;
pub use layout::*;
pub use loss::*;
pub use matmul::*;
pub use norm::*;
pub use optim::*;
pub use reduce::*;
pub use resample::*;
