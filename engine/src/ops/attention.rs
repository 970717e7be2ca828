//! Fused multi-head scaled-dot-product attention over `[B, H, S, D]` with an online softmax
//! (the S×S scores never reach memory) and recomputing backward kernels.
//! Kernels: `shaders/attention.wgsl` and `shaders/attention_vec.wgsl` (templates specialised per head dimension);
//! CPU reference: `cpu::attention`, `cpu::attention_backward`.

use crate::device::{Binding, Device, KernelSource, Pipeline};
use crate::error::{Error, Result};
use crate::ops::sources::{entry, read, write, EntryPoint};
use crate::ops::template::{f16_inputs_key, fill, with_f16_inputs};
use crate::ops::{check_float, f16_bindings, grid};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const TEMPLATE: &str = include_str!("../../../shaders/attention.wgsl");
const VEC_TEMPLATE: &str = include_str!("../../../shaders/attention_vec.wgsl");
/// The entry points of `shaders/attention.wgsl` (and `attention_vec.wgsl`'s `attention_forward_vec`) and
/// the storage bindings each uses, in dispatch order.
pub(crate) const ENTRIES: &[EntryPoint] = &[
    entry(
        "attention_forward",
        &[read("q"), read("k"), read("v"), write("o"), write("lse")],
    ),
    entry(
        "attention_forward_vec",
        &[
            read("qv"),
            read("kv"),
            read("vv"),
            write("ov"),
            write("lse"),
        ],
    ),
    entry("attention_delta", &[read("bq"), read("bdo"), write("bout")]),
    entry("attention_backward_q", BACKWARD),
    entry("attention_backward_kv", BACKWARD),
];
const BACKWARD: &[Binding] = &[
    read("bq"),
    read("bk"),
    read("bv"),
    read("bdo"),
    read("blse"),
    read("bdelta"),
    write("bout"),
];

crate::kernel_params! {
    /// The attention kernels' parameters (`shaders/attention.wgsl`).
    pub struct AttentionParams {
        /// Batch × heads.
        bh: u32,
        /// Sequence length.
        seq: u32,
        /// The score scale (usually 1/√D).
        scale: f32,
    }
}
/// Query rows per thread of the generic (array) forward: 4 for narrow heads, down to 1 at
/// D ≥ 64, keeping a thread's private rows small (4×64 broke lavapipe).
fn queries_per_thread(d: usize) -> usize {
    (64 / d.max(1)).clamp(1, 4)
}

/// Query rows per thread of the vec4 forward. Each K/V row loaded serves this many queries:
/// on CPU adapters loads are the cost, so many (16 at D = 32); on GPUs registers are, so few
/// (docs/experiments.md, "Kernel choices recorded in the code before").
pub fn vec_queries_per_thread(d: usize, cpu_adapter: bool) -> usize {
    if cpu_adapter {
        (512 / d.max(1)).clamp(1, 16)
    } else {
        (64 / d.max(1)).clamp(1, 4)
    }
}

/// The WGSL of the attention kernels for head dimension `d` (for validation tests too). When `d`
/// is a multiple of 4 a second forward entry point, `attention_forward_vec`, is generated with the
/// rows held in named vec4 registers and every loop over `d` unrolled (loops indexing private
/// arrays keep them in memory on CPU adapters).
pub fn attention_source(d: usize, vec_tq: usize) -> String {
    let vec = if d.is_multiple_of(4) {
        vec_forward(d / 4, vec_tq)
    } else {
        String::new()
    };
    fill(
        TEMPLATE,
        &[
            ("HEAD_DIM", &d.to_string()),
            ("QUERIES_PER_THREAD", &queries_per_thread(d).to_string()),
            ("VEC_FORWARD", &vec),
        ],
    )
}

