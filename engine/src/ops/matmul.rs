//! Batched matmul with optionally transposed operands (read in place, no copy) and a fused bias;
//! `linear` on top. Three kernel families, chosen per adapter ([`MatmulStrategy`]):
//! `shaders/matmul_regblock.wgsl` (a template this module unrolls), `shaders/matmul_subgroup.wgsl`
//! (see `matmul_subgroup`) and `shaders/matmul_tiled.wgsl`.
//! CPU reference: `cpu::matmul`.

use std::fmt::Write;

use crate::device::{Binding, Device, KernelSource, MatmulStrategy};
use crate::error::{Error, Result};
use crate::ops::matmul_subgroup::SubgroupVariant;
use crate::ops::sources::{read, write};
use crate::ops::template::{f16_inputs_key, fill, vec4_of, with_f16_inputs};
use crate::ops::{check_float, f16_bindings};
use crate::tensor::{DType, Tensor};

const REGBLOCK_TEMPLATE: &str = include_str!("../../../shaders/matmul_regblock.wgsl");
const TILED: &str = include_str!("../../../shaders/matmul_tiled.wgsl");
/// A matmul kernel's bindings with a bias: C = A·B + BIAS.
pub(crate) const BINDINGS: &[Binding] = &[read("A"), read("B"), read("BIAS"), write("C")];
/// Without: C = A·B.
pub(crate) const NO_BIAS: &[Binding] = &[read("A"), read("B"), write("C")];

/// Rows and columns of C one register-blocked thread computes.
const RB_M: usize = 8;
const RB_N: usize = 16;

/// One register-blocked kernel variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegBlockVariant {
    /// A is stored [K, M].
    pub ta: bool,
    /// B is stored [N, K].
    pub tb: bool,
    /// A is read with vec4 loads (needs its contiguous axis, K or M, to be a multiple of 4).
    pub va: bool,
    /// B is read with vec4 loads (needs N, or K when transposed, to be a multiple of 4).
    pub vb: bool,
    /// Adds a bias `[N]` (else the bias is not bound).
    pub bias: bool,
}

impl RegBlockVariant {
    /// Every variant, for shader validation tests.
    pub fn all() -> Vec<RegBlockVariant> {
        layout_flags()
            .flat_map(|(ta, tb, va, vb)| {
                [false, true].map(|bias| RegBlockVariant {
                    ta,
                    tb,
                    va,
                    vb,
                    bias,
                })
            })
            .collect()
    }

    /// Pipeline cache key.
    pub fn key(self) -> String {
        format!(
            "matmul_regblock.ta{}tb{}va{}vb{}.bias{}",
            self.ta as u8, self.tb as u8, self.va as u8, self.vb as u8, self.bias as u8
        )
    }

