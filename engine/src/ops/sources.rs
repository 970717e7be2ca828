//! Every kernel source the engine compiles: the static files of `shaders/` and each variant its
//! emitters generate, by name. `mtdiff kernels --dump DIR` writes them as compiled (prelude in
//! front); `engine/tests/kernel_snapshots.rs` keeps the generated ones under review.

use crate::ops::attention::{attention_source, vec_queries_per_thread};
use crate::ops::conv_subgroup::ConvSubgroupVariant;
use crate::ops::matmul::RegBlockVariant;
use crate::ops::matmul_subgroup::SubgroupVariant;

/// One kernel source: a file name (`…wgsl`) and its WGSL, without the prelude.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFile {
    /// The file name, e.g. `norm.wgsl` or `matmul_regblock.ta0tb1va1vb0.wgsl`.
    pub name: String,
    /// The WGSL text (the loader adds [`crate::ops::PRELUDE`] in front).
    pub source: String,
    /// Whether an emitter generated it (else it is a file of `shaders/`).
    pub generated: bool,
}

/// The static kernel files compiled as they are (with override constants); the templates
/// (`attention`, `matmul_regblock`, `matmul_subgroup`, `conv2d_subgroup`) are compiled only
/// through their generated variants, so they are not here.
pub const STATIC_KERNELS: &[(&str, &str)] = &[
    ("conv2d.wgsl", crate::ops::conv::SRC),
    ("conv2d_weights.wgsl", crate::ops::conv::WEIGHTS_SRC),
    ("diffusion.wgsl", crate::ops::diffusion::SRC),
    ("elementwise.wgsl", crate::ops::elementwise::SRC),
    ("layout.wgsl", crate::ops::layout::SRC),
    ("loss.wgsl", crate::ops::loss::SRC),
    ("matmul_tiled.wgsl", crate::ops::matmul::TILED),
    ("norm.wgsl", crate::ops::norm::SRC),
    ("optim.wgsl", crate::optim::SRC),
    ("reduce.wgsl", crate::ops::reduce::SRC),
    ("resample.wgsl", crate::ops::resample::SRC),
];

/// The attention head dimensions whose generated kernels are listed (any D compiles; these are
/// the ones the presets and tests use).
pub const ATTENTION_HEAD_DIMS: &[usize] = &[8, 16, 32, 64];

/// Every generated kernel variant, named by its pipeline key, in a fixed order.
pub fn generated_kernels() -> Vec<KernelFile> {
    let mut out = Vec::new();
    let mut push = |name: String, source: String| {
        out.push(KernelFile {
            name: format!("{name}.wgsl"),
            source,
            generated: true,
        })
    };
    for v in RegBlockVariant::all() {
        push(v.key(), v.source());
    }
    for v in SubgroupVariant::all() {
        push(v.key(), v.source());
    }
    for v in ConvSubgroupVariant::all() {
        push(v.key(), v.source());
    }
    for &d in ATTENTION_HEAD_DIMS {
        let mut tqs = vec![
            vec_queries_per_thread(d, true),
            vec_queries_per_thread(d, false),
        ];
        tqs.dedup();
        for tq in tqs {
            push(format!("attention.d{d}.tq{tq}"), attention_source(d, tq));
        }
    }
    out
}

/// Every kernel source the engine compiles: the static files, then the generated variants.
pub fn all_kernels() -> Vec<KernelFile> {
    let mut out: Vec<KernelFile> = STATIC_KERNELS
        .iter()
        .map(|(name, source)| KernelFile {
            name: (*name).to_string(),
            source: (*source).to_string(),
            generated: false,
        })
        .collect();
    out.extend(generated_kernels());
    out
}