/// The unrolled forward for head dim 4·`dv`, `tq` queries per thread.
fn vec_forward(dv: usize, tq: usize) -> String {
    let mut b = String::new();
    let mut line = |l: String| {
        b.push_str("    ");
        b.push_str(&l);
        b.push('\n');
    };
    for t in 0..tq {
        line(format!(
            "let qrow{t} = (base + min(i0 + {t}u, s - 1u) * D) / 4u;"
        ));
        for v in 0..dv {
            line(format!("let q{t}_{v} = qv[qrow{t} + {v}u] * params.scale;"));
            line(format!("var a{t}_{v} = vec4<f32>(0.0);"));
        }
        line(format!("var m{t} = -0x1.fffffep+127f;"));
        line(format!("var l{t} = 0.0;"));
    }
    line("for (var j = 0u; j < s; j++) {".into());
    line("    let krow = (base + j * D) / 4u;".into());
    for v in 0..dv {
        line(format!("    let k{v} = kv[krow + {v}u];"));
        line(format!("    let v{v} = vv[krow + {v}u];"));
    }
    for t in 0..tq {
        let dot: Vec<String> = (0..dv).map(|v| format!("dot(q{t}_{v}, k{v})")).collect();
        line(format!("    let s{t} = {};", dot.join(" + ")));
        line(format!("    let mn{t} = max(m{t}, s{t});"));
        line(format!("    let c{t} = exp(m{t} - mn{t});"));
        line(format!("    let p{t} = exp(s{t} - mn{t});"));
        line(format!("    l{t} = l{t} * c{t} + p{t};"));
        line(format!("    m{t} = mn{t};"));
        for v in 0..dv {
            line(format!("    a{t}_{v} = a{t}_{v} * c{t} + p{t} * v{v};"));
        }
    }
    line("}".into());
    for t in 0..tq {
        line(format!("if (i0 + {t}u < s) {{"));
        for v in 0..dv {
            line(format!(
                "    ov[(base + (i0 + {t}u) * D) / 4u + {v}u] = a{t}_{v} / l{t};"
            ));
        }
        line(format!("    lse[bh * s + i0 + {t}u] = m{t} + log(l{t});"));
        line("}".into());
    }
    b.pop();
    fill(VEC_TEMPLATE, &[("TQ", &tq.to_string()), ("BODY", &b)])
}

/// The pipeline of `entry` for head dim `d`, reading the bindings `f16` as f16.
fn pipeline(
    dev: &Device,
    d: usize,
    entry: &'static str,
    f16: &[&'static str],
) -> Result<Arc<Pipeline>> {
    let bindings = ENTRIES
        .iter()
        .find(|e| e.name == entry)
        .map_or(&[][..], |e| e.bindings);
    let vec_tq = vec_queries_per_thread(d, dev.kernel_profile() == crate::KernelProfile::Cpu);
    let key = f16_inputs_key(format!("attention.d{d}.tq{vec_tq}.{entry}"), f16);
    dev.pipeline(&key, || KernelSource {
        label: "attention",
        source: with_f16_inputs(&attention_source(d, vec_tq), f16).into(),
        entry,
        constants: &[],
        bindings,
    })
}

impl Tensor {
    /// `softmax(Q·Kᵀ·scale)·V` per (batch, head) for `q`, `k`, `v` of shape `[B, H, S, D]`
    /// (`scale` is usually `1/√D`). Differentiable in q, k and v. Any of q, k, v may be f16
    /// (read as f16, computed in f32; an f32 output and f32 gradients).
    pub fn attention(&self, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
        let op = "attention";
        check_float(op, &[self, k, v])?;
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
        let params = AttentionParams {
            bh: bh as u32,
            seq: s as u32,
            scale,
        };
        let dev = self.device();
        let out = Tensor::uninit(dev, self.dims(), DType::F32)?;
        let lse = Tensor::uninit(dev, &[bh, s], DType::F32)?;
        let (entry, tq) = if d.is_multiple_of(4) {
            (
                "attention_forward_vec",
                vec_queries_per_thread(d, dev.kernel_profile() == crate::KernelProfile::Cpu),
            )
        } else {
            ("attention_forward", queries_per_thread(d))
        };
        let names = if entry == "attention_forward" {
            ["q", "k", "v"]
        } else {
            ["qv", "kv", "vv"]
        };
        let f16 = f16_bindings(&[(names[0], self), (names[1], k), (names[2], v)]);
        let fwd = pipeline(dev, d, entry, &f16)?;
        dev.dispatch(
            &fwd,
            &params,
            &[self.arg(), k.arg(), v.arg(), out.arg(), lse.arg()],
            grid(bh * s.div_ceil(tq), 64),
        )?;
        let (q, k2, v2, o) = (self.detach(), k.detach(), v.detach(), out.detach());
        Ok(out.record(
            op,
            &[self, k, v],
            Box::new(move |g, needs| {
                let dev = g.device();
                let rows = bh * s;
                let delta = Tensor::uninit(dev, &[rows], DType::F32)?;
                let kd = pipeline(dev, d, "attention_delta", &[])?;
                let f16 = f16_bindings(&[("bq", &q), ("bk", &k2), ("bv", &v2)]);
                dev.dispatch(
                    &kd,
                    &params,
                    &[o.arg(), g.arg(), delta.arg()],
                    grid(rows, 64),
                )?;
                let dq = if needs[0] {
                    let dq = Tensor::uninit(dev, q.dims(), DType::F32)?;
                    let kq = pipeline(dev, d, "attention_backward_q", &f16)?;
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
                    let kkv = pipeline(dev, d, "attention_backward_kv", &f16)?;
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
