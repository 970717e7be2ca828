//! mtdiff-engine: a small GPU compute engine on wgpu — tensors in pooled GPU buffers, WGSL
//! kernels recorded into one pending command encoder, reverse-mode autodiff and optimizers.
//! It knows nothing of diffusion.
//!
//! ```no_run
//! use mtdiff_engine::{Device, DeviceOptions, Tensor};
//! let dev = Device::new(DeviceOptions::default())?;
//! let w = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?.with_grad();
//! let x = Tensor::from_slice(&dev, &[1.0, 1.0], &[1, 2])?;
//! let loss = x.matmul(&w)?.square()?.mean_all()?;
//! let grads = loss.backward()?;
//! println!("loss {} dw {:?}", loss.to_scalar()?, grads.get(&w).unwrap().to_vec()?);
//! # Ok::<(), mtdiff_engine::Error>(())
//! ```

pub mod arena;
pub mod autodiff;
pub mod cpu;
pub mod custom;
pub mod demo;
pub mod device;
pub mod error;
pub mod interop;
pub mod loss_scale;
pub mod ops;
pub mod optim;
pub mod params;
mod pool;
pub mod reflect;
pub mod rng;
pub mod tensor;

pub use arena::ParamArena;
pub use autodiff::{no_grad, Gradients, NoGradGuard};
pub use custom::{CustomOp, Kernel};
pub use device::{
    adapters, host_memory_room, use_more_software_rasterizer_threads, Access, Binding, Device,
    DeviceInfo, DeviceOptions, DispatchStats, KernelProfile, KernelTime, MatmulStrategy,
};
pub use error::{Error, Result};
pub use interop::{Readback, TensorBuffer, TENSOR_BUFFER_USAGES};
pub use ops::precision::{autocast_f16, Autocast};
pub use pool::PoolStats;
pub use tensor::{DType, Shape, Tensor, TensorId};
/// The wgpu this engine is built on, for applications that share their device with it.
pub use wgpu;
