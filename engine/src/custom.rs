//! Kernels and ops defined outside the engine, in the spirit of candle's `CustomOp1/2/3`.
//!
//! A [`Kernel`] is a WGSL compute entry point with its typed parameters (a
//! [`kernel_params!`](crate::kernel_params) struct) and its named storage bindings. It dispatches
//! on tensors into the device's pending command buffer, batched like every engine op, through the
//! device's pipeline cache; on first use its WGSL is checked against the Rust declaration (the
//! parameter struct's members and offsets, each binding's name and access). A
//! [`CustomOp`] pairs a forward (its own kernels or engine ops) with a backward, and
//! [`Tensor::apply_op`] runs it as an op that takes part in autodiff. See
//! `engine/examples/custom_op.rs`.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::device::{Access, Binding, KernelSource};
use crate::error::{Error, Result};
use crate::params::KernelParams;
use crate::reflect;
use crate::tensor::Tensor;

/// A WGSL compute kernel defined outside the engine, with parameters `P`.
///
/// The source gets the engine's prelude (`gid`, `sigmoid`, `silu`, `tree_sum`, …) in front and
/// declares `@group(0) @binding(0) var<uniform> params: P` (the WGSL struct named and laid out
/// like `P`) and one storage binding per declared [`Binding`], found by name (any `@binding`
/// number but 0).
pub struct Kernel<P: KernelParams> {
    label: &'static str,
    source: Cow<'static, str>,
    entry: &'static str,
    constants: Vec<(&'static str, f64)>,
    bindings: Vec<Binding>,
    /// The pipeline cache key, kept current by `new` and `with_constant`.
    key: String,
    _params: PhantomData<fn(&P)>,
}

impl<P: KernelParams> Kernel<P> {
    /// The kernel `entry` of `source`, labelled `label` in profiles, errors and capture tools.
    pub fn new(
        label: &'static str,
        source: impl Into<Cow<'static, str>>,
        entry: &'static str,
        bindings: &[Binding],
    ) -> Kernel<P> {
        let mut kernel = Kernel {
            label,
            source: source.into(),
            entry,
            constants: Vec::new(),
            bindings: bindings.to_vec(),
            key: String::new(),
            _params: PhantomData,
        };
        kernel.key = kernel.make_key();
        kernel
    }

    /// Sets the WGSL `override` constant `name` (a pipeline of its own per value).
    pub fn with_constant(mut self, name: &'static str, value: f64) -> Kernel<P> {
        self.constants.retain(|(n, _)| *n != name);
        self.constants.push((name, value));
        self.key = self.make_key();
        self
    }

    /// The kernel's label.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// The pipeline cache key: the label, the entry and a hash of everything that shapes the
    /// pipeline, so two kernels with one label never share a pipeline by mistake.
    fn make_key(&self) -> String {
        let mut h = DefaultHasher::new();
        self.source.hash(&mut h);
        self.entry.hash(&mut h);
        P::LAYOUT.name.hash(&mut h);
        for f in P::LAYOUT.fields {
            (f.name, f.offset).hash(&mut h);
        }
        for (n, v) in &self.constants {
            n.hash(&mut h);
            v.to_bits().hash(&mut h);
        }
        for b in &self.bindings {
            b.name.hash(&mut h);
            (b.access == Access::Read).hash(&mut h);
        }
        format!("custom.{}.{}.{:016x}", self.label, self.entry, h.finish())
    }

    /// Checks the WGSL against the declaration: the entry point and the parameter struct (the
    /// pipeline cache checks the storage bindings, as for every kernel).
    fn check_source(&self) -> Result<()> {
        let fail = |message: String| Err(Error::invalid(self.label, message));
        let module = match reflect::parse(&crate::ops::with_prelude(&self.source)) {
            Ok(m) => m,
            Err(e) => return fail(format!("the WGSL does not validate:\n{e}")),
        };
        if !module.has_compute_entry(self.entry) {
            return fail(format!(
                "the WGSL has no compute entry point `{}`",
                self.entry
            ));
        }
        match module.check_params(Some(self.entry), &[P::LAYOUT]) {
            Ok(1) => {}
            Ok(n) => {
                return fail(format!(
                    "entry point `{}` uses {n} uniform parameter structs; use exactly one, \
                     `@group(0) @binding(0) var<uniform> params: {};`",
                    self.entry,
                    P::LAYOUT.name
                ))
            }
            Err(e) => return fail(e),
        }
        Ok(())
    }