    /// The WGSL source of this variant: the template with its loads and FMAs unrolled.
    pub fn source(self) -> String {
        let mut setup = String::new();
        let mut body = String::new();
        let mut tail = String::new();
        let w = |s: &mut String, line: String| {
            s.push_str("        ");
            s.push_str(&line);
            s.push('\n');
        };
        // Clamped scalar base indices of A's rows (m) and B's columns (n).
        for i in 0..RB_M {
            if self.ta {
                w(
                    &mut setup,
                    format!("let am{i} = a_off + min(m0 + {i}u, M - 1u);"),
                );
            } else {
                w(
                    &mut setup,
                    format!("let am{i} = a_off + min(m0 + {i}u, M - 1u) * K;"),
                );
            }
        }
        for j in 0..RB_N {
            if self.tb {
                w(
                    &mut setup,
                    format!("let bn{j} = b_off + min(n0 + {j}u, N - 1u) * K;"),
                );
            } else {
                w(
                    &mut setup,
                    format!("let bn{j} = b_off + min(n0 + {j}u, N - 1u);"),
                );
            }
        }
        if self.va && self.ta {
            // Two vec4 columns of Aᵀ rows cover the 8 rows m0..m0+8.
            w(
                &mut setup,
                "let av0 = a_off / 4u + min(m0 / 4u, M / 4u - 1u);".into(),
            );
            w(
                &mut setup,
                "let av1 = a_off / 4u + min(m0 / 4u + 1u, M / 4u - 1u);".into(),
            );
        }
        if self.vb && !self.tb {
            for jv in 0..RB_N / 4 {
                w(
                    &mut setup,
                    format!("let bv{jv} = b_off / 4u + min(n0 / 4u + {jv}u, N / 4u - 1u);"),
                );
            }
        }
        // a{i}: vec4 over kk = 0..4 of op(A)[m0+i, k+kk].
        for i in 0..RB_M {
            let e = match (self.ta, self.va) {
                (false, true) => format!("A[am{i} / 4u + kc]"),
                (false, false) => format!("vec4<f32>(A[am{i} + k], A[am{i} + k + 1u], A[am{i} + k + 2u], A[am{i} + k + 3u])"),
                (true, true) => {
                    let (v, l) = (i / 4, ["x", "y", "z", "w"][i % 4]);
                    if i % 4 == 0 {
                        for kk in 0..4 {
                            w(&mut body, format!("let at{kk}_{v} = A[(k + {kk}u) * (M / 4u) + av{v}];"));
                        }
                    }
                    format!("vec4<f32>(at0_{v}.{l}, at1_{v}.{l}, at2_{v}.{l}, at3_{v}.{l})")
                }
                (true, false) => format!(
                    "vec4<f32>(A[k * M + am{i}], A[(k + 1u) * M + am{i}], A[(k + 2u) * M + am{i}], A[(k + 3u) * M + am{i}])"
                ),
            };
            w(&mut body, format!("let a{i} = {e};"));
        }
        // b{kk}_{jv}: vec4 over columns n0+4jv..+4 of op(B)[k+kk, ·].
        if self.tb {
            for j in 0..RB_N {
                let e = if self.vb {
                    format!("B[bn{j} / 4u + kc]")
                } else {
                    format!("vec4<f32>(B[bn{j} + k], B[bn{j} + k + 1u], B[bn{j} + k + 2u], B[bn{j} + k + 3u])")
                };
                w(&mut body, format!("let bt{j} = {e};"));
            }
        }
        for kk in 0..4 {
            let lane = ["x", "y", "z", "w"][kk];
            for jv in 0..RB_N / 4 {
                let e = match (self.tb, self.vb) {
                    (false, true) => format!("B[(k + {kk}u) * (N / 4u) + bv{jv}]"),
                    (false, false) => {
                        let c: Vec<String> = (0..4)
                            .map(|l| format!("B[(k + {kk}u) * N + bn{}]", jv * 4 + l))
                            .collect();
                        format!("vec4<f32>({})", c.join(", "))
                    }
                    (true, _) => {
                        let c: Vec<String> =
                            (0..4).map(|l| format!("bt{}.{lane}", jv * 4 + l)).collect();
                        format!("vec4<f32>({})", c.join(", "))
                    }
                };
                w(&mut body, format!("let b{kk}_{jv} = {e};"));
            }
        }
        for i in 0..RB_M {
            for jv in 0..RB_N / 4 {
                w(
                    &mut body,
                    format!(
                        "acc{i}_{jv} += a{i}.x * b0_{jv} + a{i}.y * b1_{jv} + a{i}.z * b2_{jv} + a{i}.w * b3_{jv};"
                    ),
                );
            }
        }
        // k tail (K not a multiple of 4): scalar loads.
        for i in 0..RB_M {
            let idx = if self.ta {
                format!("k * M + am{i}")
            } else {
                format!("am{i} + k")
            };
            w(&mut tail, format!("let s{i} = la({idx});"));
        }
        for jv in 0..RB_N / 4 {
            let c: Vec<String> = (0..4)
                .map(|l| {
                    let j = jv * 4 + l;
                    if self.tb {
                        format!("lb(bn{j} + k)")
                    } else {
                        format!("lb(k * N + bn{j})")
                    }
                })
                .collect();
            w(
                &mut tail,
                format!("let t{jv} = vec4<f32>({});", c.join(", ")),
            );
        }
        for i in 0..RB_M {
            for jv in 0..RB_N / 4 {
                w(
                    &mut tail,
                    format!("acc{i}_{jv} = fma(vec4<f32>(s{i}), t{jv}, acc{i}_{jv});"),
                );
            }
        }
        let (acc, store) = accumulators_and_stores("acc", RB_M, RB_N / 4, self.bias);
        fill_matmul(
            REGBLOCK_TEMPLATE,
            (self.va, self.vb, self.bias),
            &[
                ("SETUP", &setup),
                ("ACC", &acc),
                ("BODY", &body),
                ("TAIL", &tail),
                ("STORE", &store),
            ],
        )
    }
}

