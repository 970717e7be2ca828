//! The subgroup-blocked matmul kernel family (`shaders/matmul_subgroup.wgsl`, a template this
//! module unrolls): one subgroup of 8 lanes computes a 64×32 block of C, each lane 8 rows, and the
//! lanes share B's columns through `subgroupBroadcast`. Chosen on CPU adapters whose subgroups
//! have exactly 8 lanes (lavapipe on AVX2), where it needs about a third of the loads per FMA of
//! the register-blocked kernel. CPU reference: `cpu::matmul`.

use std::fmt::Write;

use crate::ops::matmul::{accumulators_and_stores, fill_matmul, layout_flags};

const TEMPLATE: &str = include_str!("../../../shaders/matmul_subgroup.wgsl");

/// Lanes per subgroup the kernel is written for.
pub const LANES: usize = 8;
/// Rows of C one lane computes.
pub const SG_M: usize = 8;
/// Columns of C one subgroup computes: 8 vec4 columns, one per lane when B is loaded.
pub const SG_N: usize = 32;
/// Subgroups per workgroup (64 invocations).
pub const SUBGROUPS: usize = 8;

/// One subgroup-blocked kernel variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubgroupVariant {
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

/// The subgroup grid of a 64-invocation workgroup (`sm` subgroups along M, 8/`sm` along N) that
/// wastes the least work on an M×N output when one subgroup computes a `bm`×`bn` block, and the
/// workgroup count for `batch` matrices.
pub fn subgroup_grid(m: usize, n: usize, bm: usize, bn: usize, batch: usize) -> (u32, [u32; 3]) {
    let (sm, groups, _) = block_grid(m, n, bm, bn, batch, SUBGROUPS);
    (sm, groups)
}

/// [`subgroup_grid`] for workgroups whose blocks take `subgroups` (1, 2, 4 or 8) of the 8
/// subgroups; also returns the padded output area the grid computes (rows × columns).
pub fn block_grid(
    m: usize,
    n: usize,
    bm: usize,
    bn: usize,
    batch: usize,
    subgroups: usize,
) -> (u32, [u32; 3], usize) {
    let cost = |sm: usize| {
        let (rows, cols) = (bm * sm, bn * (subgroups / sm));
        m.div_ceil(rows) * rows * n.div_ceil(cols) * cols
    };
    let sm = [8, 4, 2, 1]
        .into_iter()
        .filter(|&sm| sm <= subgroups)
        .min_by_key(|&sm| cost(sm))
        .unwrap_or(1);
    let groups = [
        m.div_ceil(bm * sm) as u32,
        n.div_ceil(bn * (subgroups / sm)) as u32,
        batch as u32,
    ];
    (sm as u32, groups, cost(sm))
}

const XYZW: [&str; 4] = ["x", "y", "z", "w"];