    /// Records one dispatch of `workgroups` workgroups with `params`, binding `args` to the
    /// declared bindings in order. Written tensors must not require grad (write into a fresh
    /// [`Tensor::empty`]); all tensors live on one device.
    pub fn dispatch(&self, params: &P, args: &[&Tensor], workgroups: [u32; 3]) -> Result<()> {
        let names: Vec<&str> = self.bindings.iter().map(|b| b.name).collect();
        if args.len() != self.bindings.len() {
            return Err(Error::invalid(
                self.label,
                format!(
                    "{} tensors given for the {} bindings {names:?}",
                    args.len(),
                    self.bindings.len()
                ),
            ));
        }
        let Some(first) = args.first() else {
            return Err(Error::invalid(
                self.label,
                "a kernel needs at least one storage binding",
            ));
        };
        let dev = first.device();
        for (b, t) in self.bindings.iter().zip(args) {
            if !t.device().same(dev) {
                return Err(Error::invalid(
                    self.label,
                    format!(
                        "binding `{}` is on another device than `{}`",
                        b.name, names[0]
                    ),
                ));
            }
            if b.access == Access::ReadWrite && t.requires_grad() {
                return Err(Error::invalid(
                    self.label,
                    format!(
                        "binding `{}` writes a tensor that requires grad; write into a fresh \
                         Tensor::empty and return it from CustomOp::forward",
                        b.name
                    ),
                ));
            }
        }
        if !dev.has_pipeline(&self.key) {
            self.check_source()?;
        }
        let pipeline = dev.pipeline(&self.key, || KernelSource {
            label: self.label,
            source: Cow::Owned(self.source.to_string()),
            entry: self.entry,
            constants: Box::leak(self.constants.clone().into_boxed_slice()),
            bindings: &self.bindings,
        })?;
        let bound: Vec<_> = args.iter().map(|t| t.arg()).collect();
        dev.dispatch(&pipeline, params, &bound, workgroups)
    }
}

/// An op defined outside the engine: a forward and, for autodiff, a backward.
pub trait CustomOp: Send + Sync + 'static {
    /// The op's name, in errors and in the autodiff graph ([`Tensor::op_name`]).
    fn name(&self) -> &'static str;

    /// The output of `inputs`, computed with [`Kernel`]s or engine ops; runs with gradient
    /// recording off.
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;

    /// The gradients of the inputs given the output's gradient `grad`: one entry per input
    /// (`None` where `needs[i]` is false), each of its input's shape. `output` is the forward's
    /// result. Written with engine ops or the op's own kernels; the default says the op is not
    /// differentiable.
    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let _ = (inputs, output, grad, needs);
        Err(Error::invalid(
            self.name(),
            "this custom op has no backward; implement CustomOp::backward, or detach its inputs",
        ))
    }
}

impl Tensor {
    /// Runs the custom op `op` on `inputs`; the output takes part in autodiff through
    /// [`CustomOp::backward`] when an input requires grad.
    pub fn apply_op<O: CustomOp>(op: O, inputs: &[&Tensor]) -> Result<Tensor> {
        let name = op.name();
        if let Some(first) = inputs.first() {
            if inputs.iter().any(|t| !t.device().same(first.device())) {
                return Err(Error::invalid(name, "inputs live on different devices"));
            }
        }
        let out = crate::autodiff::no_grad(|| op.forward(inputs))?.detach();
        let op = Arc::new(op);
        let saved: Vec<Tensor> = inputs.iter().map(|t| t.detach()).collect();
        let result = out.detach();
        Ok(out.record(
            name,
            inputs,
            Box::new(move |g, needs| {
                let grads = op.backward(&saved, &result, g, needs)?;
                if grads.len() != saved.len() {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "backward returned {} gradients for {} inputs",
                            grads.len(),
                            saved.len()
                        ),
                    ));
                }
                for (i, (gi, input)) in grads.iter().zip(&saved).enumerate() {
                    if let Some(gi) = gi {
                        let d = input.dims();
                        if gi.dims() != d {
                            return Err(Error::shape(
                                name,
                                format!("the gradient of input {i} shaped {d:?}"),
                                format!("{:?}", gi.dims()),
                            ));
                        }
                    }
                }
                Ok(grads)
            }),
        ))
    }

    /// A tensor of `shape` and `dtype` whose contents are unspecified, for a kernel to write.
    pub fn empty(device: &crate::Device, shape: &[usize], dtype: crate::DType) -> Result<Tensor> {
        Tensor::uninit(device, shape, dtype)
    }
}
