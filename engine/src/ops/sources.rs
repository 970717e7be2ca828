//! Every kernel source the engine compiles: the static files of `shaders/` and each variant its
//! emitters generate, by name. `mtdiff kernels --dump DIR` writes them as compiled (prelude in
//! front); `engine/tests/kernel_snapshots.rs` keeps the generated ones under review.

use crate::device::Binding;
use crate::ops::attention::{attention_source, vec_queries_per_thread};
use crate::ops::conv_regblock::ConvRegBlockVariant;
use crate::ops::conv_subgroup::ConvSubgroupVariant;
use crate::ops::matmul::RegBlockVariant;
use crate::ops::matmul_subgroup::SubgroupVariant;

/// One entry point of a kernel and the storage bindings it uses, in the order its dispatches
/// pass the buffers (each found in the WGSL by name when the pipeline is built).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryPoint {
    /// The `@compute` function's name.
    pub name: &'static str,
    /// Its storage bindings, in dispatch order.
    pub bindings: &'static [Binding],
}

/// An [`EntryPoint`] (for the kernel tables).
pub(crate) const fn entry(name: &'static str, bindings: &'static [Binding]) -> EntryPoint {
    EntryPoint { name, bindings }
}

/// [`Binding::read`] (for the kernel tables).
pub(crate) const fn read(name: &'static str) -> Binding {
    Binding::read(name)
}

/// [`Binding::write`] (for the kernel tables).
pub(crate) const fn write(name: &'static str) -> Binding {
    Binding::write(name)
}

/// A static kernel file of `shaders/` and what it declares: each op module has one table per
/// file it compiles, beside its source.
#[derive(Clone, Copy, Debug)]
pub struct StaticKernel {
    /// The label of its pipelines (in profiles, errors and capture tools).
    pub label: &'static str,
    /// The file name in `shaders/`.
    pub file: &'static str,
    /// The WGSL text (the loader adds [`crate::ops::PRELUDE`] in front).
    pub source: &'static str,
    /// Its entry points.
    pub entries: &'static [EntryPoint],
}

impl StaticKernel {
    /// The entry point `name`, if the table declares it.
    pub fn entry(&self, name: &str) -> Option<&EntryPoint> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// One kernel source: a file name (`…wgsl`) and its WGSL, without the prelude.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFile {
    /// The file name, e.g. `norm.wgsl` or `matmul_regblock.ta0tb1va1vb0.wgsl`.
    pub name: String,
    /// The WGSL text (the loader adds [`crate::ops::PRELUDE`] in front).
    pub source: String,
    /// Whether an emitter generated it (else it is a file of `shaders/`).
    pub generated: bool,
    /// Its entry points and the bindings each uses.
    pub entries: Vec<EntryPoint>,
}

/// The static kernel files compiled as they are (with override constants); the templates
/// (`attention`, `matmul_regblock`, `matmul_subgroup`, `conv2d_subgroup`) are compiled only
/// through their generated variants, so they are not here.
pub const STATIC_KERNELS: &[&StaticKernel] = &[
    &crate::ops::conv::WEIGHT_KERNELS,
    &crate::ops::diffusion::KERNELS,
    &crate::ops::elementwise::KERNELS,
    &crate::ops::layout::KERNELS,
    &crate::ops::loss::KERNELS,
    &crate::loss_scale::KERNELS,
    &crate::ops::norm::KERNELS,
    &crate::ops::precision::KERNELS,
    &crate::optim::KERNELS,
    &crate::ops::reduce::KERNELS,
    &crate::ops::resample::KERNELS,
];

/// The attention head dimensions whose generated kernels are listed (any D compiles; these are
/// the ones the presets and tests use).
pub const ATTENTION_HEAD_DIMS: &[usize] = &[8, 16, 32, 64];