/// The declarations of `rows` × `cols4` named vec4 accumulators `{prefix}{i}_{j}` (zero) and
/// their stores into rows m0 + i < M, columns n0 + 4j, plus the bias of column group j
/// (`bias{j}`, loaded once before the stores) when `bias` (the register-blocked and subgroup
/// templates' `{{ACC}}` and `{{STORE}}`).
pub(crate) fn accumulators_and_stores(
    prefix: &str,
    rows: usize,
    cols4: usize,
    bias: bool,
) -> (String, String) {
    let (mut acc, mut store) = (String::new(), String::new());
    for i in 0..rows {
        for j in 0..cols4 {
            let _ = writeln!(acc, "    var {prefix}{i}_{j} = vec4<f32>(0.0);");
        }
    }
    // The bias of the block's columns, loaded once (clamped past N) and added to every row.
    let term = |j: usize| {
        if bias {
            format!(" + bias{j}")
        } else {
            String::new()
        }
    };
    if bias {
        for j in 0..cols4 {
            let v = vec4_of(|l| format!("lbias(n0 + {}u, N)", 4 * j + l));
            let _ = writeln!(store, "    let bias{j} = {v};");
        }
    }
    for i in 0..rows {
        let _ = writeln!(store, "    if (m0 + {i}u < M) {{");
        for j in 0..cols4 {
            let _ = writeln!(
                store,
                "        store4(c_off + (m0 + {i}u) * N, n0 + {}u, N, {prefix}{i}_{j}{});",
                j * 4,
                term(j)
            );
        }
        let _ = writeln!(store, "    }}");
    }
    (acc, store)
}

/// A register-blocked or subgroup matmul template filled: A's and B's element types (vec4 or
/// f32) and their scalar loaders `la`/`lb` (`va`, `vb`), the bias term (`bias`), then `slots`.
pub(crate) fn fill_matmul(
    template: &str,
    (va, vb, bias): (bool, bool, bool),
    slots: &[(&str, &str)],
) -> String {
    let elem = |v: bool| if v { "vec4<f32>" } else { "f32" };
    let load = |v: bool, name: &str| {
        if v {
            format!("return {name}[i >> 2u][i & 3u];")
        } else {
            format!("return {name}[i];")
        }
    };
    let (la, lb) = (load(va, "A"), load(vb, "B"));
    let mut all = vec![
        ("A_ELEM", elem(va)),
        ("B_ELEM", elem(vb)),
        ("LA", la.as_str()),
        ("LB", lb.as_str()),
        (
            "BIAS",
            if bias {
                "fn lbias(i: u32, n: u32) -> f32 { return BIAS[min(i, n - 1u)]; }"
            } else {
                ""
            },
        ),
    ];
    all.extend_from_slice(slots);
    fill(template, &all)
}

/// The tiled family's source (`shaders/matmul_tiled.wgsl`, a template) with or without the bias term (the layouts are override constants).
pub fn tiled_source(bias: bool) -> String {
    fill(TILED, &[("BIAS", if bias { "BIAS[n]" } else { "0.0" })])
}

/// The bindings of a matmul kernel with or without a bias.
pub(crate) fn bindings(bias: bool) -> &'static [Binding] {
    if bias {
        BINDINGS
    } else {
        NO_BIAS
    }
}

/// Every (ta, tb, va, vb) combination of a generated matmul variant.
pub(crate) fn layout_flags() -> impl Iterator<Item = (bool, bool, bool, bool)> {
    (0..16).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0))
}

