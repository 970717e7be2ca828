//! Fused multi-head scaled-dot-product attention over `[B, H, S, D]` with an online softmax
//! (the S×S scores never reach memory) and recomputing backward kernels.
//! Kernels: `shaders/attention.wgsl` (a template specialised per head dimension);
//! CPU reference: `cpu::attention`, `cpu::attention_backward`.

use crate::device::{Access, Device, KernelSource, Pipeline};
use crate::error::{Error, Result};
use crate::ops::{check_f32, grid};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const TEMPLATE: &str = include_str!("../../../shaders/attention.wgsl");
const R: Access = Access::Read;
const W: Access = Access::ReadWrite;
/// Query rows per forward thread (TQ in the shader): 4 for narrow heads, down to 1 at D ≥ 64,
/// keeping a thread's private rows within ~64·TQ floats.
fn queries_per_thread(d: usize) -> usize {
    (64 / d.max(1)).clamp(1, 4)
}

/// The WGSL of the attention kernels for head dimension `d` (for validation tests too).
pub fn attention_source(d: usize) -> String {
    TEMPLATE
        .replace("HEAD_DIM", &format!("{d}u"))
        .replace("QUERIES_PER_THREAD", &format!("{}u", queries_per_thread(d)))
}

fn pipeline(
    dev: &Device,
    d: usize,
    entry: &'static str,
    bindings: &'static [Access],
) -> Result<Arc<Pipeline>> {
    dev.pipeline(&format!("attention.d{d}.{entry}"), || KernelSource {
        label: "attention",
        source: attention_source(d).into(),
        entry,
        constants: &[],
        bindings,
    })
}

impl Tensor {
    /// `softmax(Q·Kᵀ·scale)·V` per (batch, head) for `q`, `k`, `v` of shape `[B, H, S, D]`
    /// (`scale` is usually `1/√D`). Differentiable in q, k and v.
    pub fn attention(&self, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
        let op = "attention";
        check_f32(op, &[self, k, v])?;
        let &[b, h, s, d] = self.dims() else {
            return Err(Error::shape(
                op,
                "q, k, v of [B, H, S, D]",
                format!("{}", self.shape()),
            ));
        };
        if k.dims() != self.dims() || v.dims() != self.dims() || d == 0 || d > 256 {
            return Err(Error::shape(
                op,
                format!("q, k, v all {} with 1 ≤ D ≤ 256", self.shape()),
                format!("{} and {}", k.shape(), v.shape()),
            ));
        }
        let bh = b * h;
        let params = [bh as u32, s as u32, scale.to_bits()];
        let dev = self.device();
        let out = Tensor::uninit(dev, self.dims(), DType::F32)?;
        let lse = Tensor::uninit(dev, &[bh, s], DType::F32)?;
        let fwd = pipeline(dev, d, "attention_forward", &[R, R, R, W, W])?;
        dev.dispatch(
            &fwd,
            &params,
            &[self.arg(), k.arg(), v.arg(), out.arg(), lse.arg()],
            grid(bh * s.div_ceil(queries_per_thread(d)), 64),
        )?;
        let (q, k2, v2, o) = (self.detach(), k.detach(), v.detach(), out.detach());
        Ok(out.record(
            op,
            &[self, k, v],
            Box::new(move |g, needs| {
                let dev = g.device();
                let rows = bh * s;
                let bw = &[R, R, R, R, R, R, W];
                let dummy = Tensor::zeros(dev, &[1])?;
                let delta = Tensor::uninit(dev, &[rows], DType::F32)?;
                let kd = pipeline(dev, d, "attention_delta", bw)?;
                dev.dispatch(
                    &kd,
                    &params,
                    &[
                        o.arg(),
                        dummy.arg(),
                        dummy.arg(),
                        g.arg(),
                        dummy.arg(),
                        dummy.arg(),
                        delta.arg(),
                    ],
                    grid(rows, 64),
                )?;
                let dq = if needs[0] {
                    let dq = Tensor::uninit(dev, q.dims(), DType::F32)?;
                    let kq = pipeline(dev, d, "attention_backward_q", bw)?;
                    dev.dispatch(
                        &kq,
                        &params,
                        &[&q, &k2, &v2, g, &lse, &delta, &dq].map(|t| t.arg()),
                        grid(rows, 64),
                    )?;
                    Some(dq)
                } else {
                    None
                };
                let (dk, dv) = if needs[1] || needs[2] {
                    let both = Tensor::uninit(dev, &[2, b, h, s, d], DType::F32)?;
                    let kkv = pipeline(dev, d, "attention_backward_kv", bw)?;
                    dev.dispatch(
                        &kkv,
                        &params,
                        &[&q, &k2, &v2, g, &lse, &delta, &both].map(|t| t.arg()),
                        grid(rows, 64),
                    )?;
                    let split = |i: usize| both.narrow(i, 1).and_then(|t| t.reshape(&[b, h, s, d]));
                    (Some(split(0)?), Some(split(1)?))
                } else {
                    (None, None)
                };
                Ok(vec![dq, dk, dv])
            }),
        ))
    }
}
