//! The pipeline cache: a compute pipeline and its bind group layout per kernel, built on first
//! use.

use std::borrow::Cow;
use std::sync::Arc;

use super::precompile::PrecompileJob;
use super::{lock, Device};
use crate::error::{Error, Result};
use crate::reflect;

/// Whether a kernel's storage binding is read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One storage binding of a kernel entry point: the WGSL variable's name and its access. A
/// kernel declares the bindings its entry point uses, in the order its dispatches pass the
/// buffers; each is found in the WGSL by name (its `@binding` number, in group 0, is whatever
/// the WGSL says; binding 0 is the parameter struct).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The WGSL variable's name.
    pub name: &'static str,
    /// `var<storage, read>` or `var<storage, read_write>`.
    pub access: Access,
}

impl Binding {
    /// A `var<storage, read>` binding.
    pub const fn read(name: &'static str) -> Binding {
        Binding {
            name,
            access: Access::Read,
        }
    }
    /// A `var<storage, read_write>` binding (the kernel writes it).
    pub const fn write(name: &'static str) -> Binding {
        Binding {
            name,
            access: Access::ReadWrite,
        }
    }
}

/// A compiled compute pipeline and its bind group layout.
pub(crate) struct Pipeline {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    pub(super) label: String,
    /// The declared bindings, in dispatch order.
    pub(super) bindings: Vec<Binding>,
    /// Each declared binding's `@binding` number in the WGSL.
    pub(super) slots: Vec<u32>,
}

/// Everything needed to build a pipeline on a cache miss.
pub(crate) struct KernelSource<'a> {
    pub label: &'a str,
    pub source: Cow<'a, str>,
    pub entry: &'a str,
    pub constants: &'a [(&'a str, f64)],
    pub bindings: &'a [Binding],
}

/// Builds the compute pipeline and bind group layout of `src` (its source with the prelude in
/// front, each declared binding at its `slots` number) on `d`.
pub(super) fn build(
    d: &wgpu::Device,
    src: &KernelSource<'_>,
    slots: &[u32],
) -> (wgpu::ComputePipeline, wgpu::BindGroupLayout) {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = std::iter::once(wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    })
    .chain(
        src.bindings
            .iter()
            .zip(slots)
            .map(|(b, &slot)| wgpu::BindGroupLayoutEntry {
                binding: slot,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: b.access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }),
    )
    .collect();
    let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(src.label),
        entries: &entries,
    });
    let pl = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(src.label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(src.label),
        source: wgpu::ShaderSource::Wgsl(src.source.as_ref().into()),
    });
    let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(src.label),
        layout: Some(&pl),
        module: &module,
        entry_point: Some(src.entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: src.constants,
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    (pipeline, layout)
}

impl Device {
    /// The cached pipeline for `key`, built from `make()` on first use.
    pub(crate) fn pipeline<'a>(
        &self,
        key: &str,
        make: impl FnOnce() -> KernelSource<'a>,
    ) -> Result<Arc<Pipeline>> {
        if let Some(p) = lock(&self.inner.pipelines).get(key) {
            return Ok(p.clone());
        }
        let mut src = make();
        src.source = Cow::Owned(crate::ops::with_prelude(&src.source));
        let slots =
            reflect::binding_slots(&src.source, src.entry, src.bindings).map_err(|message| {
                Error::Validation {
                    context: format!("{}.{}", src.label, src.entry),
                    message,
                }
            })?;
        let built = self.scoped(src.label, 0, || {
            let (pipeline, layout) = build(&self.inner.wgpu, &src, &slots);
            Pipeline {
                pipeline,
                layout,
                label: format!("{}.{}", src.label, src.entry),
                bindings: src.bindings.to_vec(),
                slots: slots.clone(),
            }
        })?;
        if let Some(pre) = &self.inner.precompiler {
            pre.submit(PrecompileJob {
                label: src.label.to_string(),
                source: src.source.into_owned(),
                entry: src.entry.to_string(),
                constants: src
                    .constants
                    .iter()
                    .map(|&(k, v)| (k.to_string(), v))
                    .collect(),
                bindings: src.bindings.to_vec(),
                slots,
            });
        }
        let p = Arc::new(built);
        lock(&self.inner.pipelines).insert(key.to_string(), p.clone());
        Ok(p)
    }

    /// Whether the pipeline cache holds `key`.
    pub(crate) fn has_pipeline(&self, key: &str) -> bool {
        lock(&self.inner.pipelines).contains_key(key)
    }

    /// The labels of the pipelines built so far (`family.entry`, the label wgpu and capture
    /// tools such as RenderDoc show for the pipeline, its layouts and its bind groups), sorted.
    pub fn pipeline_labels(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.inner.pipelines)
            .values()
            .map(|p| p.label.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Number of pipelines built so far.
    pub fn pipeline_count(&self) -> usize {
        lock(&self.inner.pipelines).len()
    }
}