/// Every generated kernel variant, named by its pipeline key, in a fixed order.
pub fn generated_kernels() -> Vec<KernelFile> {
    let mut out = Vec::new();
    let mut push = |name: String, source: String, entries: Vec<EntryPoint>| {
        out.push(KernelFile {
            name: format!("{name}.wgsl"),
            source,
            generated: true,
            entries,
        })
    };
    let matmul = |bias| vec![entry("main", crate::ops::matmul::bindings(bias))];
    for bias in [false, true] {
        let source = crate::ops::matmul::tiled_source(bias);
        push(
            format!("matmul_tiled.bias{}", bias as u8),
            source,
            matmul(bias),
        );
    }
    for v in RegBlockVariant::all() {
        push(v.key(), v.source(), matmul(v.bias));
    }
    for v in SubgroupVariant::all() {
        push(v.key(), v.source(), matmul(v.bias));
    }
    for v in ConvRegBlockVariant::all() {
        push(v.key(), v.source(), v.entries().to_vec());
    }
    for v in ConvSubgroupVariant::all() {
        push(v.key(), v.source(), vec![entry("main", v.bindings())]);
    }
    for &d in ATTENTION_HEAD_DIMS {
        let mut tqs = vec![
            vec_queries_per_thread(d, true),
            vec_queries_per_thread(d, false),
        ];
        tqs.dedup();
        for tq in tqs {
            let entries = crate::ops::attention::ENTRIES
                .iter()
                .filter(|e| d.is_multiple_of(4) || e.name != "attention_forward_vec")
                .copied()
                .collect();
            push(
                format!("attention.d{d}.tq{tq}"),
                attention_source(d, tq),
                entries,
            );
        }
    }
    out
}

/// The storage bindings of static kernel files that their ops read as f16 when given f16
/// tensors.
const STATIC_F16_INPUTS: &[(&StaticKernel, &[&str])] = &[
    (
        &crate::ops::elementwise::KERNELS,
        &["ux", "bx", "by", "bdy", "ba", "bb", "va", "vb"],
    ),
    (&crate::ops::reduce::KERNELS, &["ax", "qx"]),
    (&crate::ops::norm::KERNELS, &["fx", "qx", "bx", "wx"]),
];

/// The attention bindings read as f16 when given f16 q, k or v (forward and backward).
const ATTENTION_F16_INPUTS: &[&str] = &["q", "k", "v", "qv", "kv", "vv", "bq", "bk", "bv"];

/// Every variant with f16 inputs: each generated matmul with A, B or both in f16, each conv
/// kernel that reads the input x (forward, weight gradient) with x in f16, and the elementwise,
/// reduction, group-norm and attention kernels with every input they can read as f16 in f16.
/// They are [`crate::ops::template::with_f16_inputs`] applied to sources that are under review
/// (the static files, and [`generated_kernels`]' in the snapshots), so they have no snapshots of
/// their own.
pub fn f16_input_kernels() -> Vec<KernelFile> {
    use crate::ops::template::{
        f16_inputs_key, f16_outputs_key, with_f16_inputs, with_f16_outputs,
    };
    let mut out = Vec::new();
    let mut push = |key: &str, source: &str, f16: &[&str], entries: Vec<EntryPoint>| {
        out.push(KernelFile {
            name: format!("{}.wgsl", f16_inputs_key(key.to_string(), f16)),
            source: with_f16_inputs(source, f16),
            generated: true,
            entries,
        })
    };
    for k in generated_kernels() {
        let key = k.name.trim_end_matches(".wgsl");
        if key.starts_with("matmul_") {
            for f16 in [&["A"][..], &["B"], &["A", "B"]] {
                push(key, &k.source, f16, k.entries.clone());
            }
        } else if key.starts_with("conv2d_regblock.") {
            push(
                key,
                &k.source,
                crate::ops::conv::f16_x(true),
                k.entries.clone(),
            );
        } else if key.starts_with("attention.") {
            push(key, &k.source, ATTENTION_F16_INPUTS, k.entries.clone());
        }
    }
    for v in ConvSubgroupVariant::all() {
        if v.pass != crate::ops::conv_subgroup::ConvPass::Data {
            let source = v.source_reading_f16_x();
            push(
                &v.key(),
                &source,
                crate::ops::conv::f16_x(true),
                vec![entry("main", v.bindings())],
            );
        }
    }
    for (file, f16) in STATIC_F16_INPUTS {
        let key = file.file.trim_end_matches(".wgsl");
        push(key, file.source, f16, file.entries.to_vec());
    }
    // Group norm's quad forward writing f16 (under autocast).
    out.push(KernelFile {
        name: f16_outputs_key("norm.wgsl".into(), &["qy"]),
        source: with_f16_outputs(crate::ops::norm::KERNELS.source, &["qy"]),
        generated: true,
        entries: crate::ops::norm::KERNELS.entries.to_vec(),
    });
    out
}

/// Every kernel source the engine compiles: the static files, the generated variants, then
/// those with f16 inputs.
pub fn all_kernels() -> Vec<KernelFile> {
    let mut out: Vec<KernelFile> = STATIC_KERNELS
        .iter()
        .map(|k| KernelFile {
            name: k.file.to_string(),
            source: k.source.to_string(),
            generated: false,
            entries: k.entries.to_vec(),
        })
        .collect();
    out.extend(generated_kernels());
    out.extend(f16_input_kernels());
    out
}
