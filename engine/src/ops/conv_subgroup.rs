//! The subgroup-blocked conv2d kernels for CPU adapters with 8-lane subgroups
//! (`shaders/conv2d_subgroup.wgsl`, a template this module unrolls): forward and data gradient,
//! each lane 8 pixels, the subgroup 16 or 32 channels shared through `subgroupBroadcast`.
//! Same parameters and bindings as `shaders/conv2d.wgsl`; CPU reference: `cpu::conv2d`.

use std::fmt::Write;

use crate::ops::matmul_subgroup::subgroup_grid;

const TEMPLATE: &str = include_str!("../../../shaders/conv2d_subgroup.wgsl");

/// Pixels one lane computes.
const PIX: usize = 8;
/// Lanes per subgroup.
const LANES: usize = 8;

/// Which convolution pass a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// y = conv(x, w) + b, optional SiLU.
    Forward,
    /// dx from dy and w.
    Data,
}

/// One subgroup conv kernel: a pass and the channels per subgroup (16 or 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvSubgroupVariant {
    /// The pass.
    pub pass: ConvPass,
    /// Output channels per subgroup: 16 or 32.
    pub tn: usize,
}

impl ConvSubgroupVariant {
    /// Every variant, for shader validation tests.
    pub fn all() -> Vec<ConvSubgroupVariant> {
        [ConvPass::Forward, ConvPass::Data]
            .into_iter()
            .flat_map(|pass| [16, 32].map(|tn| ConvSubgroupVariant { pass, tn }))
            .collect()
    }

    /// The variant for `channels` output channels of `pass`.
    pub fn for_channels(pass: ConvPass, channels: usize) -> Self {
        ConvSubgroupVariant {
            pass,
            tn: if channels <= 16 { 16 } else { 32 },
        }
    }

    /// Pipeline cache key.
    pub fn key(self) -> String {
        format!("conv2d_subgroup.{:?}.tn{}", self.pass, self.tn)
    }

    /// (SM, workgroups) for `pixels` × `channels` outputs.
    pub fn grid(self, pixels: usize, channels: usize) -> (u32, [u32; 3]) {
        subgroup_grid(pixels, channels, LANES * PIX, self.tn, 1)
    }