/// The cached pipeline of a generated matmul kernel (`source` is built on first use only),
/// reading the operands `f16` as f16.
fn generated_pipeline(
    dev: &Device,
    (key, f16): (&str, &[&str]),
    label: &'static str,
    (bias, constants): (bool, &[(&'static str, f64)]),
    source: impl FnOnce() -> String,
) -> Result<std::sync::Arc<crate::device::Pipeline>> {
    dev.pipeline(&f16_inputs_key(key.to_string(), f16), || KernelSource {
        label,
        source: with_f16_inputs(&source(), f16).into(),
        entry: "main",
        constants,
        bindings: bindings(bias),
    })
}

crate::kernel_params! {
    /// The matmul kernels' parameters (`shaders/matmul_*.wgsl`): C = op(A)·op(B) (+ bias) for
    /// a batch of matrices, one per workgroup z.
    pub struct MatmulParams {
        /// Rows of C.
        m: u32,
        /// Columns of C.
        n: u32,
        /// The inner dimension.
        k: u32,
        /// Elements between A's matrices (0: shared).
        a_batch_stride: u32,
        /// Elements between B's matrices.
        b_batch_stride: u32,
        /// Elements between C's matrices.
        c_batch_stride: u32,
        /// `matmul_subgroup`: its 8 subgroups form an SM × (8/SM) grid of blocks; else unused.
        sm: u32,
    }
}

/// Records C = op(A)·op(B) (+ bias) for `batch` matrices; batch strides 0 share an operand.
#[allow(clippy::too_many_arguments)]
fn dispatch_matmul(
    dev: &Device,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    (m, n, k): (usize, usize, usize),
    (ta, tb): (bool, bool),
    batch: usize,
    strides: [usize; 3],
) -> Result<()> {
    if batch > dev.info().limits.max_compute_workgroups_per_dimension as usize {
        return Err(Error::invalid(
            "matmul",
            format!("batch {batch} above the adapter's dispatch limit"),
        ));
    }
    let mut params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        a_batch_stride: strides[0] as u32,
        b_batch_stride: strides[1] as u32,
        c_batch_stride: strides[2] as u32,
        sm: 0,
    };
    let has_bias = bias.is_some();
    let f16 = f16_bindings(&[("A", a), ("B", b)]);
    let mut args = vec![a.arg(), b.arg()];
    args.extend(bias.map(Tensor::arg));
    args.push(c.arg());
    // The subgroup kernel's 64×32 blocks waste most of their work on small outputs: there the
    // default choice falls back to the register-blocked kernel (a forced choice is kept).
    let strategy = match dev.matmul_strategy() {
        MatmulStrategy::Subgroup
            if dev.options().matmul.is_none() && !SubgroupVariant::fills_blocks(m, n) =>
        {
            MatmulStrategy::RegisterBlocked
        }
        s => s,
    };
    // vec4 loads where an operand's contiguous axis and batch stride are multiples of 4.
    let va = (if ta { m } else { k }).is_multiple_of(4) && strides[0].is_multiple_of(4);
    let vb = (if tb { k } else { n }).is_multiple_of(4) && strides[1].is_multiple_of(4);
    match strategy {
        MatmulStrategy::RegisterBlocked => {
            let v = RegBlockVariant {
                ta,
                tb,
                va,
                vb,
                bias: has_bias,
            };
            let pipe = generated_pipeline(
                dev,
                (&v.key(), &f16),
                "matmul_regblock",
                (has_bias, &[]),
                || v.source(),
            )?;
            let groups = [
                m.div_ceil(RB_M * 8) as u32,
                n.div_ceil(RB_N * 8) as u32,
                batch as u32,
            ];
            dev.dispatch(&pipe, &params, &args, groups)
        }
        MatmulStrategy::Subgroup => {
            if !dev.has_8_lane_subgroups() {
                return Err(Error::invalid(
                    "matmul",
                    format!(
                        "the subgroup matmul needs subgroups of 8 lanes; this device has {:?} \
                         (leave DeviceOptions::matmul unset to choose a family that fits)",
                        dev.info().subgroup_size
                    ),
                ));
            }
            let v = SubgroupVariant {
                ta,
                tb,
                va,
                vb,
                bias: has_bias,
            };
            let pipe = generated_pipeline(
                dev,
                (&v.key(), &f16),
                "matmul_subgroup",
                (has_bias, &[]),
                || v.source(),
            )?;
            let (sm, groups) = SubgroupVariant::grid(m, n, batch);
            params.sm = sm;
            dev.dispatch(&pipe, &params, &args, groups)
        }
        MatmulStrategy::Tiled => {
            let consts = [("TA", ta as u32 as f64), ("TB", tb as u32 as f64)];
            let key = format!(
                "matmul_tiled.bias{}.ta{}tb{}",
                has_bias as u8, ta as u8, tb as u8
            );
            let pipe = generated_pipeline(
                dev,
                (&key, &f16),
                "matmul_tiled",
                (has_bias, &consts),
                || tiled_source(has_bias),
            )?;
            dev.dispatch(
                &pipe,
                &params,
                &args,
                [n.div_ceil(64) as u32, m.div_ceil(64) as u32, batch as u32],
            )
        }
    }
}

/// (rows, cols) of the last two axes and the batch dims before them.
fn mat_dims(op: &'static str, t: &Tensor) -> Result<(Vec<usize>, usize, usize)> {
    let d = t.dims();
    if d.len() < 2 {
        return Err(Error::shape(
            op,
            "a matrix (rank ≥ 2)",
            format!("{}", t.shape()),
        ));
    }
    Ok((d[..d.len() - 2].to_vec(), d[d.len() - 2], d[d.len() - 1]))
}

impl Tensor {
    /// Matrix product of the last two axes: `[.., M, K] · [.., K, N]`; batch axes must match, or
    /// one operand is a plain matrix shared by the batch. Differentiable. Either operand may be
    /// f16 (read as f16, summed in f32; an f32 output and f32 gradients).
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_t(other, false, false)
    }

    /// Matrix product with operands read transposed in place (`ta`: self is `[.., K, M]`,
    /// `tb`: other is `[.., N, K]`), without a copy. Differentiable.
    pub fn matmul_t(&self, other: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
        self.matmul_bias(other, None, ta, tb)
    }

    /// `x · Wᵀ + b` over the last axis of x: `[.., in] → [.., out]` with `weight: [out, in]`,
    /// `bias: [out]`; the bias is added in the matmul's epilogue. Differentiable.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let d = self.dims();
        let Some(&inp) = d.last() else {
            return Err(Error::shape("linear", "input [.., in]", "a scalar"));
        };
        let rows = self.numel() / inp.max(1);
        let x2 = self.reshape(&[rows, inp])?;
        let y = x2.matmul_bias(weight, bias, false, true)?;
        let mut out = d.to_vec();
        *out.last_mut().expect("rank ≥ 1") = y.dims()[1];
        y.reshape(&out)
    }

    fn matmul_bias(
        &self,
        other: &Tensor,
        bias: Option<&Tensor>,
        ta: bool,
        tb: bool,
    ) -> Result<Tensor> {
        let op = "matmul";
        check_float(op, &[self, other])?;
        if crate::ops::precision::autocast_f16()
            && (self.dtype() == DType::F32 || other.dtype() == DType::F32)
        {
            use crate::ops::precision::autocast;
            return autocast(self)?.matmul_bias(&autocast(other)?, bias, ta, tb);
        }
        let (ba, ar, ac) = mat_dims(op, self)?;
        let (bb, br, bc) = mat_dims(op, other)?;
        let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if tb { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(Error::shape(
                op,
                format!("inner dims to agree (left has K={k})"),
                format!("right has K={k2}: {} · {}", self.shape(), other.shape()),
            ));
        }
        if let Some(bias) = bias {
            check_float(op, &[self, bias])?;
            bias.expect_dtype(op, DType::F32)?;
            if bias.dims() != [n] {
                return Err(Error::shape(
                    "linear",
                    format!("bias [{n}]"),
                    format!("{}", bias.shape()),
                ));
            }
        }
        // A batch of A against a shared, untransposed-A-side B folds into one tall matmul.
        if !ba.is_empty() && bb.is_empty() && !ta {
            let rows: usize = ba.iter().product::<usize>() * m;
            let y = self
                .reshape(&[rows, k])?
                .matmul_bias(other, bias, false, tb)?;
            let mut out = ba.clone();
            out.extend([m, n]);
            return y.reshape(&out);
        }
        let batch_dims = match (ba.is_empty(), bb.is_empty()) {
            (_, true) => ba.clone(),
            (true, false) => bb.clone(),
            (false, false) if ba == bb => ba.clone(),
            _ => {
                return Err(Error::shape(
                    op,
                    format!("matching batch axes {ba:?}"),
                    format!("{bb:?}"),
                ));
            }
        };
        let batch: usize = batch_dims.iter().product();
        let mut out_dims = batch_dims.clone();
        out_dims.extend([m, n]);
        let dev = self.device();
        let out = Tensor::uninit(dev, &out_dims, DType::F32)?;
        let sa = if ba.is_empty() { 0 } else { m * k };
        let sb = if bb.is_empty() { 0 } else { k * n };
        dispatch_matmul(
            dev,
            self,
            other,
            bias,
            &out,
            (m, n, k),
            (ta, tb),
            batch,
            [sa, sb, m * n],
        )?;
        let (a, b) = (self.detach(), other.detach());
        let (a_dims, b_dims) = (self.dims().to_vec(), other.dims().to_vec());
        let has_bias = bias.is_some();
        let mut inputs = vec![self, other];
        inputs.extend(bias);
        Ok(out.record(
            op,
            &inputs,
            Box::new(move |g, needs| {
                // dA = dC·op(B)ᵀ, dB = op(A)ᵀ·dC, written so each stored layout comes out directly.
                let da = if needs[0] {
                    let d = if ta {
                        b.matmul_t(g, tb, true)?
                    } else {
                        g.matmul_t(&b, false, !tb)?
                    };
                    Some(d.sum_to_shape(&a_dims)?)
                } else {
                    None
                };
                let db = if needs[1] {
                    let d = if tb {
                        g.matmul_t(&a, true, ta)?
                    } else {
                        a.matmul_t(g, !ta, false)?
                    };
                    Some(d.sum_to_shape(&b_dims)?)
                } else {
                    None
                };
                let mut grads = vec![da, db];
                if has_bias {
                    let lead: Vec<usize> = (0..g.rank() - 1).collect();
                    grads.push(if needs[2] {
                        Some(g.sum(&lead, false)?)
                    } else {
                        None
                    });
                }
                Ok(grads)
            }),
        ))
    }
}