impl SubgroupVariant {
    /// Every variant, for shader validation tests.
    pub fn all() -> Vec<SubgroupVariant> {
        layout_flags()
            .flat_map(|(ta, tb, va, vb)| {
                [false, true].map(|bias| SubgroupVariant {
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
            "matmul_subgroup.ta{}tb{}va{}vb{}.bias{}",
            self.ta as u8, self.tb as u8, self.va as u8, self.vb as u8, self.bias as u8
        )
    }

    /// Whether an M×N output fills the kernel's blocks well enough (one subgroup block of 64
    /// rows, one of 32 columns) for it to beat the register-blocked kernel (docs/experiments.md,
    /// "Kernel choices recorded in the code before").
    pub fn fills_blocks(m: usize, n: usize) -> bool {
        m >= LANES * SG_M && n >= SG_N
    }

    /// (SM, workgroups) for an M×N output with `batch` matrices; see [`subgroup_grid`].
    pub fn grid(m: usize, n: usize, batch: usize) -> (u32, [u32; 3]) {
        subgroup_grid(m, n, LANES * SG_M, SG_N, batch)
    }

    /// op(A)[m0+i, k+r] as a WGSL scalar expression inside the k loop.
    fn a_elem(self, i: usize, r: usize) -> String {
        if self.ta && self.va {
            format!("at{r}_{}.{}", i / 4, XYZW[i % 4])
        } else {
            format!("a{i}.{}", XYZW[r])
        }
    }

    /// The WGSL source of this variant: the template with its loads, broadcasts and FMAs unrolled.
    pub fn source(self) -> String {
        let (mut setup, mut body, mut tail) = (String::new(), String::new(), String::new());
        let w = |s: &mut String, line: String| {
            let _ = writeln!(s, "        {line}");
        };
        // The lane's clamped A rows.
        if self.ta && self.va {
            for v in 0..SG_M / 4 {
                w(
                    &mut setup,
                    format!("let av{v} = a_off / 4u + min(m0 / 4u + {v}u, M / 4u - 1u);"),
                );
            }
        } else {
            for i in 0..SG_M {
                let stride = if self.ta { "" } else { " * K" };
                w(
                    &mut setup,
                    format!("let am{i} = a_off + min(m0 + {i}u, M - 1u){stride};"),
                );
            }
        }
        // The lane's share of B: the 4 columns n0 + 4·lane .. +4, clamped.
        if !self.tb && self.vb {
            w(
                &mut setup,
                "let bcol = b_off / 4u + min(n0 / 4u + lane, N / 4u - 1u);".into(),
            );
        } else {
            let stride = if self.tb { " * K" } else { "" };
            for l in 0..4 {
                w(
                    &mut setup,
                    format!("let bn{l} = b_off + min(n0 + 4u * lane + {l}u, N - 1u){stride};"),
                );
            }
        }
        // Loads of the lane's A rows at k..k+4.
        match (self.ta, self.va) {
            (false, true) => (0..SG_M).for_each(|i| {
                w(&mut body, format!("let a{i} = A[am{i} / 4u + kc];"));
            }),
            (false, false) => (0..SG_M).for_each(|i| {
                w(&mut body, format!("let a{i} = vec4<f32>(A[am{i} + k], A[am{i} + k + 1u], A[am{i} + k + 2u], A[am{i} + k + 3u]);"));
            }),
            (true, true) => (0..4).for_each(|r| {
                for v in 0..SG_M / 4 {
                    w(
                        &mut body,
                        format!("let at{r}_{v} = A[(k + {r}u) * (M / 4u) + av{v}];"),
                    );
                }
            }),
            (true, false) => (0..SG_M).for_each(|i| {
                w(&mut body, format!("let a{i} = vec4<f32>(A[k * M + am{i}], A[(k + 1u) * M + am{i}], A[(k + 2u) * M + am{i}], A[(k + 3u) * M + am{i}]);"));
            }),
        }
        // bl{r}: the lane's 4 columns of op(B) row k + r.
        if self.tb && self.vb {
            for l in 0..4 {
                w(&mut body, format!("let bt{l} = B[bn{l} / 4u + kc];"));
            }
        }
        for (r, c) in XYZW.iter().enumerate() {
            let e = match (self.tb, self.vb) {
                (false, true) => format!("B[bcol + (k + {r}u) * (N / 4u)]"),
                (false, false) => format!(
                    "vec4<f32>(B[(k + {r}u) * N + bn0], B[(k + {r}u) * N + bn1], B[(k + {r}u) * N + bn2], B[(k + {r}u) * N + bn3])"
                ),
                (true, true) => format!("vec4<f32>(bt0.{c}, bt1.{c}, bt2.{c}, bt3.{c})"),
                (true, false) => format!(
                    "vec4<f32>(B[bn0 + k + {r}u], B[bn1 + k + {r}u], B[bn2 + k + {r}u], B[bn3 + k + {r}u])"
                ),
            };
            w(&mut body, format!("let bl{r} = {e};"));
        }
        // Column block q of the subgroup comes from lane q.
        for q in 0..LANES {
            for r in 0..4 {
                w(
                    &mut body,
                    format!("let b{q}_{r} = subgroupBroadcast(bl{r}, {q}u);"),
                );
            }
            for i in 0..SG_M {
                for r in 0..4 {
                    w(
                        &mut body,
                        format!(
                            "c{i}_{q} = fma(vec4<f32>({}), b{q}_{r}, c{i}_{q});",
                            self.a_elem(i, r)
                        ),
                    );
                }
            }
        }
        // k tail (K not a multiple of 4): scalar loads, one row of B.
        for i in 0..SG_M {
            let idx = match (self.ta, self.va) {
                (false, _) => format!("am{i} + k"),
                (true, false) => format!("k * M + am{i}"),
                (true, true) => format!("a_off + k * M + min(m0 + {i}u, M - 1u)"),
            };
            w(&mut tail, format!("let s{i} = la({idx});"));
        }
        let t = match (self.tb, self.vb) {
            (false, true) => "B[bcol + k * (N / 4u)]".to_string(),
            (false, false) => {
                "vec4<f32>(lb(k * N + bn0), lb(k * N + bn1), lb(k * N + bn2), lb(k * N + bn3))"
                    .into()
            }
            (true, _) => "vec4<f32>(lb(bn0 + k), lb(bn1 + k), lb(bn2 + k), lb(bn3 + k))".into(),
        };
        w(&mut tail, format!("let bl = {t};"));
        for q in 0..LANES {
            w(
                &mut tail,
                format!("let b{q} = subgroupBroadcast(bl, {q}u);"),
            );
            for i in 0..SG_M {
                w(
                    &mut tail,
                    format!("c{i}_{q} = fma(vec4<f32>(s{i}), b{q}, c{i}_{q});"),
                );
            }
        }
        let (acc, store) = accumulators_and_stores("c", SG_M, LANES, self.bias);
        fill_matmul(
            TEMPLATE,
            (self.va, self.vb, self.bias),
            &[
                ("TM", &SG_M.to_string()),
                ("TN", &SG_N.to_string()),
                ("SETUP", &setup),
                ("ACC", &acc),
                ("BODY", &body),
                ("TAIL", &tail),
                ("STORE", &store),
            ],
        )
    }
}