    /// The WGSL source of this variant.
    pub fn source(self) -> String {
        let q = self.tn / 4;
        let ks = LANES / q; // reduction channels per step
        let mut b = String::new();
        let mut w = |ind: usize, line: String| {
            let _ = writeln!(b, "{}{line}", "    ".repeat(ind));
        };
        let fwd = self.pass == ConvPass::Forward;
        // Names: the reduction channel count, the output channel count, the pixel count.
        let (red, outc) = if fwd { ("c.ci", "c.co") } else { ("c.co", "c.ci") };
        let npix = if fwd { "c.n * ohw" } else { "c.n * hw" };
        w(1, format!("let npix = {npix};"));
        for i in 0..PIX {
            w(1, format!("let pc{i} = min(r0 + {i}u, npix - 1u);"));
            if fwd {
                w(1, format!("let base{i} = (pc{i} / ohw) * c.ci * hw;"));
                w(1, format!("let rr{i} = pc{i} % ohw;"));
                w(1, format!("let py{i} = i32((rr{i} / c.ow) * c.s) - c.pad;"));
                w(1, format!("let px{i} = i32((rr{i} % c.ow) * c.s) - c.pad;"));
            } else {
                w(1, format!("let base{i} = (pc{i} / hw) * c.co * ohw;"));
                w(1, format!("let rr{i} = pc{i} % hw;"));
                w(1, format!("let py{i} = i32(rr{i} / c.w) + c.pad;"));
                w(1, format!("let px{i} = i32(rr{i} % c.w) + c.pad;"));
            }
        }
        // Weight rows of the lane's 4 channels (forward: w[co, ·]; data: w[·, ci]).
        for l in 0..4 {
            let e = if fwd {
                format!("min(n0 + 4u * wq + {l}u, c.co - 1u) * c.ci * kk")
            } else {
                format!("min(n0 + 4u * wq + {l}u, c.ci - 1u) * kk")
            };
            w(1, format!("let wr{l} = {e};"));
        }
        // The reduction-channel stride in w and in the gathered source.
        let (wstride, sstride) = if fwd { ("kk", "hw") } else { ("c.ci * kk", "ohw") };
        for i in 0..PIX {
            for qq in 0..q {
                w(1, format!("var c{i}_{qq} = vec4<f32>(0.0);"));
            }
        }
        w(1, "for (var kh = 0u; kh < c.kh; kh++) {".into());
        w(1, "for (var kw = 0u; kw < c.kw; kw++) {".into());
        w(2, "let tap = kh * c.kw + kw;".into());
        for i in 0..PIX {
            if fwd {
                w(2, format!("let y{i} = py{i} + i32(kh);"));
                w(2, format!("let x{i} = px{i} + i32(kw);"));
                w(2, format!("let in{i} = in_range(y{i}, c.h) && in_range(x{i}, c.w);"));
                w(2, format!("let o{i} = select(0u, base{i} + u32(y{i}) * c.w + u32(x{i}), in{i});"));
            } else {
                // The output pixel this input pixel's tap comes from, when the stride divides.
                w(2, format!("let ty{i} = py{i} - i32(kh);"));
                w(2, format!("let tx{i} = px{i} - i32(kw);"));
                w(2, format!("let y{i} = ty{i} / i32(c.s);"));
                w(2, format!("let x{i} = tx{i} / i32(c.s);"));
                w(2, format!("let in{i} = ty{i} >= 0 && tx{i} >= 0 && y{i} * i32(c.s) == ty{i} && x{i} * i32(c.s) == tx{i} && y{i} < i32(c.oh) && x{i} < i32(c.ow);"));
                w(2, format!("let o{i} = select(0u, base{i} + u32(y{i}) * c.ow + u32(x{i}), in{i});"));
            }
            w(2, format!("let m{i} = select(0.0, 1.0, in{i});"));
        }
        w(2, format!("for (var r = 0u; r < {red}; r += {ks}u) {{"));
        // The lane's weights: 4 channels at reduction channel r + kq.
        w(3, format!("let wc = min(r + kq, {red} - 1u) * {wstride} + tap;"));
        w(3, "let bl = vec4<f32>(wsrc[wr0 + wc], wsrc[wr1 + wc], wsrc[wr2 + wc], wsrc[wr3 + wc]);".into());
        for s in 0..ks {
            let rs = if s == 0 { "r".to_string() } else { format!("min(r + {s}u, {red} - 1u)") };
            w(3, format!("let so{s} = {rs} * {sstride};"));
            if s > 0 {
                // Past the last reduction channel: the source reads as 0.
                w(3, format!("let ok{s} = select(0.0, 1.0, r + {s}u < {red});"));
            }
            for i in 0..PIX {
                let mask = if s == 0 { format!("m{i}") } else { format!("m{i} * ok{s}") };
                w(3, format!("let x{i}_{s} = src[o{i} + so{s}] * {mask};"));
            }
            for qq in 0..q {
                w(3, format!("let b{s}_{qq} = subgroupBroadcast(bl, {}u);", s * q + qq));
                for i in 0..PIX {
                    w(3, format!("c{i}_{qq} = fma(vec4<f32>(x{i}_{s}), b{s}_{qq}, c{i}_{qq});"));
                }
            }
        }
        w(2, "}".into());
        w(1, "}".into());
        w(1, "}".into());
        // Epilogue.
        for i in 0..PIX {
            w(1, format!("if (r0 + {i}u < npix) {{"));
            let img = if fwd { "ohw" } else { "hw" };
            w(2, format!("let img{i} = (r0 + {i}u) / {img};"));
            for qq in 0..q {
                for l in 0..4 {
                    let ch = format!("n0 + {}u", 4 * qq + l);
                    let v = format!("c{i}_{qq}.{}", ["x", "y", "z", "w"][l]);
                    w(2, format!("if ({ch} < {outc}) {{"));
                    if fwd {
                        w(3, format!("store_forward((img{i} * c.co + {ch}) * ohw + rr{i}, {ch}, {v});"));
                    } else {
                        w(3, format!("dst[(img{i} * c.ci + {ch}) * hw + rr{i}] = {v};"));
                    }
                    w(2, "}".into());
                }
            }
            w(1, "}".into());
        }
        TEMPLATE
            .replace("{{TN}}", &self.tn.to_string())
            .replace("{{Q}}", &q.to_string())
            .replace("{{BODY}}", &b)
    }
}
