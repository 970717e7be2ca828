//! Ops: each module holds an op family's shape checks, forward dispatch and backward rule.

pub mod attention;
pub mod conv;
pub mod conv_regblock;
pub mod conv_subgroup;
pub mod diffusion;
pub mod elementwise;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod matmul_subgroup;
pub mod norm;
pub mod precision;
pub mod reduce;
pub mod resample;
pub mod sources;
pub mod template;

use std::sync::Arc;

use crate::device::{Device, KernelSource, Pipeline};
use crate::error::{Error, Result};
use crate::ops::sources::StaticKernel;
use crate::tensor::{DType, Tensor};

pub use elementwise::{BinaryOp, UnaryOp};

/// The WGSL helpers (`gid`, `sigmoid`, `silu`, the workgroup tree reductions) the pipeline
/// loader puts in front of every kernel source (`shaders/prelude.wgsl`).
pub const PRELUDE: &str = include_str!("../../../shaders/prelude.wgsl");

/// A kernel source as it is compiled: the prelude, then the kernel.
pub fn with_prelude(kernel: &str) -> String {
    format!("{PRELUDE}\n{kernel}")
}

/// Workgroups for `threads` threads in groups of `wg`, spread over x and y (x ≤ 65535); the
/// prelude's `gid(wid, nwg, lid)` gives each thread's flat index in such a grid (for `wg` 256).
pub fn grid(threads: usize, wg: usize) -> [u32; 3] {
    let groups = threads.div_ceil(wg).max(1);
    let x = groups.min(65535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// The cached pipeline of entry point `entry` of the static kernel file `file`, with override
/// constants; its bindings are the ones `file`'s table declares.
pub(crate) fn kernel(
    device: &Device,
    file: &'static StaticKernel,
    entry: &'static str,
    constants: &[(&'static str, f64)],
) -> Result<Arc<Pipeline>> {
    kernel_reading(device, file, entry, constants, &[])
}

/// [`kernel`] with the storage bindings `f16` read as f16 ([`template::with_f16_inputs`]).
pub(crate) fn kernel_reading(
    device: &Device,
    file: &'static StaticKernel,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    f16: &[&'static str],
) -> Result<Arc<Pipeline>> {
    kernel_f16(device, file, entry, constants, (f16, &[]))
}

/// [`kernel`] with the storage bindings `reads` read as f16 ([`template::with_f16_inputs`]) and
/// the vec4 outputs `writes` written as f16 ([`template::with_f16_outputs`]).
pub(crate) fn kernel_f16(
    device: &Device,
    file: &'static StaticKernel,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    (reads, writes): (&[&'static str], &[&'static str]),
) -> Result<Arc<Pipeline>> {
    let Some(declared) = file.entry(entry) else {
        return Err(Error::Validation {
            context: format!("{}.{entry}", file.label),
            message: format!("no entry point `{entry}` in the table of {}", file.file),
        });
    };
    let mut key = format!("{}.{entry}", file.label);
    for (k, v) in constants {
        key.push_str(&format!(".{k}={v}"));
    }
    let key = template::f16_outputs_key(template::f16_inputs_key(key, reads), writes);
    let consts: Vec<(&'static str, f64)> = constants.to_vec();
    let (reads, writes) = (reads.to_vec(), writes.to_vec());
    device.pipeline(&key, move || KernelSource {
        label: file.label,
        source: if reads.is_empty() && writes.is_empty() {
            file.source.into()
        } else {
            template::with_f16_outputs(&template::with_f16_inputs(file.source, &reads), &writes)
                .into()
        },
        entry,
        constants: Box::leak(consts.into_boxed_slice()),
        bindings: declared.bindings,
    })
}

/// The bindings among `inputs` whose tensors are f16 (what [`kernel_reading`] reads as f16).
pub(crate) fn f16_bindings(inputs: &[(&'static str, &Tensor)]) -> Vec<&'static str> {
    inputs
        .iter()
        .filter(|(_, t)| t.dtype() == DType::F16)
        .map(|(name, _)| *name)
        .collect()
}

/// Checks that every tensor is f32 and on the first one's device.
pub(crate) fn check_f32(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    let dev = ts[0].device();
    for t in ts {
        t.expect_dtype(op, DType::F32)?;
        if !t.device().same(dev) {
            return Err(Error::invalid(op, "operands live on different devices"));
        }
    }
    Ok(())
}

/// Checks that `ts` are f32 or f16 tensors on one device (the operands of ops that read f16
/// inputs, see [`template::with_f16_inputs`]).
pub(crate) fn check_float(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    let dev = ts[0].device();
    for t in ts {
        if !matches!(t.dtype(), DType::F32 | DType::F16) {
            return Err(Error::invalid(
                op,
                format!("expected an F32 or F16 tensor, got {:?}", t.dtype()),
            ));
        }
        if !t.device().same(dev) {
            return Err(Error::invalid(op, "operands live on different devices"));
        }
    }
    Ok(())
}

/// A tensor filled with `value`.
pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Tensor> {
    elementwise::fill(device, shape, value)
}

/// The layouts of every kernel parameter struct the engine's shaders use (checked against the
/// WGSL structs of the same names by `engine/tests/shaders.rs`).
pub fn param_layouts() -> Vec<crate::params::ParamLayout> {
    use crate::loss_scale::{ScaledClipParams, ScalerParams};
    use crate::optim::{AdamwParams, ClipParams, EmaParams, SumSquaresParams};
    use crate::params::KernelParams;
    vec![
        norm::NormParams::LAYOUT,
        attention::AttentionParams::LAYOUT,
        conv::ConvParams::LAYOUT,
        matmul::MatmulParams::LAYOUT,
        diffusion::RandnParams::LAYOUT,
        diffusion::StepParams::LAYOUT,
        diffusion::ScaleByTableParams::LAYOUT,
        diffusion::EmbeddingParams::LAYOUT,
        elementwise::UnaryParams::LAYOUT,
        elementwise::FillParams::LAYOUT,
        elementwise::BinaryParams::LAYOUT,
        precision::CastParams::LAYOUT,
        layout::StridedCopyParams::LAYOUT,
        layout::AxisCopyParams::LAYOUT,
        layout::GatherParams::LAYOUT,
        reduce::ReduceParams::LAYOUT,
        reduce::SoftmaxParams::LAYOUT,
        loss::CrossEntropyParams::LAYOUT,
        loss::MseParams::LAYOUT,
        resample::ResampleParams::LAYOUT,
        conv::ConvWeightsParams::LAYOUT,
        AdamwParams::LAYOUT,
        EmaParams::LAYOUT,
        SumSquaresParams::LAYOUT,
        ClipParams::LAYOUT,
        ScaledClipParams::LAYOUT,
        ScalerParams::LAYOUT,
    ]
}
